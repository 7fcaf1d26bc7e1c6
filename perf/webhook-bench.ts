/**
 * Webhook admissions per second, side by side in one run: a signed Twilio voice webhook
 * answered with TwiML `<Connect><Stream>` (signature check, route, leases taken, call record,
 * stream token), then the status callback that releases the call — against core (`core/main.ts`,
 * a child process) on the in-process MemoryStore and on RedisStore (a private redis-server), and
 * against a floor: a bare Bun.serve that reads each body and answers a static TwiML string, the
 * HTTP cost alone. Closed loop: each caller starts its next call when the last one is released.
 *
 *   npm run bench:webhooks                        # 2 s per cell after 0.5 s warm-up, 3 repeats
 *   BENCH_MS=5000 BENCH_REPEATS=5 npm run bench:webhooks
 *   REDIS_URL=redis://… npm run bench:webhooks    # an existing Redis instead of a private one
 *
 * The generator (this process) shares the machine with the server: compare the columns, and the
 * server CPU per admission, more than the absolute rates. On a shared machine each cell is
 * repeated and the repeat other processes disturbed least is kept; their CPU is reported.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { type Subprocess, spawn } from 'bun';
import { freePort, type RunningService, startRedis } from '../tests/support/services.ts';
import {
  burstCallSid,
  classifyTwilioVoice,
  newRunId,
  twilioStatusCallback,
  twilioVoiceWebhook,
  type WebhookTarget,
} from './scenarios/webhooks.ts';

const STATIC_TWIML =
  '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://127.0.0.1/telephony/twilio/stream">' +
  '<Parameter name="token" value="floor"/><Parameter name="agentId" value="echo"/></Stream></Connect></Response>';

const WINDOW_MS = Number(process.env.BENCH_MS ?? 2000);
const WARMUP_MS = 500;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const CONCURRENCY = [16, 64];
const TWILIO_TOKEN = 'bench-twilio-auth-token';
const ROOT = new URL('../', import.meta.url).pathname;
const CLK_TCK = 100;

interface Server {
  name: string;
  env?: Record<string, string>;
  argv: string[];
  /** Other processes whose CPU counts as the server's (redis-server). */
  extraPids?: number[];
}

interface Cell {
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerAdmission: number;
  /** CPU that neither the server nor this generator used during the window, % of one core. */
  othersCpuPct: number;
  errors: number;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU seconds the whole machine spent busy (every core), from /proc/stat. */
function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

const sha1 = (key: string, data: string) => createHmac('sha1', key).update(data, 'utf8').digest('base64');

async function waitReady(base: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch {}
    await Bun.sleep(100);
  }
  throw new Error(`server at ${base} did not start`);
}

/** `callers` closed loops of admit + release for `ms`; returns what was measured in the window. */
async function load(target: WebhookTarget, callers: number, ms: number, pids: number[]): Promise<Cell> {
  const runId = newRunId();
  let n = 0;
  let done = 0;
  let errors = 0;
  const latencies: number[] = [];
  const cpu0 = pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const machine0 = machineBusySeconds();
  const generator0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < deadline) {
        const callSid = burstCallSid(runId, n++);
        const offer = twilioVoiceWebhook(target, TWILIO_TOKEN, sha1, callSid, 'echo');
        const t0 = performance.now();
        const res = await fetch(offer.url, { method: 'POST', body: offer.body, headers: offer.headers });
        const verdict = classifyTwilioVoice(res.status, await res.text());
        latencies.push(performance.now() - t0);
        const end = twilioStatusCallback(target, TWILIO_TOKEN, sha1, callSid);
        const released = await fetch(end.url, { method: 'POST', body: end.body, headers: end.headers });
        await released.arrayBuffer();
        if (verdict !== 'admitted' || released.status !== 204) errors++;
        else done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = pids.reduce((a, pid) => a + cpuSeconds(pid), 0) - cpu0;
  const generator = process.cpuUsage(generator0);
  const others = machineBusySeconds() - machine0 - cpu - (generator.user + generator.system) / 1e6;
  latencies.sort((a, b) => a - b);
  return {
    perSec: done / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    cpuUsPerAdmission: (cpu / Math.max(1, done)) * 1e6,
    othersCpuPct: Math.max(0, (others / seconds) * 100),
    errors,
  };
}

interface Running {
  target: WebhookTarget;
  /** The server process, plus redis-server for RedisStore: their CPU is the server's. */
  pids: number[];
  stop(): Promise<void>;
}

