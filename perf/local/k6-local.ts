/**
 * The k6 gate's scenarios, run by Bun where k6 cannot be installed: the same scenario modules
 * (`perf/scenarios/*.ts`) and the same threshold objects the k6 scripts in `perf/k6/` declare,
 * evaluated here over k6-style metrics (Rate, Trend, Counter; `http_req_failed`,
 * `http_req_duration`, `checks`). Prints PASS/FAIL per threshold; exits 1 on any FAIL.
 *
 *   npm start                                  # prints an admin API key on first boot
 *   API_KEY=sk_live_… TWILIO_AUTH_TOKEN=… npm run perf:local
 *   npm run perf:local -- --scenarios api,webhooks
 *
 * The target (`npm start`, or any deployment) needs the same TWILIO_AUTH_TOKEN (and, for Jambonz
 * webhooks, JAMBONZ_WEBHOOK_SECRET); `npm start` has none by default, so start it with
 * `TWILIO_AUTH_TOKEN=… npm start`. Env, as the k6 scripts read it: BASE_URL (default
 * http://localhost:3000); PUBLIC_BASE_URL (the URL the target signs against, default BASE_URL);
 * API_KEY or ADMIN_API_KEY; TWILIO_AUTH_TOKEN; JAMBONZ_WEBHOOK_SECRET (optional);
 * API_RATE_LIMIT_PER_MIN (600) and API_DURATION (1m); BURST_CALLS, CAPACITY_LIMIT,
 * BURST_ROUNDS, BURST_ROUND_MS, BURST_HOLD_MS (see perf/scenarios/webhooks.ts).
 *
 * The voice scenario is `perf/local/voice-bench.ts --only sipai` (VOICE_CALLS calls, default
 * 200, for CALL_SECONDS, default 10): it starts its own core with the loopback agent and mints
 * stream tokens itself, so it does not use BASE_URL; its VOICE_THRESHOLDS verdicts count here.
 */
