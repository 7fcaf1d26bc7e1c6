/**
 * Webhook delivery, end to end, side by side in one run: core's events appended to the Store's
 * global stream → written to Postgres with their outbox rows by the recorder
 * (control/workers/recorder.ts) → sent, signed, by the dispatcher (control/workers/dispatcher.ts)
 * → a real HTTP receiver on loopback. On embedded PGlite with a MemoryStore (the development
 * default) and on PostgreSQL with Redis (production's shape), against a floor: a bare HTTP POST
 * loop to the same receiver with the same concurrency as the dispatcher, the HTTP cost alone.
 *
 * Two phases per column:
 *  - throughput: `--events` events appended at once; events/s recorded (first append to the
 *    recorder's last write) and delivered (first append to the receiver's last request);
 *  - latency: `--paced` events, one call (two events) at a time every `--gap-ms`; delivery latency
 *    from the append to the receiver's arrival, p50/p99 (the floor: one POST at a time).
 * Each call appends `call.started` and `call.ended`; each becomes one delivery (`call.answered`,
 * `call.ended`) to the one endpoint. The workers run with their defaults (the dispatcher polls
 * every 250 ms when idle, 16 requests in flight), as a deployment does.
 *
 *   npm run bench:delivery                                  # both backings, 4,000 events, 400 paced
 *   npm run bench:delivery -- --backing=postgres --events=20000
 *   npm run bench:delivery -- --quick                       # a few hundred events: a smoke run
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:delivery -- --backing=postgres
 *
 * Without DATABASE_URL/REDIS_URL the PostgreSQL column starts a private PostgreSQL and
 * redis-server (tests/support/services.ts). The generator, the workers and the receiver share
 * this process and the machine: compare the columns and the ratios more than the absolute rates.
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Control } from '../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql, startEmbeddedPostgres } from '../control/db/index.ts';
import { parseConfig } from '../core/config/index.ts';
import { createLogger } from '../core/observability/index.ts';
import { keys, MemoryStore, RedisStore, type Store } from '../core/store/index.ts';
import { type RunningService, startPostgres, startRedis } from '../tests/support/services.ts';

export type Backing = 'pglite' | 'postgres';

export interface BenchOptions {
  backings: Backing[];
  /** Events appended at once in the throughput phase (even: two per call). */
  events: number;
  /** Events in the latency phase, a call (two events) every `gapMs`. */
  paced: number;
  gapMs: number;
  /** Requests in flight: the dispatcher's and the floor's. */
  concurrency: number;
  /** How long a phase may take before the run fails (a stuck pipeline, not a slow one). */
  phaseTimeoutMs: number;
}

/** One column of the table. */
export interface Column {
  name: string;
  events: number;
  /** Events/s written by the recorder (null for the floor, which has none). */
  recordedPerSec: number | null;
  deliveredPerSec: number;
  p50Ms: number;
  p99Ms: number;
  paced: number;
}

const QUICK: Partial<BenchOptions> = { events: 200, paced: 40, gapMs: 10, phaseTimeoutMs: 60_000 };
const DEFAULTS: BenchOptions = {
  backings: ['pglite', 'postgres'],
  events: 4_000,
  paced: 400,
  gapMs: 20,
  concurrency: 16,
  phaseTimeoutMs: 300_000,
};

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