async function start(server: Server): Promise<Running> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // The Store is the server's own choice: an inherited REDIS_URL must not leak into the MemoryStore run.
  const { REDIS_URL: _inherited, ...env } = process.env;
  const proc: Subprocess = spawn([process.execPath, 'run', ...server.argv], {
    cwd: ROOT,
    env: { ...env, ...server.env, PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: base },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  const stop = async () => {
    proc.kill('SIGTERM');
    await proc.exited;
  };
  try {
    await waitReady(base);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    target: { baseUrl: base, signedBaseUrl: base },
    pids: [proc.pid, ...(server.extraPids ?? [])],
    stop,
  };
}

async function main(): Promise<void> {
  let redis: RunningService | undefined;
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    redis = await startRedis();
    redisUrl = redis.url;
  }
  const core = {
    REALTIME_WS_SECRET: 'bench-secret-0123456789abcdef',
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    LOG_LEVEL: 'warn',
  };
  const servers: Server[] = [
    { name: 'floor: Bun.serve, static TwiML', argv: ['perf/webhook-bench.ts', '--floor'] },
    { name: 'core, MemoryStore', argv: ['core/main.ts'], env: core },
    {
      name: 'core, RedisStore',
      argv: ['core/main.ts'],
      env: { ...core, REDIS_URL: redisUrl, STORE_PREFIX: `bench:${newRunId()}:` },
      extraPids: redis ? [redis.pid] : [],
    },
  ];
  // Every server up at once (idle ones cost nothing), cells interleaved and repeated: on a shared
  // machine each cell keeps the repeat that other processes disturbed least.
  const running: Running[] = [];
  const results = servers.map(() => new Map<number, Cell>());
  try {
    for (const server of servers) running.push(await start(server));
    for (const callers of CONCURRENCY) {
      for (let repeat = 0; repeat < REPEATS; repeat++) {
        for (const [i, r] of running.entries()) {
          await load(r.target, callers, WARMUP_MS, r.pids);
          const cell = await load(r.target, callers, WINDOW_MS, r.pids);
          const kept = results[i]!.get(callers);
          if (!kept || cell.othersCpuPct < kept.othersCpuPct)
            results[i]!.set(callers, { ...cell, errors: cell.errors + (kept?.errors ?? 0) });
          else kept.errors += cell.errors;
        }
      }
    }
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    await redis?.stop();
  }

  const [floor, memory, onRedis] = results as [Map<number, Cell>, Map<number, Cell>, Map<number, Cell>];
  const f = (n: number, d = 0) =>
    n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log(
    `\nWebhook admissions (signed Twilio voice webhook → TwiML, then status callback → 204): ${WINDOW_MS} ms per cell after ${WARMUP_MS} ms warm-up, best of ${REPEATS} by least other-process CPU`,
  );
  console.log(
    `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Bun ${Bun.version}; generator and server share the machine\n`,
  );
  console.log(
    `| measure | ${servers.map((s) => s.name).join(' | ')} | MemoryStore / floor | RedisStore / MemoryStore |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  const row = (label: string, pick: (c: Cell) => number, show: (v: number) => string, ratios = true) => {
    for (const callers of CONCURRENCY) {
      const [a, b, c] = [floor, memory, onRedis].map((m) => pick(m.get(callers)!)) as [
        number,
        number,
        number,
      ];
      const tail = ratios ? ` ${(b / a).toFixed(2)}x | ${(c / b).toFixed(2)}x |` : '  |  |';
      console.log(`| ${label}, ${callers} callers | ${show(a)} | ${show(b)} | ${show(c)} |${tail}`);
    }
  };
  row(
    'admissions / s',
    (c) => c.perSec,
    (v) => f(v),
  );
  row(
    'voice webhook p50',
    (c) => c.p50Ms,
    (v) => `${f(v, 2)} ms`,
  );
  row(
    'voice webhook p99',
    (c) => c.p99Ms,
    (v) => `${f(v, 2)} ms`,
  );
  row(
    'server CPU per admission',
    (c) => c.cpuUsPerAdmission,
    (v) => `${f(v)} µs`,
  );
  row(
    "other processes' CPU in the window",
    (c) => c.othersCpuPct,
    (v) => `${f(v)} %`,
    false,
  );
  const errors = results.flatMap((m) => [...m.values()]).reduce((a, c) => a + c.errors, 0);
  console.log(
    `\n(server CPU: core, plus redis-server in the RedisStore column; % of one core; calls not admitted or not released: ${errors})`,
  );
  if (errors > 0) process.exitCode = 1;
}

/** The floor: reads each body, answers a static TwiML string (or 204 for the status callback). */
function serveFloor(): void {
  Bun.serve({
    port: Number(process.env.PORT),
    hostname: '127.0.0.1',
    async fetch(req) {
      await req.text();
      const { pathname } = new URL(req.url);
      if (pathname === '/health') return new Response('ok');
      if (pathname === '/telephony/twilio/status') return new Response(null, { status: 204 });
      return new Response(STATIC_TWIML, { headers: { 'content-type': 'text/xml; charset=utf-8' } });
    },
  });
}

// With --floor this file is the floor server (a child process, like core); otherwise the bench.
if (process.argv.includes('--floor')) serveFloor();
else await main();
