/**
 * The provider-webhook scenario, as plain functions with no runtime APIs, so the k6 script
 * (`perf/k6/webhooks.ts`, and `perf/k6/voice-ws.ts` for its admission step) and the Bun runner
 * (`perf/local/k6-local.ts`) send the same signed webhooks and judge the answers the same way.
 *
 * A burst offers more calls at once than an agent may hold (its `maxConcurrentCalls`): the
 * limit is the agent's, created for the run, so the burst neither depends on the stage's global
 * limit nor fills it. Core must admit exactly the limit, turn the rest away politely (Twilio
 * `<Reject reason="busy"/>`, Jambonz `sip:decline` 503), never answer 5xx, and free every slot
 * on the status callback.
 *
 * Signing needs HMAC, which each runtime brings its own way (k6: `k6/crypto`'s `hmac`; Bun:
 * node:crypto), so the builders take the HMAC as a parameter.
 */
import { streamIds } from './twilio-stream.ts';

/** base64(HMAC-SHA1(key, data)), data as UTF-8: Twilio's X-Twilio-Signature. */
export type HmacSha1Base64 = (key: string, data: string) => string;
/** hex(HMAC-SHA256(key, data)), data as UTF-8: Jambonz-Signature. */
export type HmacSha256Hex = (key: string, data: string) => string;

/** One HTTP request, ready for `http.post` (k6) or `fetch` (Bun). */
export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export interface WebhookTarget {
  /** Where the requests go. */
  baseUrl: string;
  /**
   * The URL core signs against (its PUBLIC_BASE_URL); the same as `baseUrl` unless the runner
   * reaches core by another address (a test on a random port).
   */
  signedBaseUrl: string;
}

/** A run's id: 12 hex digits (time, then random), so call SIDs of different runs differ. */
export function newRunId(): string {
  const random = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0');
  return Date.now().toString(16).slice(-8) + random;
}

/** The call a burst offers: its Twilio-shaped SID (also used as the Jambonz call_sid). */
export function burstCallSid(runId: string, n: number): string {
  return streamIds(runId, n).callSid;
}

const CALLER = '+15005550006';
const CALLED = '+15005550001';
const ACCOUNT_SID = 'AC00000000000000000000000000000000';

