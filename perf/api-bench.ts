/**
 * Control API latency and throughput, PostgreSQL and embedded PGlite side by side in one run:
 * `GET /v1/calls` (first page, 10 000 calls in the account) and `POST /v1/agents` (a row, a
 * version, a Store write), over HTTP on loopback. The API runs in a child process, so the load
 * generator does not share its event loop; each database gets the pool control gives it
 * (PostgreSQL: DATABASE_POOL_MAX, default 10; PGlite: its one connection).
 *
 *   npm run bench:api                        # starts a private PostgreSQL (Debian's binaries)
 *   DATABASE_URL=postgres://… npm run bench:api   # a scratch database is created in it, then dropped
 *   BENCH_MS=5000 BENCH_CONCURRENCY=1,16 npm run bench:api
 */
import { cpus, totalmem } from 'node:os';
import { Control } from '../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql, startEmbeddedPostgres } from '../control/db/index.ts';
import { parseConfig } from '../core/config/index.ts';
import { createLogger } from '../core/observability/index.ts';
import { startHttpServer } from '../core/server/index.ts';
import { MemoryStore } from '../core/store/index.ts';
import { createTestDatabase } from '../tests/support/databases.ts';
import { type RunningService, startPostgres } from '../tests/support/services.ts';

const SEEDED_CALLS = 10_000;
const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
const WARMUP_MS = 500;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map(Number);

type Kind = 'postgres' | 'pglite';

/** 10 000 calls of one agent over the last 30 days, mixed statuses and directions. */
async function seedCalls(sql: Sql, accountId: string, agentId: string): Promise<void> {
  await sql`
    insert into calls (id, account_id, provider, provider_call_id, agent_id, direction, from_number,
                       to_number, status, started_at, answered_at, ended_at, end_reason)
    select 'bench-' || lpad(i::text, 8, '0'), ${accountId}, 'jambonz', md5(i::text), ${agentId},
           case when i % 3 = 0 then 'outbound' else 'inbound' end,
           '+1415555' || lpad((i % 10000)::text, 4, '0'), '+12025550100',
           (array['completed', 'completed', 'completed', 'failed', 'busy', 'no-answer'])[1 + i % 6],
           now() - i * interval '259 seconds', now() - i * interval '259 seconds' + interval '5 seconds',
           now() - i * interval '259 seconds' + interval '95 seconds', 'stream_stopped'
    from generate_series(1, ${SEEDED_CALLS}) as i`;
  await sql`analyze calls`;
}

/** Child process: control over one database, seeded, on a loopback port. Prints `{ url, key }`. */
async function serve(kind: Kind, databaseUrl: string | undefined): Promise<void> {
  const log = createLogger({ level: 'warn', service: 'bench' });
  let sql: Sql;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (kind === 'pglite') {
    const pg = await startEmbeddedPostgres('memory://');
    sql = connectDatabase(pg.url, EMBEDDED_POOL_MAX);
    stopEmbedded = () => pg.stop();
  } else {
    sql = connectDatabase(databaseUrl!, 10);
  }
  const control = new Control({
    config: parseConfig({ API_RATE_LIMIT_PER_MIN: '1000000' }),
    log,
    sql,
    store: new MemoryStore(),
    databaseKind: kind === 'pglite' ? 'embedded' : 'postgres',
    workers: { recorder: false, campaigns: false },
  });
  const { bootstrap } = await control.start();
  if (!bootstrap?.secret) throw new Error('expected an empty database');
  const agent = await control.services.agents.create(bootstrap.accountId, { name: 'Bench' });
  await seedCalls(sql, bootstrap.accountId, agent.id);
  const http = startHttpServer({ port: 0, hostname: '127.0.0.1', log, plane: control });
  process.stdout.write(`${JSON.stringify({ url: http.url, key: bootstrap.secret })}\n`);
  process.on('SIGTERM', async () => {
    await http.stop(100);
    await control.close();
    await sql.end({ timeout: 2 });
    await stopEmbedded?.();
    process.exit(0);
  });
}

interface Result {
  p50: number;
  p99: number;
  rps: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** `concurrency` clients sending `request` back to back for DURATION_MS (after a warm-up). */
async function load(
  concurrency: number,
  request: () => Promise<Response>,
  expectStatus: number,
): Promise<Result> {
  const run = async (ms: number, latencies: number[] | null) => {
    const deadline = performance.now() + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          const res = await request();
          await res.arrayBuffer();
          if (res.status !== expectStatus) throw new Error(`expected ${expectStatus}, got ${res.status}`);
          latencies?.push(performance.now() - t);
        }
      }),
    );
  };
  await run(WARMUP_MS, null);
  const latencies: number[] = [];
  const started = performance.now();
  await run(DURATION_MS, latencies);
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: latencies.length / seconds };
}

async function startServer(kind: Kind, databaseUrl?: string) {
  const proc = Bun.spawn([process.execPath, import.meta.path, '--serve', kind, databaseUrl ?? ''], {
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const reader = proc.stdout.getReader();
  let buffered = '';
  while (!buffered.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${kind} server exited before it was ready`);
    buffered += new TextDecoder().decode(value);
  }
  const { url, key } = JSON.parse(buffered.slice(0, buffered.indexOf('\n'))) as { url: string; key: string };
  return {
    url,
    key,
    async stop() {
      proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}

async function main(): Promise<void> {
  const service: RunningService | undefined = process.env.DATABASE_URL ? undefined : await startPostgres();
  const scratch = await createTestDatabase(process.env.DATABASE_URL ?? service!.url);
  const results = new Map<string, Result>();
  try {
    for (const kind of ['postgres', 'pglite'] as const) {
      const server = await startServer(kind, scratch.url);
      const headers = { authorization: `Bearer ${server.key}` };
      const agentBody = JSON.stringify({ name: 'Front desk', greeting: 'Hello!', maxConcurrentCalls: 5 });
      try {
        for (const c of CONCURRENCY) {
          results.set(
            `GET /v1/calls|${c}|${kind}`,
            await load(c, () => fetch(`${server.url}/v1/calls`, { headers }), 200),
          );
          results.set(
            `POST /v1/agents|${c}|${kind}`,
            await load(
              c,
              () =>
                fetch(`${server.url}/v1/agents`, {
                  method: 'POST',
                  headers: { ...headers, 'content-type': 'application/json' },
                  body: agentBody,
                }),
              201,
            ),
          );
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    await scratch.drop();
    await service?.stop();
  }

  const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);
  const cell = (r: Result | undefined) =>
    r ? `${ms(r.p50)} / ${ms(r.p99)} ms, ${Math.round(r.rps).toLocaleString('en-US')} req/s` : 'n/a';
  const cpu = cpus();
  console.log(
    `\ncontrol API over HTTP on loopback, ${DURATION_MS} ms per cell after ${WARMUP_MS} ms warm-up; ` +
      `${SEEDED_CALLS.toLocaleString('en-US')} calls seeded; ${cpu.length} × ${cpu[0]?.model.trim()}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}\n`,
  );
  console.log('| request | clients | PostgreSQL p50 / p99, throughput | PGlite p50 / p99, throughput |');
  console.log('|---|---|---|---|');
  for (const endpoint of ['GET /v1/calls', 'POST /v1/agents']) {
    for (const c of CONCURRENCY) {
      console.log(
        `| \`${endpoint}\` | ${c} | ${cell(results.get(`${endpoint}|${c}|postgres`))} | ${cell(results.get(`${endpoint}|${c}|pglite`))} |`,
      );
    }
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as Kind, process.argv[4] || undefined);
} else {
  await main();
}
