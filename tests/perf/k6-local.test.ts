import { spawn } from 'bun';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiThresholds } from '../../perf/scenarios/api.ts';
import { burstPlanFromEnv, webhookThresholds } from '../../perf/scenarios/webhooks.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';

/**
 * Issue 6, check 4: the local generator runs the k6 gate's scenario modules against `npm start`
 * (local.ts: MemoryStore + PGlite) and passes the very threshold objects the k6 scripts declare.
 */

const ROOT = new URL('../../', import.meta.url).pathname;
const PUBLIC = 'http://sipai.test';
const TWILIO_TOKEN = 'k6-local-twilio-token';
const JAMBONZ_SECRET = 'k6-local-jambonz-secret';
const BURST = {
  BURST_CALLS: '24',
  CAPACITY_LIMIT: '8',
  BURST_ROUNDS: '2',
  BURST_ROUND_MS: '1500',
  BURST_HOLD_MS: '500',
};

let local: RunningEntry;
let baseUrl: string;
let apiKey: string;

beforeAll(async () => {
  local = startEntry('local.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: 'memory://',
    PUBLIC_BASE_URL: PUBLIC,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
    // Small, but above the burst agent's limit (8): the agent's limit is the one that binds.
    TELEPHONY_GLOBAL_MAX_CONCURRENCY: '20',
    LOG_LEVEL: 'warn',
  });
  [, baseUrl = ''] = await local.waitFor(/sipai is up on (http:\/\/\S+)/, 30_000);
  [, apiKey = ''] = await local.waitFor(
    /Admin API key for account \S+ \(shown once[^\n]*\n\s+(sk_live_\S+)/,
    5_000,
  );
});

afterAll(async () => {
  await local?.stop();
});

async function runLocal(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const proc = spawn([process.execPath, 'run', 'perf/local/k6-local.ts', '--scenarios', 'api,webhooks'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, output: out + err };
}

/** The PASS/FAIL lines the runner printed for one scenario, as "metric expression" → verdict. */
function verdicts(output: string, scenario: string): Map<string, string> {
  const section = output.split(/\n(?=\w+: )/).find((s) => s.startsWith(`${scenario}:`)) ?? '';
  return new Map([...section.matchAll(/^ {2}(PASS|FAIL) (\S+ \S+) /gm)].map((m) => [m[2]!, m[1]!]));
}

const keysOf = (thresholds: Record<string, string[]>) =>
  Object.entries(thresholds).flatMap(([metric, exprs]) => exprs.map((e) => `${metric} ${e}`));

describe('perf:local against npm start', () => {
  it('passes every threshold the k6 api and webhooks scripts declare', { timeout: 40_000 }, async () => {
    const { code, output } = await runLocal({
      BASE_URL: baseUrl,
      PUBLIC_BASE_URL: PUBLIC,
      API_KEY: apiKey,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
      API_DURATION: '4s',
      ...BURST,
    });
    expect(output).toContain('k6-local: every threshold passed');
    expect(code).toBe(0);
    const api = verdicts(output, 'api');
    const webhooks = verdicts(output, 'webhooks');
    expect([...api.keys()]).toEqual(keysOf(apiThresholds()));
    expect([...webhooks.keys()]).toEqual(keysOf(webhookThresholds(burstPlanFromEnv(BURST))));
    expect([...api.values(), ...webhooks.values()].every((v) => v === 'PASS')).toBe(true);
    // The burst was refused politely in both providers' words, and the counts held exactly.
    expect(webhooks.get('webhook_admitted count==16')).toBe('PASS');
    expect(webhooks.get('webhook_busy count==32')).toBe('PASS');
    expect(output).toMatch(/webhooks: 2 rounds of 24 Twilio and Jambonz call webhooks/);
  });

  it('fails, exit code 1, when core rejects the signatures', { timeout: 20_000 }, async () => {
    const { code, output } = await runLocal({
      BASE_URL: baseUrl,
      PUBLIC_BASE_URL: PUBLIC,
      API_KEY: apiKey,
      TWILIO_AUTH_TOKEN: 'not-the-token',
      API_DURATION: '1s',
      ...BURST,
      BURST_ROUNDS: '1',
    });
    expect(code).toBe(1);
    const webhooks = verdicts(output, 'webhooks');
    expect(webhooks.get('http_req_failed rate<0.01')).toBe('FAIL');
    expect(webhooks.get('webhook_polite rate>=1')).toBe('FAIL');
    expect(output).toContain('k6-local: THRESHOLDS FAILED');
  });
});
