/**
 * Store throughput, MemoryStore and RedisStore side by side in one run: lease
 * acquire+release pairs and stream appends, each with 1 caller (latency-bound) and 64
 * concurrent callers (throughput), plus a raw ioredis PING as the floor of a Redis round trip.
 *
 *   npm run bench:store                 # starts a private redis-server
 *   REDIS_URL=redis://… npm run bench:store
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import { MemoryStore, RedisStore, type Store } from '../core/store/index.ts';
import { type RunningService, startRedis } from '../tests/support/services.ts';

const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);

async function timed(
  concurrency: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<number> {
  let done = 0;
  const deadline = performance.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await op(w, i);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

function leasePair(store: Store) {
  const claims = [
    { key: 'bench:global', limit: 1_000_000 },
    { key: 'bench:campaign', limit: 1_000_000 },
  ];
  const keys = claims.map((c) => c.key);
  return async (w: number, i: number) => {
    const holder = `h${w}-${i}`;
    const r = await store.acquire(claims, holder, 60_000);
    if (!r.ok) throw new Error('bench lease refused');
    await store.release(keys, holder);
  };
}

function appendOp(store: Store) {
  const fields = { type: 'turn.completed', callId: 'call-bench', t: '1234', data: '{"latencyMs":420}' };
  return (w: number) => store.append(`bench:stream:${w % 8}`, fields, 10_000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

let redisService: RunningService | undefined;
let redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  redisService = await startRedis();
  redisUrl = redisService.url;
}
const memory = new MemoryStore();
const redis = await RedisStore.connect(redisUrl, { prefix: `bench:${randomUUID()}:` });
const raw = new Redis(redisUrl);

const rows: [string, number, number][] = [];
for (const [name, make] of [
  ['lease acquire+release (2 keys)', leasePair],
  ['stream append', appendOp],
] as const) {
  for (const concurrency of [1, 64]) {
    const m = await timed(concurrency, make(memory));
    const r = await timed(concurrency, make(redis));
    rows.push([`${name}, ${concurrency} caller${concurrency > 1 ? 's' : ''}`, m, r]);
  }
}
const ping1 = await timed(1, () => raw.ping());
const ping64 = await timed(64, () => raw.ping());

console.log(
  `\nStore throughput (ops/s), ${DURATION_MS} ms per cell, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Bun ${Bun.version}\n`,
);
console.log('| operation | MemoryStore | RedisStore | memory / redis |');
console.log('|---|---:|---:|---:|');
for (const [name, m, r] of rows) console.log(`| ${name} | ${fmt(m)} | ${fmt(r)} | ${(m / r).toFixed(1)}x |`);
console.log(`| floor: raw ioredis PING, 1 caller | – | ${fmt(ping1)} | – |`);
console.log(`| floor: raw ioredis PING, 64 callers | – | ${fmt(ping64)} | – |`);

raw.disconnect();
await redis.close();
await memory.close();
await redisService?.stop();
