import { randomBytes } from 'node:crypto';
import { computeTwilioSignature } from '../../../core/telephony/signatures/index.ts';

/**
 * Which URL Twilio's X-Twilio-Signature covers when the webhook URL carries credentials: the URL
 * as configured (`https://user:pass@host/...`, what Twilio's helper libraries sign), or the URL
 * with the credentials dropped (what Twilio's security notes describe).
 */
export type SignedUrlForm = 'as-configured' | 'without-credentials';

export interface TwilioDelivery {
  /** Every HTTP answer, in order: a 401 challenge first when the URL carries credentials. */
  attempts: Response[];
  /** The last answer, and its body. */
  final: Response;
  body: string;
}

const CREDENTIALS = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]*)@/;

/**
 * Requests a webhook the way Twilio does for a URL it was given (a call's `Url` or
 * `StatusCallback`, or a number's voice URL): a form POST to the URL with any credentials taken
 * out of it, signed with X-Twilio-Signature (HMAC-SHA1 of `signedUrl`'s form of the URL and the
 * sorted fields, keyed with the auth token). For a URL with credentials, the first request has no
 * `Authorization`; only if the answer is a 401 with a Basic `WWW-Authenticate` challenge is the
 * same request repeated with Basic auth (Twilio docs, "Security", HTTP authentication). Each
 * delivery carries one `I-Twilio-Idempotency-Token` (this fake sends the same on the repeat).
 */
export async function deliverTwilioWebhook(opts: {
  url: string;
  params: Record<string, string>;
  authToken: string;
  signedUrl?: SignedUrlForm;
}): Promise<TwilioDelivery> {
  const match = CREDENTIALS.exec(opts.url);
  const requestUrl = match ? match[1] + opts.url.slice(match[0].length) : opts.url;
  const signedUrl = opts.signedUrl === 'without-credentials' ? requestUrl : opts.url;
  const userInfo = match?.[2];
  const colon = userInfo?.indexOf(':') ?? -1;
  const basic =
    userInfo === undefined
      ? undefined
      : `Basic ${Buffer.from(
          colon === -1
            ? `${decodeURIComponent(userInfo)}:`
            : `${decodeURIComponent(userInfo.slice(0, colon))}:${decodeURIComponent(userInfo.slice(colon + 1))}`,
        ).toString('base64')}`;
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    'x-twilio-signature': computeTwilioSignature(signedUrl, opts.params, opts.authToken),
    'i-twilio-idempotency-token': randomBytes(16).toString('hex'),
  };
  const body = new URLSearchParams(opts.params).toString();
  const post = (extra: Record<string, string>) =>
    fetch(requestUrl, { method: 'POST', headers: { ...headers, ...extra }, body });

  const attempts = [await post({})];
  const challenge = attempts[0]!.headers.get('www-authenticate') ?? '';
  if (attempts[0]!.status === 401 && basic && /^basic\b/i.test(challenge)) {
    await attempts[0]!.arrayBuffer();
    attempts.push(await post({ authorization: basic }));
  }
  const final = attempts[attempts.length - 1]!;
  return { attempts, final, body: await final.text() };
}
