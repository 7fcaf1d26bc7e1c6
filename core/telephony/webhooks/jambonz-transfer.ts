import { mintToken, verifyToken } from '../../auth/tokens.ts';
import type { Logger } from '../../observability/log.ts';
import { verifyJambonzRequest } from '../signatures/jambonz.ts';
import { badRequest, forbidden } from './http.ts';

/** Path of the hook a transferred Jambonz call fetches its `dial` from. */
export const JAMBONZ_TRANSFER_PATH = '/telephony/jambonz/transfer';

/**
 * Transfer tokens only have to survive from our REST update to Jambonz's fetch of the hook
 * (well under a second), plus clock skew between nodes.
 */
export const TRANSFER_TOKEN_TTL_SEC = 60;

/** Marks a token as a transfer's; a stream token carries no `use` and is refused here. */
const TRANSFER_USE = 'transfer';
/**
 * `sub` of transfer tokens. Never a call id, so a transfer token cannot open a media stream:
 * provider streams must name the admitted call, and no call is admitted under this prefix.
 */
const SUBJECT_PREFIX = 'transfer:';

const E164 = /^\+[1-9]\d{1,14}$/;
/** `sip:` or `sips:` and something after it, without whitespace, quotes or angle brackets. */
const SIP_URI = /^sips?:[^\s"'<>]{1,256}$/i;

/** Where a transferred caller goes: a phone number (E.164) or a SIP URI. */
export type TransferTarget = { type: 'phone'; number: string } | { type: 'sip'; uri: string };

/**
 * Reads a transfer destination: `+14155550199` or `sip:alice@example.com`. Null for anything
 * else, so no provider is ever asked to dial a string we cannot vouch for.
 */
export function parseTransferTarget(to: unknown): TransferTarget | null {
  if (typeof to !== 'string') return null;
  if (E164.test(to)) return { type: 'phone', number: to };
  if (SIP_URI.test(to)) return { type: 'sip', uri: to };
  return null;
}

/** What a transfer token says: which call goes where. */
export interface TransferClaims {
  /** Our call id. */
  callId: string;
  agentId: string;
  /** Jambonz's call sid: the hook answers only the call it was minted for. */
  callSid: string;
  /** E.164 number or SIP URI. */
  to: string;
}

/**
 * Mints the signed, short-lived token that carries a Jambonz transfer's destination to our hook:
 * the destination never travels in an unsigned parameter. A `stream`-kind token (the kinds
 * tokens.ts knows) marked `use=transfer`, whose `sub` can never admit a media stream.
 */
export function mintTransferToken(secret: string, claims: TransferClaims, nowSec?: number): string {
  return mintToken(
    secret,
    {
      kind: 'stream',
      sub: `${SUBJECT_PREFIX}${claims.callId}`,
      agentId: claims.agentId,
      use: TRANSFER_USE,
      callSid: claims.callSid,
      to: claims.to,
    },
    TRANSFER_TOKEN_TTL_SEC,
    nowSec,
  );
}

/** Verifies a transfer token (signature, lifetime, purpose, destination). Never throws. */
export function verifyTransferToken(
  secrets: string | readonly string[],
  token: string | null | undefined,
  nowSec?: number,
): { ok: true; claims: TransferClaims; target: TransferTarget } | { ok: false; reason: string } {
  const result = verifyToken(secrets, token, { kind: 'stream', ...(nowSec === undefined ? {} : { nowSec }) });
  if (!result.ok) return { ok: false, reason: result.reason };
  const { sub, agentId, use, callSid, to } = result.claims;
  if (use !== TRANSFER_USE || typeof sub !== 'string' || !sub.startsWith(SUBJECT_PREFIX)) {
    return { ok: false, reason: 'wrong_use' };
  }
  const target = parseTransferTarget(to);
  if (typeof callSid !== 'string' || !callSid || target === null) return { ok: false, reason: 'malformed' };
  return {
    ok: true,
    claims: { callId: sub.slice(SUBJECT_PREFIX.length), agentId, callSid, to: to as string },
    target,
  };
}

export interface JambonzTransferHookOptions {
  /** REALTIME_WS_SECRET (several while rotating): what transfer tokens are signed with. */
  tokenSecrets: string | readonly string[];
  /** JAMBONZ_WEBHOOK_SECRET values, as the other Jambonz routes use them. */
  secrets: readonly string[];
  /** TELEPHONY_VERIFY_SIGNATURES. */
  verify: boolean;
  log: Logger;
  /** Our clock in unix seconds, for tests. Default: now. */
  nowSec?: number;
}

/**
 * `POST /telephony/jambonz/transfer?token=…`: the call hook a transferred Jambonz call fetches
 * after `createTransfer` moved it here (REST `call_hook` update). Checks the Jambonz signature
 * like every Jambonz route, then the transfer token (ours, unexpired, minted for this call) and
 * answers a `dial` to the number or SIP URI the token names. Any doubt: 403, and Jambonz keeps
 * the call on its current verbs. Source: jambonz docs, "dial" verb and "update a call".
 */
export async function jambonzTransferHook(req: Request, opts: JambonzTransferHookOptions): Promise<Response> {
  const raw = new Uint8Array(await req.arrayBuffer());
  if (opts.verify) {
    const signed = verifyJambonzRequest({
      header: req.headers.get('jambonz-signature'),
      rawBody: raw,
      secrets: opts.secrets,
      ...(opts.nowSec === undefined ? {} : { nowSec: opts.nowSec }),
    });
    if (!signed.ok) return forbidden(signed.reason);
  }
  const token = new URL(req.url).searchParams.get('token');
  const checked = verifyTransferToken(opts.tokenSecrets, token, opts.nowSec);
  if (!checked.ok) {
    opts.log.warn({ provider: 'jambonz', reason: checked.reason }, 'transfer token rejected');
    return tokenRejected(checked.reason);
  }
  let body: unknown;
  try {
    body = raw.byteLength === 0 ? {} : JSON.parse(new TextDecoder().decode(raw));
  } catch {
    return badRequest('malformed_body', 'body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return badRequest('malformed_body', 'body must be a JSON object');
  }
  const callSid = (body as Record<string, unknown>).call_sid;
  if (typeof callSid === 'string' && callSid !== checked.claims.callSid) {
    opts.log.warn(
      { provider: 'jambonz', callId: checked.claims.callId, reason: 'wrong_call' },
      'transfer token rejected',
    );
    return tokenRejected('wrong_call');
  }
  const { target } = checked;
  opts.log.info(
    { provider: 'jambonz', callId: checked.claims.callId, targetType: target.type },
    'transfer dial answered',
  );
  return Response.json(jambonzDialVerbs(target));
}

/** The verbs a transferred Jambonz call runs: one `dial`, ringing until the far end answers. */
export function jambonzDialVerbs(target: TransferTarget): Record<string, unknown>[] {
  return [
    {
      verb: 'dial',
      answerOnBridge: true,
      target: [
        target.type === 'phone'
          ? { type: 'phone', number: target.number }
          : { type: 'sip', sipUri: target.uri },
      ],
    },
  ];
}

function tokenRejected(reason: string): Response {
  return Response.json(
    { error: { code: 'bad_token', message: `transfer token rejected: ${reason}` } },
    { status: 403 },
  );
}