import { createHmac } from 'node:crypto';
import { parseArgs } from 'node:util';
import { spawn } from 'bun';
import {
  type ApiAnswer,
  type ApiStep,
  agentLifecycle,
  apiHeaders,
  apiIterationsPerMinute,
  apiThresholds,
  keyProbe,
} from '../scenarios/api.ts';
import {
  type BurstPlan,
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

/** k6's metric kinds, kept as k6 keeps them: rates as passes/total, trends as every sample. */
export class Metrics {
  private readonly rates = new Map<string, { passes: number; total: number }>();
  private readonly trends = new Map<string, number[]>();
  private readonly counters = new Map<string, number>();

  rate(name: string, ok: boolean): void {
    const r = this.rates.get(name) ?? { passes: 0, total: 0 };
    r.passes += ok ? 1 : 0;
    r.total++;
    this.rates.set(name, r);
  }

  trend(name: string, value: number): void {
    const t = this.trends.get(name);
    if (t) t.push(value);
    else this.trends.set(name, [value]);
  }

  count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  /** Records a k6 `check`: one sample of `checks`. */
  check(ok: boolean): void {
    this.rate('checks', ok);
  }

  /** `rate`, `count`, `avg`, `min`, `max`, `med` or `p(N)` of a metric; null when it has no such value. */
  aggregate(metric: string, agg: string): number | null {
    const r = this.rates.get(metric);
    if (r) return agg === 'rate' && r.total > 0 ? r.passes / r.total : null;
    if (this.counters.has(metric) || agg === 'count')
      return agg === 'count' ? (this.counters.get(metric) ?? 0) : null;
    const values = this.trends.get(metric);
    if (!values || values.length === 0) return null;
    const sorted = [...values].sort((a, b) => a - b);
    const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(agg);
    if (p) return percentile(sorted, Number(p[1]) / 100);
    if (agg === 'med') return percentile(sorted, 0.5);
    if (agg === 'avg') return sorted.reduce((a, b) => a + b, 0) / sorted.length;
    if (agg === 'min') return sorted[0]!;
    if (agg === 'max') return sorted[sorted.length - 1]!;
    return null;
  }

  samples(metric: string): number {
    return this.rates.get(metric)?.total ?? this.trends.get(metric)?.length ?? 0;
  }
}

/** Linear interpolation between the closest ranks, as k6's Trend does. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 1) return sorted[0]!;
  const i = q * (sorted.length - 1);
  const lo = sorted[Math.floor(i)]!;
  const hi = sorted[Math.ceil(i)]!;
  return lo + (hi - lo) * (i - Math.floor(i));
}

export interface Verdict {
  metric: string;
  expression: string;
  value: number | null;
  ok: boolean;
}

const EXPRESSION =
  /^\s*(rate|count|avg|min|max|med|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/**
 * Evaluates a k6 `thresholds` object (the string form) against the metrics. A rate or trend
 * with no samples fails (a threshold nothing was measured against proves nothing); a counter
 * never incremented counts 0, as a k6 Counter does.
 */
export function evaluate(thresholds: Record<string, string[]>, metrics: Metrics): Verdict[] {
  const out: Verdict[] = [];
  for (const [metric, expressions] of Object.entries(thresholds)) {
    for (const expression of expressions) {
      const m = EXPRESSION.exec(expression);
      if (!m) throw new Error(`threshold "${expression}" on ${metric} is not one this runner understands`);
      const [, agg, op, limitText] = m;
      const value = metrics.aggregate(metric, agg!);
      const limit = Number(limitText);
      const ok =
        value !== null &&
        (op === '<'
          ? value < limit
          : op === '<='
            ? value <= limit
            : op === '>'
              ? value > limit
              : op === '>='
                ? value >= limit
                : op === '!='
                  ? value !== limit
                  : value === limit);
      out.push({ metric, expression, value, ok });
    }
  }
  return out;
}

/** One HTTP request, recorded as k6 records it (`http_req_duration`, `http_req_failed`). */
async function request(
  metrics: Metrics,
  method: string,
  url: string,
  init: { body?: string | null; headers: Record<string, string>; expectStatus?: number },
): Promise<ApiAnswer & { ms: number }> {
  const started = performance.now();
  let status = 0;
  let body = '';
  try {
    const res = await fetch(url, { method, body: init.body ?? undefined, headers: init.headers });
    status = res.status;
    body = await res.text();
  } catch {
    // No answer: status 0, a failed request, as in k6.
  }
  const ms = performance.now() - started;
  const expected =
    init.expectStatus === undefined ? status >= 200 && status < 400 : status === init.expectStatus;
  if (status !== 0) metrics.trend('http_req_duration', ms);
  metrics.rate('http_req_failed', !expected);
  return { status, body, ms };
}

const sleep = (ms: number) => (ms > 0 ? Bun.sleep(ms) : Promise.resolve());
const sleepUntil = (epochMs: number) => sleep(epochMs - Date.now());

/** k6's duration strings as the scripts use them: "90s", "1m", "1500ms". */
function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`API_DURATION must look like 30s, 1m or 1500ms, got "${text}"`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}

export interface Target {
  baseUrl: string;
  signedBaseUrl: string;
  apiKey: string;
}

/** The API scenario: agent lifecycles at the k6 script's arrival rate, for `durationMs`. */
export async function runApi(
  target: Target,
  opts: { rateLimitPerMin: number; durationMs: number },
): Promise<{ metrics: Metrics; thresholds: Record<string, string[]>; summary: string }> {
  const metrics = new Metrics();
  const send = async (step: ApiStep): Promise<ApiAnswer> => {
    const answer = await request(metrics, step.method, target.baseUrl + step.path, {
      body: step.body,
      headers: apiHeaders(target.apiKey, step.body !== null),
      expectStatus: step.expectStatus,
    });
    metrics.check(step.check(answer));
    return answer;
  };
  const probe = keyProbe();
  const probed = await send(probe);
  if (!probe.check(probed)) throw new Error(`GET /v1/agents with API_KEY answered ${probed.status}`);

  const runId = newRunId();
  const everyMs = 60_000 / apiIterationsPerMinute(opts.rateLimitPerMin);
  const started = Date.now();
  const iterations: Promise<void>[] = [];
  for (let n = 0; n * everyMs < opts.durationMs; n++) {
    await sleepUntil(started + n * everyMs);
    iterations.push(
      (async () => {
        const flow = agentLifecycle(runId, n);
        let next = flow.next();
        while (!next.done) next = flow.next(await send(next.value));
      })(),
    );
  }
  await Promise.all(iterations);
  const seconds = (Date.now() - started) / 1000;
  return {
    metrics,
    thresholds: apiThresholds(),
    summary: `${iterations.length} agent lifecycles, ${metrics.samples('http_req_failed')} requests in ${seconds.toFixed(1)} s`,
  };
}