/** Polls `check` every 5 ms until it holds; fails after `timeoutMs` (the phase is stuck). */
async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs} ms`);
    await Bun.sleep(5);
  }
}

/** The local receiver: counts requests, and remembers when each event arrived. */
function startReceiver() {
  const arrivals = new Map<string, number>();
  let requests = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = (await req.json()) as { callId?: string | null; type?: string };
      const at = performance.now();
      requests++;
      // The floor's requests carry their own key; the pipeline's are keyed by call and type.
      const key = req.headers.get('x-bench-key') ?? `${body.callId}:${body.type}`;
      if (!arrivals.has(key)) arrivals.set(key, at);
      return new Response('ok');
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    arrivals,
    get requests() {
      return requests;
    },
    stop: () => server.stop(true),
  };
}

type Receiver = ReturnType<typeof startReceiver>;

/** A database and a Store for one column, and how to give them back. */
async function openBacking(
  backing: Backing,
): Promise<{ sql: Sql; store: Store; kind: 'postgres' | 'embedded'; close(): Promise<void> }> {
  if (backing === 'pglite') {
    const pg = await startEmbeddedPostgres('memory://');
    const sql = connectDatabase(pg.url, EMBEDDED_POOL_MAX);
    const store = new MemoryStore();
    return {
      sql,
      store,
      kind: 'embedded',
      async close() {
        await sql.end({ timeout: 5 });
        await pg.stop();
        await store.close();
      },
    };
  }
  const services: RunningService[] = [];
  let databaseUrl = process.env.DATABASE_URL;
  let redisUrl = process.env.REDIS_URL;
  if (!databaseUrl) {
    const pg = await startPostgres();
    services.push(pg);
    databaseUrl = pg.url;
  }
  if (!redisUrl) {
    const redis = await startRedis();
    services.push(redis);
    redisUrl = redis.url;
  }
  const sql = connectDatabase(databaseUrl, 10);
  // A fresh server answers its port before it accepts sessions.
  for (let i = 0; ; i++) {
    try {
      await sql`select 1`;
      break;
    } catch (err) {
      if (i > 200) throw err;
      await Bun.sleep(50);
    }
  }
  const store = await RedisStore.connect(redisUrl, { prefix: `bench:${randomUUID()}:` });
  return {
    sql,
    store,
    kind: 'postgres',
    async close() {
      await store.close();
      await sql.end({ timeout: 5 });
      for (const s of services) await s.stop();
    },
  };
}

/** Appends a call's two global events as core's timeline writes them; returns when each went in. */
async function appendCall(store: Store, callId: string, agentId: string): Promise<number[]> {
  const out: number[] = [];
  const fields = (type: string, tMs: number, data: Record<string, unknown>) => ({
    type,
    callId,
    agentId,
    protocol: 'twilio',
    at: new Date().toISOString(),
    tMs: String(tMs),
    data: JSON.stringify(data),
  });
  out.push(performance.now());
  await store.append(
    keys.events,
    fields('call.started', 0, { protocol: 'twilio', direction: 'inbound' }),
    1e6,
  );
  out.push(performance.now());
  await store.append(
    keys.events,
    fields('call.ended', 1000, { reason: 'hangup', durationMs: 1000, turns: 1 }),
    1e6,
  );
  return out;
}

/** The pipeline on one backing: both phases. */
async function runPipeline(backing: Backing, receiver: Receiver, o: BenchOptions): Promise<Column> {
  const db = await openBacking(backing);
  const control = new Control({
    config: parseConfig({ WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }),
    log: createLogger({ level: 'silent', service: 'bench' }),
    sql: db.sql,
    store: db.store,
    databaseKind: db.kind,
    workers: { campaigns: false, sweeper: false, dispatcher: { concurrency: o.concurrency } },
  });
  try {
    await control.start();
    const accountId = (await control.services.accounts.create(`bench-${randomUUID()}`)).id;
    const agentId = (await control.services.agents.create(accountId, { name: 'Bench' })).id;
    await control.services.webhooks.create(accountId, { url: receiver.url });
    const run = randomUUID().slice(0, 8);
    const recorder = control.recorder!;
    const dispatcher = control.dispatcher!;

    // Throughput: every event at once.
    const calls = Math.ceil(o.events / 2);
    const recorded0 = recorder.recorded;
    const delivered0 = dispatcher.counts.delivered;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: calls }, (_, i) => appendCall(db.store, `bench-${run}-t${i}`, agentId)),
    );
    let recordedAt = 0;
    await until(
      () => {
        if (!recordedAt && recorder.recorded - recorded0 >= calls * 2) recordedAt = performance.now();
        return dispatcher.counts.delivered - delivered0 >= calls * 2;
      },
      o.phaseTimeoutMs,
      `${backing}: ${calls * 2} events delivered`,
    );
    const deliveredAt = performance.now();
    recordedAt ||= deliveredAt;

    // Latency: one call at a time, each event timed from its append to its arrival.
    const pacedCalls = Math.ceil(o.paced / 2);
    const latencies: number[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < pacedCalls; i++) {
      const callId = `bench-${run}-p${i}`;
      pending.push(
        appendCall(db.store, callId, agentId).then(async ([tStarted, tEnded]) => {
          const keysOf = [`${callId}:call.answered`, `${callId}:call.ended`];
          await until(
            () => keysOf.every((k) => receiver.arrivals.has(k)),
            o.phaseTimeoutMs,
            `${backing}: ${callId} delivered`,
          );
          latencies.push(receiver.arrivals.get(keysOf[0]!)! - tStarted!);
          latencies.push(receiver.arrivals.get(keysOf[1]!)! - tEnded!);
        }),
      );
      await Bun.sleep(o.gapMs);
    }
    await Promise.all(pending);
    latencies.sort((a, b) => a - b);
    return {
      name: backing === 'pglite' ? 'PGlite + MemoryStore' : 'PostgreSQL + Redis',
      events: calls * 2,
      recordedPerSec: (calls * 2) / ((recordedAt - started) / 1000),
      deliveredPerSec: (calls * 2) / ((deliveredAt - started) / 1000),
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      paced: latencies.length,
    };
  } finally {
    await control.close();
    await db.close();
  }
}

/** The floor: bare POSTs of a webhook-sized body to the same receiver. */
async function runFloor(receiver: Receiver, o: BenchOptions): Promise<Column> {
  const body = JSON.stringify({
    id: 'evt_floor',
    type: 'call.ended',
    version: 1,
    accountId: 'acc_floor',
    callId: 'floor',
    at: new Date().toISOString(),
    data: { reason: 'hangup', durationMs: 1000, turns: 1, transcript: [] },
  });
  const post = (key: string) =>
    fetch(receiver.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-bench-key': key },
    }).then((r) => r.arrayBuffer());
  const run = randomUUID().slice(0, 8);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.events) await post(`floor-${run}-${next++}`);
    }),
  );
  const elapsed = performance.now() - started;
  const latencies: number[] = [];
  for (let i = 0; i < o.paced; i++) {
    const key = `floor-${run}-p${i}`;
    const t0 = performance.now();
    await post(key);
    latencies.push(receiver.arrivals.get(key)! - t0);
  }
  latencies.sort((a, b) => a - b);
  return {
    name: 'floor: bare HTTP POST',
    events: o.events,
    recordedPerSec: null,
    deliveredPerSec: o.events / (elapsed / 1000),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    paced: latencies.length,
  };
}

/** Runs every column in one process, against one receiver. */
export async function runDeliveryBench(options: Partial<BenchOptions> = {}): Promise<Column[]> {
  const o = { ...DEFAULTS, ...options };
  const receiver = startReceiver();
  try {
    const columns: Column[] = [];
    for (const backing of o.backings) columns.push(await runPipeline(backing, receiver, o));
    columns.push(await runFloor(receiver, o));
    return columns;
  } finally {
    receiver.stop();
  }
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '–');

/** The results as a Markdown table: one row per column, the ratios against the floor last. */
export function formatTable(columns: Column[]): string {
  const floor = columns.find((c) => c.recordedPerSec === null);
  const lines = [
    '| pipeline | events | recorded/s | delivered/s | latency p50 ms | latency p99 ms | floor ÷ delivered/s | p50 ÷ floor p50 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of columns) {
    const isFloor = c === floor;
    lines.push(
      `| ${c.name} | ${fmt(c.events)} | ${c.recordedPerSec === null ? '–' : fmt(c.recordedPerSec)} | ${fmt(c.deliveredPerSec)} | ${ms(c.p50Ms)} | ${ms(c.p99Ms)} | ${
        isFloor || !floor ? '–' : `${(floor.deliveredPerSec / c.deliveredPerSec).toFixed(1)}x`
      } | ${isFloor || !floor ? '–' : `${(c.p50Ms / floor.p50Ms).toFixed(1)}x`} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      backing: { type: 'string', default: 'both' },
      events: { type: 'string' },
      paced: { type: 'string' },
      'gap-ms': { type: 'string' },
    },
  });
  const backing = values.backing;
  if (backing !== 'both' && backing !== 'pglite' && backing !== 'postgres') {
    console.error(`--backing must be pglite, postgres or both, not ${backing}`);
    process.exit(2);
  }
  const options: Partial<BenchOptions> = {
    ...(values.quick ? QUICK : {}),
    backings: backing === 'both' ? ['pglite', 'postgres'] : [backing],
  };
  for (const [flag, key] of [
    ['events', 'events'],
    ['paced', 'paced'],
    ['gap-ms', 'gapMs'],
  ] as const) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 2) {
      console.error(`--${flag} must be an integer of at least 2, not ${raw}`);
      process.exit(2);
    }
    options[key] = n;
  }
  const o = { ...DEFAULTS, ...options };
  const columns = await runDeliveryBench(o);
  console.log(
    `\nWebhook delivery: ${o.events} events at once, then ${o.paced} paced (a call every ${o.gapMs} ms); ` +
      `${o.concurrency} requests in flight; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Bun ${Bun.version}\n`,
  );
  console.log(formatTable(columns));
  process.exit(0);
}
