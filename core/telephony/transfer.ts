/**
 * Call transfer and end-of-session hang-up, per provider. Core injects `createTransfer(...)` as
 * `CoreOptions.transfer` (the session calls it from `ctx.transfer(to)` and the API's `transfer`
 * command), and calls `createTelnyxHangup(...)` from `onSessionEnded`.
 *
 * How each provider's live call is found (the provider's call id, not always ours):
 * - Twilio: the CallSid. Inbound calls are admitted under it; calls we placed carry it as the
 *   stream token's `providerCallId`. The start frame's `callSid` is the same id.
 * - Jambonz: the `call_sid`, found the same way.
 * - Telnyx: the `call_control_id` of the stream's `start` frame. Our call id is the TeXML
 *   CallSid (what the voice webhook admitted); Call Control commands need the call_control_id,
 *   which only the media stream's `start` gives.
 */
import { verifyToken } from '../auth/tokens.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../observability/log.ts';
import type { CallSession, EndReason } from '../session/call-session.ts';
import { hookAuthOf } from './hook-auth.ts';
import { JambonzRestClient } from './jambonz-rest.ts';
import { ProviderError } from './provider-error.ts';
import { TelnyxRestClient } from './telnyx-rest.ts';
import { TwilioRestClient } from './twilio-rest.ts';
import { attr } from './webhooks/http.ts';
import {
  JAMBONZ_TRANSFER_PATH,
  mintTransferToken,
  parseTransferTarget,
  type TransferTarget,
} from './webhooks/jambonz-transfer.ts';

/**
 * The settings transfers and hang-ups read. With TELEPHONY_SHARED_SECRET, the hook a Jambonz
 * transfer names carries it as Basic auth (core refuses /telephony/* requests without it).
 */
export type TransferConfig = Partial<Pick<Config, 'TELEPHONY_SHARED_SECRET'>> &
  Pick<
    Config,
    | 'TWILIO_ACCOUNT_SID'
    | 'TWILIO_AUTH_TOKEN'
    | 'TWILIO_API_BASE_URL'
    | 'JAMBONZ_ACCOUNT_SID'
    | 'JAMBONZ_API_KEY'
    | 'JAMBONZ_API_BASE_URL'
    | 'TELNYX_API_KEY'
    | 'TELNYX_API_BASE_URL'
  >;

/**
 * What transfer and hang-up need of a session. `providerCallId` is the provider's own id of the
 * call as the stream's `start` frame named it (Twilio CallSid, Jambonz call_sid, Telnyx
 * call_control_id); until CallSession carries it, Twilio and Jambonz fall back to the stream
 * token, and Telnyx cannot be reached.
 */
export type TransferSession = Pick<CallSession, 'callId' | 'agentId' | 'protocol'> & {
  call: Pick<CallSession['call'], 'params'>;
  providerCallId?: string;
};

/** Why a transfer could not even be asked of the provider. */
export type TransferErrorCode = 'not_supported' | 'not_configured' | 'invalid_target' | 'unknown_call';

/** A transfer refused before any provider request; never worth retrying as is. */
export class TransferError extends Error {
  override readonly name = 'TransferError';
  readonly retryable = false;

