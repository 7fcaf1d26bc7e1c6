/**
 * k6 gate: the control API under a steady load — one agent's life per iteration (create, get,
 * update, versions, list, delete, get → 404), paced under the per-key rate limit. Scenario
 * logic and thresholds come from `perf/scenarios/api.ts`, which the Bun runner
 * (`npm run perf:local`) runs against `npm start` with the same thresholds.
 *
 *   BASE_URL=https://api.staging.example.org API_KEY=sk_live_… k6 run perf/k6/api.ts
 *
 * Needs k6 ≥ 0.57: it runs `.ts` files by stripping their types (esbuild), and resolves the
 * `../scenarios/*.ts` imports with their extension. Only syntax k6 runs is used (no async).
 *
 * Env: BASE_URL (default http://localhost:3000); API_KEY, or ADMIN_API_KEY as deploy.yml passes
 * it: an admin key of the target; API_RATE_LIMIT_PER_MIN (default 600, the target's per-key
 * limit; the run uses 80 % of it); API_DURATION (default 1m).
 */
import { check, fail } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import type { Options } from 'k6/options';
import {
  type ApiAnswer,
  type ApiStep,
  agentLifecycle,
  apiHeaders,
  apiIterationsPerMinute,
  apiThresholds,
  keyProbe,
} from '../scenarios/api.ts';
import { newRunId } from '../scenarios/webhooks.ts';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
const API_KEY = __ENV.API_KEY || __ENV.ADMIN_API_KEY || '';
const RATE_LIMIT_PER_MIN = Number(__ENV.API_RATE_LIMIT_PER_MIN || 600);

export const options: Options = {
  scenarios: {
    agents: {
      executor: 'constant-arrival-rate',
      rate: apiIterationsPerMinute(RATE_LIMIT_PER_MIN),
      timeUnit: '1m',
      duration: __ENV.API_DURATION || '1m',
      preAllocatedVUs: 4,
      maxVUs: 20,
    },
  },
  thresholds: apiThresholds(),
};

// Created in the init context, as k6 recommends: a status a step expects is not a failure.
const EXPECTED: Record<number, ReturnType<typeof http.expectedStatuses>> = {
  200: http.expectedStatuses(200),
  201: http.expectedStatuses(201),
  404: http.expectedStatuses(404),
};

function send(step: ApiStep): ApiAnswer {
  const res = http.request(step.method, BASE_URL + step.path, step.body, {
    headers: apiHeaders(API_KEY, step.body !== null),
    tags: { name: step.name },
    responseCallback: EXPECTED[step.expectStatus],
  });
  const answer: ApiAnswer = { status: res.status, body: typeof res.body === 'string' ? res.body : '' };
  check(answer, { [step.name]: (a) => step.check(a) });
  return answer;
}

interface SetupData {
  runId: string;
}

export function setup(): SetupData {
  if (!API_KEY) fail('set API_KEY (or ADMIN_API_KEY) to an admin API key of the target');
  const probe = keyProbe();
  const answer = send(probe);
  if (!probe.check(answer)) fail(`GET /v1/agents with the API key answered ${answer.status}`);
  return { runId: newRunId() };
}

export default function (data: SetupData): void {
  const flow = agentLifecycle(data.runId, exec.scenario.iterationInTest);
  let next = flow.next();
  while (!next.done) next = flow.next(send(next.value));
}