const sha1 = (key: string, data: string) => createHmac('sha1', key).update(data, 'utf8').digest('base64');
const sha256 = (key: string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest('hex');

/** The webhook scenario: rounds of bursts against an agent limited to `plan.limit` calls. */
export async function runWebhooks(
  target: Target,
  opts: { plan: BurstPlan; twilioAuthToken: string; jambonzSecret: string },
): Promise<{ metrics: Metrics; thresholds: Record<string, string[]>; summary: string }> {
  const { plan, twilioAuthToken, jambonzSecret } = opts;
  const metrics = new Metrics();
  const hooks: WebhookTarget = { baseUrl: target.baseUrl, signedBaseUrl: target.signedBaseUrl };
  const runId = newRunId();
  // Setup and teardown requests count, as in k6 (`setup`/`teardown` HTTP is measured too).
  const created = await request(metrics, 'POST', `${target.baseUrl}/v1/agents`, {
    headers: apiHeaders(target.apiKey, true),
    body: burstAgentBody(runId, plan.limit),
  });
  const agentId = created.status === 201 ? (JSON.parse(created.body) as { id?: string }).id : undefined;
  if (!agentId) throw new Error(`creating the burst agent answered ${created.status}`);

  const call = async (n: number, roundStart: number) => {
    const callSid = burstCallSid(runId, n);
    const jambonz = jambonzSecret !== '' && n % 2 === 1;
    const offer: WebhookRequest = jambonz
      ? jambonzCallWebhook(hooks, jambonzSecret, sha256, callSid, agentId)
      : twilioVoiceWebhook(hooks, twilioAuthToken, sha1, callSid, agentId);
    const answer = await request(metrics, 'POST', offer.url, offer);
    const verdict = jambonz
      ? classifyJambonzCall(answer.status, answer.body)
      : classifyTwilioVoice(answer.status, answer.body);
    metrics.trend(WEBHOOK_METRICS.answerMs, answer.ms);
    metrics.rate(WEBHOOK_METRICS.polite, verdict !== 'error');
    if (verdict === 'admitted') metrics.count(WEBHOOK_METRICS.admitted);
    if (verdict === 'busy') metrics.count(WEBHOOK_METRICS.busy);
    metrics.check(verdict !== 'error');
    if (verdict !== 'admitted') return;
    await sleepUntil(roundStart + plan.holdMs);
    const end = jambonz
      ? jambonzStatusHook(hooks, jambonzSecret, sha256, callSid)
      : twilioStatusCallback(hooks, twilioAuthToken, sha1, callSid);
    const done = await request(metrics, 'POST', end.url, end);
    metrics.check(done.status === 204);
  };

  const startAt = Date.now() + 200;
  try {
    for (let round = 0; round < plan.rounds; round++) {
      const roundStart = startAt + round * plan.roundMs;
      await sleepUntil(roundStart);
      await Promise.all(
        Array.from({ length: plan.calls }, (_, i) => call(round * plan.calls + i, roundStart)),
      );
    }
  } finally {
    await request(metrics, 'DELETE', `${target.baseUrl}/v1/agents/${agentId}`, {
      headers: apiHeaders(target.apiKey, false),
    });
  }
  const providers = jambonzSecret ? 'Twilio and Jambonz' : 'Twilio';
  return {
    metrics,
    thresholds: webhookThresholds(plan),
    summary: `${plan.rounds} round${plan.rounds === 1 ? '' : 's'} of ${plan.calls} ${providers} call webhooks against an agent limited to ${plan.limit}`,
  };
}

/** The voice scenario: voice-bench's sipai run, whose PASS/FAIL lines are VOICE_THRESHOLDS. */
async function runVoice(calls: number, seconds: number): Promise<Verdict[]> {
  const proc = spawn(
    [
      process.execPath,
      'run',
      'perf/local/voice-bench.ts',
      '--only',
      'sipai',
      '--calls',
      String(calls),
      '--seconds',
      String(seconds),
    ],
    { cwd: new URL('../../', import.meta.url).pathname, stdout: 'pipe', stderr: 'inherit' },
  );
  const output = await new Response(proc.stdout).text();
  const code = await proc.exited;
  process.stdout.write(output);
  const verdicts: Verdict[] = [...output.matchAll(/^\s*(PASS|FAIL) ([^:]+): (\S+) \((.+)\)\s*$/gm)].map(
    (m) => ({
      metric: m[2]!,
      expression: m[4]!,
      value: Number(m[3]!.replaceAll(',', '')),
      ok: m[1] === 'PASS',
    }),
  );
  if (code !== 0 && verdicts.every((v) => v.ok))
    verdicts.push({ metric: 'voice-bench exit code', expression: '== 0', value: code, ok: false });
  if (verdicts.length === 0)
    verdicts.push({ metric: 'voice-bench thresholds', expression: 'reported', value: null, ok: false });
  return verdicts;
}

function report(name: string, summary: string, verdicts: Verdict[]): boolean {
  console.log(`\n${name}: ${summary}`);
  for (const v of verdicts) {
    const value = v.value === null ? 'no samples' : Number(v.value.toFixed(4)).toString();
    console.log(`  ${v.ok ? 'PASS' : 'FAIL'} ${v.metric} ${v.expression} (${value})`);
  }
  return verdicts.every((v) => v.ok);
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: { scenarios: { type: 'string', default: 'api,webhooks,voice' } },
  });
  const env = process.env;
  const scenarios = new Set(args.scenarios.split(',').map((s) => s.trim()));
  const baseUrl = (env.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
  const target: Target = {
    baseUrl,
    signedBaseUrl: (env.PUBLIC_BASE_URL || baseUrl).replace(/\/+$/, ''),
    apiKey: env.API_KEY || env.ADMIN_API_KEY || '',
  };
  const needsKey = scenarios.has('api') || scenarios.has('webhooks');
  if (needsKey && !target.apiKey) {
    console.error('set API_KEY to an admin API key of the target (npm start prints one on first boot)');
    process.exit(2);
  }
  if (scenarios.has('webhooks') && !env.TWILIO_AUTH_TOKEN) {
    console.error('set TWILIO_AUTH_TOKEN, and start the target with the same one');
    process.exit(2);
  }
  let ok = true;
  if (scenarios.has('api')) {
    const r = await runApi(target, {
      rateLimitPerMin: Number(env.API_RATE_LIMIT_PER_MIN || 600),
      durationMs: durationMs(env.API_DURATION || '1m'),
    });
    ok = report('api', r.summary, evaluate(r.thresholds, r.metrics)) && ok;
  }
  if (scenarios.has('webhooks')) {
    const r = await runWebhooks(target, {
      plan: burstPlanFromEnv(env),
      twilioAuthToken: env.TWILIO_AUTH_TOKEN ?? '',
      jambonzSecret: env.JAMBONZ_WEBHOOK_SECRET ?? '',
    });
    ok = report('webhooks', r.summary, evaluate(r.thresholds, r.metrics)) && ok;
  }
  if (scenarios.has('voice')) {
    const calls = Number(env.VOICE_CALLS || 200);
    const seconds = Number(env.CALL_SECONDS || 10);
    const verdicts = await runVoice(calls, seconds);
    ok = report('voice', `voice-bench --only sipai, ${calls} calls, ${seconds} s window`, verdicts) && ok;
  }
  console.log(`\nk6-local: ${ok ? 'every threshold passed' : 'THRESHOLDS FAILED'}`);
  process.exitCode = ok ? 0 : 1;
}