  constructor(
    readonly code: TransferErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** `(session, to)`: hands the caller to `to` through the session's provider. */
export type TransferFn = (session: TransferSession, to: string) => Promise<void>;

/**
 * Builds core's `transfer(session, to)`. Each provider's REST client is built once, from the
 * settings; a provider whose settings are missing rejects its transfers with an error naming
 * them. `publicBaseUrl` is where Jambonz fetches the transfer hook; `tokenSecret`
 * (REALTIME_WS_SECRET) signs the hook's token and reads the stream tokens.
 */
export function createTransfer(
  config: TransferConfig,
  log: Logger,
  publicBaseUrl: string,
  tokenSecret: string,
): TransferFn {
  const twilio = twilioClient(config);
  const jambonz = jambonzClient(config);
  const telnyx = telnyxClient(config);
  const base = publicBaseUrl.replace(/\/+$/, '');
  const hookAuth = hookAuthOf(config.TELEPHONY_SHARED_SECRET);

  return async (session, to) => {
    if (session.protocol === 'native') {
      throw new TransferError('not_supported', 'transfer is not possible on native sessions');
    }
    const target = parseTransferTarget(to);
    if (target === null) {
      throw new TransferError(
        'invalid_target',
        'transfer target `to` must be an E.164 number (+14155550199) or a SIP URI (sip:alice@example.com)',
      );
    }
    const fields = { callId: session.callId, protocol: session.protocol, targetType: target.type };
    switch (session.protocol) {
      case 'twilio': {
        const client = configured(twilio);
        const callSid = requireProviderCallId(session, tokenSecret);
        await client.redirect(callSid, twilioDialTwiml(target));
        break;
      }
      case 'jambonz': {
        const client = configured(jambonz);
        const callSid = requireProviderCallId(session, tokenSecret);
        const token = mintTransferToken(tokenSecret, {
          callId: session.callId,
          agentId: session.agentId,
          callSid,
          to,
        });
        await client.redirect(
          callSid,
          `${base}${JAMBONZ_TRANSFER_PATH}?token=${encodeURIComponent(token)}`,
          hookAuth,
        );
        break;
      }
      case 'telnyx': {
        const client = configured(telnyx);
        await client.transfer(requireProviderCallId(session, tokenSecret), to);
        break;
      }
      default:
        throw new TransferError('not_supported', `transfer is not possible on ${session.protocol} sessions`);
    }
    log.info(fields, 'call transferred');
  };
}

/** The TwiML that replaces a Twilio call's stream with a dial to `target`. */
export function twilioDialTwiml(target: TransferTarget): string {
  return target.type === 'phone'
    ? `<Response><Dial>${attr(target.number)}</Dial></Response>`
    : `<Response><Dial><Sip>${attr(target.uri)}</Sip></Dial></Response>`;
}

/** End reasons after which the Telnyx call must not be hung up by us. */
const KEEP_CALL_UP: ReadonlySet<EndReason> = new Set<EndReason>([
  // Telnyx told us the call is over (status callback): nothing left to hang up.
  'provider_hangup',
  // The caller is now bridged to someone else: hanging up would cut them off.
  'transferred',
]);

/** Longest wait between hang-up attempts, whatever Retry-After says. */
const MAX_RETRY_WAIT_MS = 10_000;

export interface TelnyxHangupOptions {
  /** Waits before each retry of a retryable failure (429, 5xx, timeout). Default 500 and 2000 ms. */
  retryDelaysMs?: readonly number[];
}

/** `(session, reason)`: hangs up a Telnyx call whose session ended; never rejects. */
export type TelnyxHangupFn = (session: TransferSession, reason: EndReason) => Promise<void>;

/**
 * Why this exists: core answers Telnyx with `<Start><Stream/></Start><Pause length=…/>`, so when
 * a session ends on our side (agent hangup, timeouts, an API hangup, an error, shutdown) the
 * phone call would sit in `<Pause>` for up to an hour, billed, with its leases already released.
 * The returned function hangs the call up through Call Control for every Telnyx session end
 * except `provider_hangup` and `transferred`; a call Telnyx already ended answers 404/422, which
 * is fine. Without TELNYX_API_KEY it warns once, here (at boot), and does nothing.
 */
export function createTelnyxHangup(
  config: TransferConfig,
  log: Logger,
  opts: TelnyxHangupOptions = {},
): TelnyxHangupFn {
  const client = telnyxClient(config);
  if (client instanceof TransferError) {
    log.warn(
      { setting: 'TELNYX_API_KEY' },
      'TELNYX_API_KEY unset: Telnyx calls stay up after their session ends, until the TeXML Pause runs out',
    );
    return async () => {};
  }
  const delaysMs = opts.retryDelaysMs ?? [500, 2000];
  return async (session, reason) => {
    if (session.protocol !== 'telnyx' || KEEP_CALL_UP.has(reason)) return;
    const callControlId = session.providerCallId;
    if (!callControlId) {
      log.error({ callId: session.callId, reason }, 'telnyx call_control_id unknown: call not hung up');
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const hungUp = await client.hangup(callControlId);
        log.info({ callId: session.callId, reason, hungUp }, 'telnyx call hung up');
        return;
      } catch (err) {
        const retryable = err instanceof ProviderError && err.retryable;
        if (!retryable || attempt >= delaysMs.length) {
          log.error(
            { callId: session.callId, reason, attempts: attempt + 1, err: (err as Error).message },
            'telnyx hangup failed',
          );
          return;
        }
        const waitMs = Math.min(Math.max(delaysMs[attempt] ?? 0, err.retryAfterMs ?? 0), MAX_RETRY_WAIT_MS);
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  };
}

/**
 * The provider's id of the session's call. The session's own `providerCallId` when it has one;
 * else (Twilio, Jambonz) the stream token the session started with: signed by us and already
 * accepted at stream start, so its signature is checked again but not its 5-minute lifetime.
 * It names the provider's id as `providerCallId` for calls we placed, and our call id is the
 * provider's for inbound calls.
 */
export function providerCallIdOf(session: TransferSession, tokenSecret: string): string | undefined {
  if (session.providerCallId) return session.providerCallId;
  if (session.protocol !== 'twilio' && session.protocol !== 'jambonz') return undefined;
  const claims = acceptedStreamClaims(tokenSecret, session.call.params.token);
  if (!claims || claims.sub !== session.callId) return session.callId;
  return typeof claims.providerCallId === 'string' && claims.providerCallId
    ? claims.providerCallId
    : session.callId;
}

function requireProviderCallId(session: TransferSession, tokenSecret: string): string {
  const id = providerCallIdOf(session, tokenSecret);
  if (!id) {
    throw new TransferError(
      'unknown_call',
      `the ${session.protocol} call id of this session is unknown (the stream start's call id is needed)`,
    );
  }
  return id;
}

/** A stream token's claims, signature verified, lifetime not (see `providerCallIdOf`). */
function acceptedStreamClaims(secret: string, token: string | undefined) {
  if (!token) return undefined;
  const payload = token.split('.')[1];
  let iat: unknown;
  try {
    iat = (JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { iat?: unknown }).iat;
  } catch {
    return undefined;
  }
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat)) return undefined;
  // Verified as of the moment it was minted: signature, kind and shape all checked.
  const result = verifyToken(secret, token, { kind: 'stream', nowSec: iat });
  return result.ok ? result.claims : undefined;
}

/** The provider's client, or the error naming the settings it lacks. */
function configured<T>(client: T | TransferError): T {
  if (client instanceof TransferError) throw client;
  return client;
}

function missing(provider: string, names: [string, string | undefined][]): TransferError | undefined {
  const unset = names.filter(([, value]) => !value).map(([name]) => name);
  if (unset.length === 0) return undefined;
  return new TransferError(
    'not_configured',
    `${provider} transfers need ${names.map(([n]) => n).join(', ')}; unset: ${unset.join(', ')}`,
  );
}

function twilioClient(config: TransferConfig): TwilioRestClient | TransferError {
  const authToken = config.TWILIO_AUTH_TOKEN?.split(',')[0]?.trim();
  const unset = missing('Twilio', [
    ['TWILIO_ACCOUNT_SID', config.TWILIO_ACCOUNT_SID],
    ['TWILIO_AUTH_TOKEN', authToken],
  ]);
  if (unset) return unset;
  return new TwilioRestClient({
    accountSid: config.TWILIO_ACCOUNT_SID!,
    authToken: authToken!,
    ...(config.TWILIO_API_BASE_URL ? { baseUrl: config.TWILIO_API_BASE_URL } : {}),
  });
}

function jambonzClient(config: TransferConfig): JambonzRestClient | TransferError {
  const unset = missing('Jambonz', [
    ['JAMBONZ_API_BASE_URL', config.JAMBONZ_API_BASE_URL],
    ['JAMBONZ_ACCOUNT_SID', config.JAMBONZ_ACCOUNT_SID],
    ['JAMBONZ_API_KEY', config.JAMBONZ_API_KEY],
  ]);
  if (unset) return unset;
  return new JambonzRestClient({
    baseUrl: config.JAMBONZ_API_BASE_URL!,
    accountSid: config.JAMBONZ_ACCOUNT_SID!,
    apiKey: config.JAMBONZ_API_KEY!,
  });
}

function telnyxClient(config: TransferConfig): TelnyxRestClient | TransferError {
  const unset = missing('Telnyx', [['TELNYX_API_KEY', config.TELNYX_API_KEY]]);
  if (unset) return unset;
  return new TelnyxRestClient({
    apiKey: config.TELNYX_API_KEY!,
    ...(config.TELNYX_API_BASE_URL ? { baseUrl: config.TELNYX_API_BASE_URL } : {}),
  });
}
