/**
 * The control API scenario, as plain functions with no runtime APIs, so the k6 script
 * (`perf/k6/api.ts`) and the Bun runner (`perf/local/k6-local.ts`) make the same calls and
 * judge them the same way.
 *
 * One iteration is one agent's life: create, read, update, list its versions, list agents,
 * delete, and read it once more (404). It is a generator so one sequence serves both runtimes:
 * it yields each request and is resumed with the answer — k6 answers synchronously
 * (`http.request`), Bun after an `await fetch`. k6 has run generators since v0.43.
 */

export type ApiMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** An answer as both runners see it. */
export interface ApiAnswer {
  status: number;
  body: string;
}

/** One request of the scenario, the status it must get, and what else its answer must show. */
export interface ApiStep {
  /** Also the request's `name` tag in k6 and the check's name. */
  name: string;
  method: ApiMethod;
  /** Path under the API's base URL, query included. */
  path: string;
  body: string | null;
  /** Any other status counts as a failed request (k6 `http.expectedStatuses`). */
  expectStatus: number;
  check(answer: ApiAnswer): boolean;
}

/** Requests per iteration: what the request-rate budget is divided by. */
export const API_STEPS_PER_ITERATION = 7;

/** Headers of every API request. */
export function apiHeaders(apiKey: string, hasBody: boolean): Record<string, string> {
  return hasBody
    ? { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
    : { authorization: `Bearer ${apiKey}` };
}

function json(body: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(body) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const AGENT_ID = /^agt_[0-9a-z]{26}$/;

function step(
  name: string,
  method: ApiMethod,
  path: string,
  body: unknown,
  expectStatus: number,
  check: (doc: Record<string, unknown>) => boolean,
): ApiStep {
  return {
    name,
    method,
    path,
    body: body === undefined ? null : JSON.stringify(body),
    expectStatus,
    check(answer) {
      if (answer.status !== expectStatus) return false;
      const doc = json(answer.body);
      return doc !== null && check(doc);
    },
  };
}

const pageOk = (doc: Record<string, unknown>) =>
  Array.isArray(doc.data) && (doc.nextCursor === null || typeof doc.nextCursor === 'string');

/**
 * Agent number `n` of run `runId`, from creation to deletion. Stops early when the agent could
 * not be created (there is nothing to read or delete then; the failed create is counted).
 */
export function* agentLifecycle(runId: string, n: number): Generator<ApiStep, void, ApiAnswer> {
  const name = `perf-${runId}-${n}`;
  const created = yield step(
    'create agent',
    'POST',
    '/v1/agents',
    { name, brain: 'echo', greeting: 'Hello from the load test.', maxDurationSec: 60 },
    201,
    (a) => typeof a.id === 'string' && AGENT_ID.test(a.id) && a.version === 1 && a.name === name,
  );
  const id = json(created.body)?.id;
  if (created.status !== 201 || typeof id !== 'string' || !AGENT_ID.test(id)) return;
  const path = `/v1/agents/${id}`;
  yield step('get agent', 'GET', path, undefined, 200, (a) => a.id === id && a.brain === 'echo');
  yield step(
    'update agent',
    'PATCH',
    path,
    { greeting: 'Hello again.' },
    200,
    (a) => a.id === id && a.version === 2 && a.greeting === 'Hello again.',
  );
  yield step(
    'list versions',
    'GET',
    `${path}/versions?limit=10`,
    undefined,
    200,
    (p) => pageOk(p) && (p.data as unknown[]).length === 2,
  );
  yield step('list agents', 'GET', '/v1/agents?limit=20', undefined, 200, pageOk);
  yield step('delete agent', 'DELETE', path, undefined, 200, (d) => d.id === id && d.deleted === true);
  yield step(
    'get deleted agent',
    'GET',
    path,
    undefined,
    404,
    (e) => (e.error as Record<string, unknown> | undefined)?.code === 'not_found',
  );
}

/** Proves the key works before the load starts (k6 `setup`), so a bad key fails loudly once. */
export function keyProbe(): ApiStep {
  return step('probe key', 'GET', '/v1/agents?limit=1', undefined, 200, pageOk);
}

/**
 * Iterations per minute that keep the run under a fraction of the per-key rate limit
 * (API_RATE_LIMIT_PER_MIN, default 600): past it, control answers 429 and the run measures
 * the limiter instead of the API.
 */
export function apiIterationsPerMinute(rateLimitPerMin: number, share = 0.8): number {
  return Math.max(1, Math.floor((rateLimitPerMin * share) / API_STEPS_PER_ITERATION));
}

/** The limits the API scenario must meet, shared by k6 (`thresholds`) and the Bun runner. */
export const API_THRESHOLDS = {
  /** Share of requests answered with another status than the step expects. */
  httpReqFailedRate: 0.01,
  /** Share of checks (status and body) that passed. */
  checksRate: 0.99,
  /** p95 request duration, ms. */
  p95Ms: 500,
} as const;

/** The k6 `thresholds` of the API scenario. */
export function apiThresholds(): Record<string, string[]> {
  return {
    http_req_failed: [`rate<${API_THRESHOLDS.httpReqFailedRate}`],
    checks: [`rate>=${API_THRESHOLDS.checksRate}`],
    http_req_duration: [`p(95)<${API_THRESHOLDS.p95Ms}`],
  };
}