function formBody(params: Record<string, string>): string {
  return Object.keys(params)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k]!)}`)
    .join('&');
}

/**
 * X-Twilio-Signature of a form post: the full URL, then each parameter name and value in name
 * order, HMAC-SHA1 with the auth token, base64 (Twilio docs, "Webhooks security").
 */
export function twilioSignature(
  url: string,
  params: Record<string, string>,
  authToken: string,
  hmac: HmacSha1Base64,
): string {
  let data = url;
  for (const name of Object.keys(params).sort()) data += name + params[name];
  return hmac(authToken, data);
}

function twilioPost(
  target: WebhookTarget,
  path: string,
  params: Record<string, string>,
  authToken: string,
  hmac: HmacSha1Base64,
): WebhookRequest {
  return {
    url: target.baseUrl + path,
    body: formBody(params),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSignature(target.signedBaseUrl + path, params, authToken, hmac),
    },
  };
}

/** Twilio's voice webhook for an inbound call, naming the agent that should answer it. */
export function twilioVoiceWebhook(
  target: WebhookTarget,
  authToken: string,
  hmac: HmacSha1Base64,
  callSid: string,
  agentId: string,
): WebhookRequest {
  return twilioPost(
    target,
    `/telephony/twilio/voice?agentId=${encodeURIComponent(agentId)}`,
    {
      AccountSid: ACCOUNT_SID,
      ApiVersion: '2010-04-01',
      CallSid: callSid,
      CallStatus: 'ringing',
      Direction: 'inbound',
      From: CALLER,
      To: CALLED,
    },
    authToken,
    hmac,
  );
}

/** Twilio's status callback saying the call is over, which frees its slots. */
export function twilioStatusCallback(
  target: WebhookTarget,
  authToken: string,
  hmac: HmacSha1Base64,
  callSid: string,
): WebhookRequest {
  return twilioPost(
    target,
    '/telephony/twilio/status',
    { AccountSid: ACCOUNT_SID, CallSid: callSid, CallStatus: 'completed', CallDuration: '1' },
    authToken,
    hmac,
  );
}

/** `Jambonz-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` (jambonz docs). */
export function jambonzSignature(body: string, secret: string, nowSec: number, hmac: HmacSha256Hex): string {
  return `t=${nowSec},v1=${hmac(secret, `${nowSec}.${body}`)}`;
}

function jambonzPost(
  target: WebhookTarget,
  path: string,
  payload: Record<string, unknown>,
  secret: string,
  hmac: HmacSha256Hex,
): WebhookRequest {
  const body = JSON.stringify(payload);
  return {
    url: target.baseUrl + path,
    body,
    headers: {
      'content-type': 'application/json',
      'jambonz-signature': jambonzSignature(body, secret, Math.floor(Date.now() / 1000), hmac),
    },
  };
}

/** Jambonz's call webhook for an inbound call; the agent rides in `customer_data`. */
export function jambonzCallWebhook(
  target: WebhookTarget,
  secret: string,
  hmac: HmacSha256Hex,
  callSid: string,
  agentId: string,
): WebhookRequest {
  return jambonzPost(
    target,
    '/telephony/jambonz/call',
    {
      call_sid: callSid,
      direction: 'inbound',
      from: CALLER,
      to: CALLED,
      call_status: 'trying',
      customer_data: { agentId },
    },
    secret,
    hmac,
  );
}

/** Jambonz's call-status hook saying the call completed. */
export function jambonzStatusHook(
  target: WebhookTarget,
  secret: string,
  hmac: HmacSha256Hex,
  callSid: string,
): WebhookRequest {
  return jambonzPost(
    target,
    '/telephony/jambonz/status',
    { call_sid: callSid, call_status: 'completed', direction: 'inbound' },
    secret,
    hmac,
  );
}

/** What an answer to a call webhook means: a call let in, a polite refusal, or a failure. */
export type WebhookVerdict = 'admitted' | 'busy' | 'error';

/** The media stream a TwiML answer opens: where, and the token that admits it. */
export function streamFromTwiml(twiml: string): { url: string; token: string; agentId: string } | null {
  const url = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
  const token = /<Parameter name="token" value="([^"]+)"/.exec(twiml)?.[1];
  const agentId = /<Parameter name="agentId" value="([^"]+)"/.exec(twiml)?.[1];
  if (!url || !token || !agentId) return null;
  const text = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  return { url: text(url), token: text(token), agentId: text(agentId) };
}

/** Judges Twilio's voice webhook answer: `<Connect><Stream>` with a token, or `<Reject reason="busy"/>`. */
export function classifyTwilioVoice(status: number, body: string): WebhookVerdict {
  if (status !== 200) return 'error';
  if (body.includes('<Connect><Stream') && streamFromTwiml(body)) return 'admitted';
  if (body.includes('<Reject reason="busy"/>')) return 'busy';
  return 'error';
}

/** Judges Jambonz's call webhook answer: a `listen` verb with a token, or `sip:decline` 503. */
export function classifyJambonzCall(status: number, body: string): WebhookVerdict {
  if (status !== 200) return 'error';
  let verbs: unknown;
  try {
    verbs = JSON.parse(body);
  } catch {
    return 'error';
  }
  const first = Array.isArray(verbs) ? (verbs[0] as Record<string, unknown> | undefined) : undefined;
  if (!first) return 'error';
  const metadata = first.metadata as Record<string, unknown> | undefined;
  if (first.verb === 'listen' && typeof metadata?.token === 'string') return 'admitted';
  if (first.verb === 'sip:decline' && first.status === 503) return 'busy';
  return 'error';
}

/** A burst: `calls` webhooks at once against an agent that may hold `limit`, `rounds` times. */
export interface BurstPlan {
  calls: number;
  limit: number;
  rounds: number;
  /** From a round's start to its status callbacks (slots held meanwhile), ms. */
  holdMs: number;
  /** From one round's start to the next, ms. */
  roundMs: number;
}

export const DEFAULT_BURST: BurstPlan = { calls: 30, limit: 10, rounds: 3, holdMs: 1500, roundMs: 4000 };

/**
 * The plan from the environment both runners read (k6 `__ENV`, Bun `process.env`): BURST_CALLS,
 * CAPACITY_LIMIT, BURST_ROUNDS, BURST_ROUND_MS, BURST_HOLD_MS; DEFAULT_BURST for what is unset.
 */
export function burstPlanFromEnv(env: Record<string, string | undefined>): BurstPlan {
  const read = (name: string, fallback: number) => {
    const value = Number(env[name] || fallback);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
    return value;
  };
  const plan = {
    calls: read('BURST_CALLS', DEFAULT_BURST.calls),
    limit: read('CAPACITY_LIMIT', DEFAULT_BURST.limit),
    rounds: read('BURST_ROUNDS', DEFAULT_BURST.rounds),
    roundMs: read('BURST_ROUND_MS', DEFAULT_BURST.roundMs),
    holdMs: read('BURST_HOLD_MS', DEFAULT_BURST.holdMs),
  };
  if (plan.holdMs >= plan.roundMs) throw new Error('BURST_HOLD_MS must be less than BURST_ROUND_MS');
  return plan;
}

/** The agent a burst runs against: a test brain, its concurrency limit being the point. */
export function burstAgentBody(runId: string, limit: number): string {
  return JSON.stringify({ name: `perf-burst-${runId}`, brain: 'echo', maxConcurrentCalls: limit });
}

/** Names of the metrics both runners record (k6 custom metrics; the Bun runner's equivalents). */
export const WEBHOOK_METRICS = {
  /** Rate: call webhooks answered admitted or busy (not an error). */
  polite: 'webhook_polite',
  /** Trend: call webhook answer time, ms. */
  answerMs: 'webhook_answer_ms',
  /** Counters of the verdicts. */
  admitted: 'webhook_admitted',
  busy: 'webhook_busy',
} as const;

/** The limits the webhook scenario must meet, shared by k6 (`thresholds`) and the Bun runner. */
export const WEBHOOK_THRESHOLDS = {
  /** Share of all requests (webhooks and status callbacks) that failed (4xx/5xx/no answer). */
  httpReqFailedRate: 0.01,
  /** Share of call webhooks answered admitted or busy: every one, no 5xx, no garbage. */
  politeAnswerRate: 1,
  /** p95 time to answer a call webhook during the burst, ms. */
  answerP95Ms: 500,
} as const;

/**
 * The k6 `thresholds` of a burst: the constants above, plus exact admission counts (each round
 * admits the agent's limit, no more — a leak or an over-admission shows here).
 */
export function webhookThresholds(plan: BurstPlan): Record<string, string[]> {
  const admitted = Math.min(plan.calls, plan.limit) * plan.rounds;
  const busy = Math.max(0, plan.calls - plan.limit) * plan.rounds;
  return {
    http_req_failed: [`rate<${WEBHOOK_THRESHOLDS.httpReqFailedRate}`],
    [WEBHOOK_METRICS.polite]: [`rate>=${WEBHOOK_THRESHOLDS.politeAnswerRate}`],
    [WEBHOOK_METRICS.answerMs]: [`p(95)<${WEBHOOK_THRESHOLDS.answerP95Ms}`],
    [WEBHOOK_METRICS.admitted]: [`count==${admitted}`],
    [WEBHOOK_METRICS.busy]: [`count==${busy}`],
  };
}
