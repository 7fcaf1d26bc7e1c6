/**
 * k6 gate: a burst of signed provider webhooks against a capacity limit. Each round offers
 * BURST_CALLS calls at once to an agent created for the run with `maxConcurrentCalls` =
 * CAPACITY_LIMIT; core must admit exactly the limit, refuse the rest politely (Twilio
 * `<Reject reason="busy"/>`, Jambonz `sip:decline` 503), never answer 5xx, and free every slot
 * on the status callback before the next round. Scenario logic and thresholds come from
 * `perf/scenarios/webhooks.ts`, which the Bun runner (`npm run perf:local`) runs against
 * `npm start` with the same thresholds.
 *
 *   BASE_URL=https://api.staging.example.org API_KEY=sk_live_… TWILIO_AUTH_TOKEN=… \
 *     k6 run perf/k6/webhooks.ts
 *
 * Needs k6 ≥ 0.57: it runs `.ts` files by stripping their types (esbuild), and resolves the
 * `../scenarios/*.ts` imports with their extension. Only syntax k6 runs is used (no async).
 *
 * Env: BASE_URL (default http://localhost:3000); PUBLIC_BASE_URL (the URL core signs against,
 * default BASE_URL); TWILIO_AUTH_TOKEN (the target's); JAMBONZ_WEBHOOK_SECRET (optional: when
 * set, every other call comes as a Jambonz webhook); API_KEY or ADMIN_API_KEY (to create and
 * delete the run's agent); BURST_CALLS (30), CAPACITY_LIMIT (10), BURST_ROUNDS (3),
 * BURST_ROUND_MS (4000), BURST_HOLD_MS (1500).
 */
import { check, fail, sleep } from 'k6';
import { hmac } from 'k6/crypto';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { apiHeaders } from '../scenarios/api.ts';
import {
  burstAgentBody,
  burstCallSid,
  burstPlanFromEnv,
  classifyJambonzCall,
  classifyTwilioVoice,
  jambonzCallWebhook,
  jambonzStatusHook,
  newRunId,
  twilioStatusCallback,
  twilioVoiceWebhook,
  WEBHOOK_METRICS,
  type WebhookRequest,
  type WebhookTarget,
  webhookThresholds,
} from '../scenarios/webhooks.ts';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
const TARGET: WebhookTarget = {
  baseUrl: BASE_URL,
  signedBaseUrl: (__ENV.PUBLIC_BASE_URL || BASE_URL).replace(/\/+$/, ''),
};
const API_KEY = __ENV.API_KEY || __ENV.ADMIN_API_KEY || '';
const TWILIO_AUTH_TOKEN = __ENV.TWILIO_AUTH_TOKEN || '';
const JAMBONZ_SECRET = __ENV.JAMBONZ_WEBHOOK_SECRET || '';

const PLAN = burstPlanFromEnv(__ENV);

export const options: Options = {
  scenarios: {
    burst: {
      executor: 'per-vu-iterations',
      vus: PLAN.calls,
      iterations: PLAN.rounds,
      maxDuration: `${Math.ceil((PLAN.rounds * PLAN.roundMs) / 1000) + 60}s`,
    },
  },
  thresholds: webhookThresholds(PLAN),
};

const polite = new Rate(WEBHOOK_METRICS.polite);
const answerMs = new Trend(WEBHOOK_METRICS.answerMs, true);
const admitted = new Counter(WEBHOOK_METRICS.admitted);
const busy = new Counter(WEBHOOK_METRICS.busy);

const sha1 = (key: string, data: string) => hmac('sha1', key, data, 'base64');
const sha256 = (key: string, data: string) => hmac('sha256', key, data, 'hex');

function post(req: WebhookRequest, name: string) {
  return http.post(req.url, req.body, { headers: req.headers, tags: { name } });
}

function sleepUntil(epochMs: number): void {
  const waitMs = epochMs - Date.now();
  if (waitMs > 0) sleep(waitMs / 1000);
}

interface SetupData {
  runId: string;
  agentId: string;
  /** When round 0 starts (epoch ms), the same for every VU. */
  startAt: number;
}

export function setup(): SetupData {
  if (!TWILIO_AUTH_TOKEN) fail('set TWILIO_AUTH_TOKEN to the target core’s Twilio auth token');
  if (!API_KEY) fail('set API_KEY (or ADMIN_API_KEY): the burst runs against an agent it creates');
  const runId = newRunId();
  const res = http.post(`${BASE_URL}/v1/agents`, burstAgentBody(runId, PLAN.limit), {
    headers: apiHeaders(API_KEY, true),
    tags: { name: 'create burst agent' },
  });
  const agentId = res.status === 201 ? (res.json('id') as string | undefined) : undefined;
  if (!agentId) fail(`creating the burst agent answered ${res.status}`);
  return { runId, agentId, startAt: Date.now() + 1000 };
}

export default function (data: SetupData): void {
  const round = exec.vu.iterationInScenario;
  const roundStart = data.startAt + round * PLAN.roundMs;
  const n = round * PLAN.calls + exec.vu.idInTest - 1;
  const callSid = burstCallSid(data.runId, n);
  const jambonz = JAMBONZ_SECRET !== '' && n % 2 === 1;
  sleepUntil(roundStart);

  const offer = jambonz
    ? jambonzCallWebhook(TARGET, JAMBONZ_SECRET, sha256, callSid, data.agentId)
    : twilioVoiceWebhook(TARGET, TWILIO_AUTH_TOKEN, sha1, callSid, data.agentId);
  const res = post(offer, jambonz ? 'jambonz call' : 'twilio voice');
  const body = typeof res.body === 'string' ? res.body : '';
  const verdict = jambonz ? classifyJambonzCall(res.status, body) : classifyTwilioVoice(res.status, body);
  answerMs.add(res.timings.duration);
  polite.add(verdict !== 'error');
  if (verdict === 'admitted') admitted.add(1);
  if (verdict === 'busy') busy.add(1);
  check(verdict, { 'call webhook admitted or politely refused': (v) => v !== 'error' });
  if (verdict !== 'admitted') return;

  sleepUntil(roundStart + PLAN.holdMs);
  const end = jambonz
    ? jambonzStatusHook(TARGET, JAMBONZ_SECRET, sha256, callSid)
    : twilioStatusCallback(TARGET, TWILIO_AUTH_TOKEN, sha1, callSid);
  const done = post(end, jambonz ? 'jambonz status' : 'twilio status');
  check(done, { 'status callback frees the slot (204)': (r) => r.status === 204 });
}

export function teardown(data: SetupData): void {
  http.del(`${BASE_URL}/v1/agents/${data.agentId}`, null, {
    headers: apiHeaders(API_KEY, false),
    tags: { name: 'delete burst agent' },
  });
}
