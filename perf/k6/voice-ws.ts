/**
 * k6 gate: Twilio-protocol calls at real-time pace. Each call is admitted the way Twilio does
 * it — a signed voice webhook whose TwiML `<Connect><Stream>` names the stream URL and carries
 * the stream token — then streams one 20 ms mu-law frame per 20 ms on that WebSocket to the
 * `loopback` agent, which sends every frame back; the call ends with `stop` and a status
 * callback. Message builders, classification and VOICE_THRESHOLDS come from
 * `perf/scenarios/twilio-stream.ts`, which the Bun generator (`perf/local/voice-bench.ts`,
 * run by `npm run perf:local`) uses with the same thresholds.
 *
 *   BASE_URL=https://api.staging.example.org TWILIO_AUTH_TOKEN=… k6 run perf/k6/voice-ws.ts
 *
 * The target core must hold the same TWILIO_AUTH_TOKEN, and have room for VOICE_CALLS calls
 * (TELEPHONY_GLOBAL_MAX_CONCURRENCY; staging has 50).
 *
 * Needs k6 ≥ 0.57: it runs `.ts` files by stripping their types (esbuild), and resolves the
 * `../scenarios/*.ts` imports with their extension. Only syntax k6 runs is used (no async).
 *
 * Env: BASE_URL (default http://localhost:3000); PUBLIC_BASE_URL (the URL core signs against,
 * default BASE_URL); TWILIO_AUTH_TOKEN; VOICE_CALLS (concurrent calls, default 20);
 * CALL_SECONDS (streaming time per call, default 20); VOICE_DURATION (default 1m);
 * VOICE_AGENT_ID (default loopback).
 */
import { check, fail, sleep } from 'k6';
import { hmac } from 'k6/crypto';
import exec from 'k6/execution';
import http from 'k6/http';
import { Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import ws from 'k6/ws';
import {
  classify,
  connectedMessage,
  FRAME_MS,
  mediaMessage,
  newCallStats,
  startMessage,
  stopMessage,
  streamIds,
  TONE_FRAME_B64,
  VOICE_THRESHOLDS,
} from '../scenarios/twilio-stream.ts';
import {
  classifyTwilioVoice,
  newRunId,
  streamFromTwiml,
  twilioStatusCallback,
  twilioVoiceWebhook,
  WEBHOOK_THRESHOLDS,
  type WebhookTarget,
} from '../scenarios/webhooks.ts';

/** p95 of the WebSocket handshake (TCP, TLS, upgrade), ms. k6 measures it; the Bun generator does not. */
const WS_CONNECTING_P95_MS = 500;
/** After the last frame sent, how long a call keeps listening for the answers still on their way. */
const DRAIN_MS = 1500;

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
const TARGET: WebhookTarget = {
  baseUrl: BASE_URL,
  signedBaseUrl: (__ENV.PUBLIC_BASE_URL || BASE_URL).replace(/\/+$/, ''),
};
const TWILIO_AUTH_TOKEN = __ENV.TWILIO_AUTH_TOKEN || '';
const CALLS = Number(__ENV.VOICE_CALLS || 20);
const CALL_SECONDS = Number(__ENV.CALL_SECONDS || 20);
const AGENT_ID = __ENV.VOICE_AGENT_ID || 'loopback';

export const options: Options = {
  scenarios: {
    calls: {
      executor: 'constant-vus',
      vus: CALLS,
      duration: __ENV.VOICE_DURATION || '1m',
      // A call in progress when the time is up is allowed to finish.
      gracefulStop: `${CALL_SECONDS + 10}s`,
    },
  },
  thresholds: {
    calls_with_audio: [`rate>=${VOICE_THRESHOLDS.callsWithAudioRate}`],
    first_audio_ms: [`p(95)<${VOICE_THRESHOLDS.firstAudioP95Ms}`],
    frames_answered: [`rate>=${VOICE_THRESHOLDS.frameAnswerRate}`],
    ws_connecting: [`p(95)<${WS_CONNECTING_P95_MS}`],
    http_req_failed: [`rate<${WEBHOOK_THRESHOLDS.httpReqFailedRate}`],
  },
};

const callsWithAudio = new Rate('calls_with_audio');
const firstAudioMs = new Trend('first_audio_ms', true);
const framesAnswered = new Rate('frames_answered');

const sha1 = (key: string, data: string) => hmac('sha1', key, data, 'base64');

interface SetupData {
  runId: string;
}

export function setup(): SetupData {
  if (!TWILIO_AUTH_TOKEN) fail('set TWILIO_AUTH_TOKEN to the target core’s Twilio auth token');
  return { runId: newRunId() };
}

export default function (data: SetupData): void {
  // Spread the first calls over a second, so they do not all start on the same tick.
  if (exec.vu.iterationInScenario === 0) sleep(((exec.vu.idInTest - 1) % CALLS) / CALLS);
  const ids = streamIds(data.runId, exec.scenario.iterationInTest);

  const offer = twilioVoiceWebhook(TARGET, TWILIO_AUTH_TOKEN, sha1, ids.callSid, AGENT_ID);
  const answer = http.post(offer.url, offer.body, { headers: offer.headers, tags: { name: 'twilio voice' } });
  const twiml = typeof answer.body === 'string' ? answer.body : '';
  const stream = classifyTwilioVoice(answer.status, twiml) === 'admitted' ? streamFromTwiml(twiml) : null;
  if (!check(stream, { 'call admitted with a stream token': (s) => s !== null }) || !stream) {
    callsWithAudio.add(false);
    sleep(1);
    return;
  }

  const stats = newCallStats();
  let startedAt = 0;
  let sending = true;
  const res = ws.connect(stream.url, { tags: { name: 'twilio stream' } }, (socket) => {
    socket.on('open', () => {
      socket.send(connectedMessage());
      socket.send(startMessage(ids, stream.token, stream.agentId));
      startedAt = Date.now();
      socket.setInterval(() => {
        if (!sending) return;
        socket.send(mediaMessage(ids, stats.sent, TONE_FRAME_B64));
        stats.sent++;
      }, FRAME_MS);
      socket.setTimeout(() => {
        sending = false;
        socket.setTimeout(() => {
          socket.send(stopMessage(ids, stats.sent));
          socket.close();
        }, DRAIN_MS);
      }, CALL_SECONDS * 1000);
    });
    socket.on('message', (message) => {
      if (classify(message) !== 'media') return;
      stats.received++;
      if (stats.firstAudioMs === null) stats.firstAudioMs = Date.now() - startedAt;
    });
  });
  check(res, { 'stream upgraded (101)': (r) => r !== undefined && r.status === 101 });

  callsWithAudio.add(stats.firstAudioMs !== null);
  if (stats.firstAudioMs !== null) firstAudioMs.add(stats.firstAudioMs);
  // One sample per frame sent: answered or not (the loopback agent answers each one).
  const answered = Math.min(stats.received, stats.sent);
  for (let i = 0; i < answered; i++) framesAnswered.add(true);
  for (let i = answered; i < stats.sent; i++) framesAnswered.add(false);

  const end = twilioStatusCallback(TARGET, TWILIO_AUTH_TOKEN, sha1, ids.callSid);
  const done = http.post(end.url, end.body, { headers: end.headers, tags: { name: 'twilio status' } });
  check(done, { 'status callback accepted (204)': (r) => r.status === 204 });
}
