import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql } from '../../control/db/index.ts';
import { retryDelayMs } from '../../control/modules/webhooks/delivery.ts';
import { enqueueAccountEvent } from '../../control/modules/webhooks/outbox.ts';
import { retryAfterMsOf } from '../../control/modules/webhooks/sender.ts';
import { Dispatcher } from '../../control/workers/dispatcher.ts';
import { createLogger } from '../../core/observability/index.ts';
import { type Backing, embedded, eventually, makeAccount, makeControl, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const log = createLogger({ level: 'silent', service: 'test' });
const ROOT = join(import.meta.dirname, '..', '..');

describe('retry schedule', () => {
  it('doubles from the base with jitter, capped', () => {
    const low = () => 0;
    const high = () => 0.999_999;
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 1000, 5000, low))).toEqual([500, 1000, 2000, 2500]);
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 1000, 5000, high))).toEqual([1000, 2000, 4000, 5000]);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMsOf('7', now)).toBe(7000);
    expect(retryAfterMsOf('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMsOf('soon', now)).toBeNull();
    expect(retryAfterMsOf(null, now)).toBeNull();
  });
});

/** A seeded PRNG, so the receiver's failures are the same on every run. */
function mulberry32(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite', embedded],
  ['PostgreSQL', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

describe.each(backings)('dispatcher killed mid-work on %s', (_name, makeBacking) => {
  let backing: Backing;
  let control: Control;
  let sql: Sql;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    control = makeControl(backing, { WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }, backing.store, {
      workers: { recorder: false, dispatcher: false, campaigns: false, sweeper: false },
    });
    await control.start();
    sql = connectDatabase(backing.databaseUrl, backing.databaseKind === 'embedded' ? EMBEDDED_POOL_MAX : 5);
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await sql?.end({ timeout: 5 });
    await control?.close();
    await backing?.close();
  });

  it.skipIf(!makeBacking)(
    'delivers every one of 1,000 events after a SIGKILL, to a receiver failing 30 % and timing out 10 %',
    async () => {
      const COUNT = 1000;
      const TIMEOUT_MS = 300;
      const MAX_ATTEMPTS = 15;
      const random = mulberry32(12);
      const attempts = new Map<string, number>();
      const delivered = new Set<string>();
      let mismatched = 0;
      const receiver = Bun.serve({
        port: 0,
        hostname: '127.0.0.1',
        async fetch(req) {
          const id = req.headers.get('webhook-id')!;
          const body = JSON.parse(await req.text());
          if (body.id !== id) mismatched++;
          attempts.set(id, (attempts.get(id) ?? 0) + 1);
          const roll = random();
          if (roll < 0.3) return new Response('no', { status: 500 });
          if (roll < 0.4) {
            await Bun.sleep(TIMEOUT_MS * 3);
            return new Response('too late');
          }
          delivered.add(id);
          return new Response('ok');
        },
      });
      const { accountId } = await makeAccount(control, 'crash');
      const endpoint = await control.services.webhooks.create(accountId, {
        url: `http://127.0.0.1:${receiver.port}/`,
      });
      const ids: string[] = [];
      await sql.begin(async (tx) => {
        for (let i = 0; i < COUNT; i++) {
          const id = `evt_crash_${i.toString().padStart(4, '0')}`;
          ids.push(id);
          await enqueueAccountEvent(tx, {
            id,
            accountId,
            type: 'agent.updated',
            data: { agentId: 'agt_1', version: i },
          });
        }
      });
      const policy = {
        timeoutMs: TIMEOUT_MS,
        maxAttempts: MAX_ATTEMPTS,
        retryBaseMs: 10,
        retryMaxMs: 100,
        disableAfterFailures: 100_000,
        allowPrivate: true,
      };
      const options = { pollMs: 10, concurrency: 32, leaseMs: 1_000 };
      let child: ChildProcess | null = spawn(
        join(ROOT, 'node_modules', '.bin', 'bun'),
        [join(ROOT, 'tests/control/dispatcher-process.ts')],
        {
          env: {
            ...process.env,
            DATABASE_URL: backing.databaseUrl,
            DISPATCHER_POLICY: JSON.stringify({ policy, options }),
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      try {
        // Killed in the middle: a third delivered, requests in flight, rows leased to it.
        await eventually(
          () => delivered.size >= COUNT / 3 || undefined,
          60_000,
          'a third delivered by the first dispatcher',
        );
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        child = null;
        const sentBefore = delivered.size;
        expect(sentBefore).toBeLessThan(COUNT);
        const survivor = new Dispatcher({ sql, log }, policy, options);
        survivor.start();
        try {
          await eventually(
            async () => {
              const [{ n }] = await sql<{ n: number }[]>`
                select count(*)::int as n from webhook_deliveries
                where endpoint_id = ${endpoint.id} and status = 'pending'`;
              return n === 0 || undefined;
            },
            120_000,
            'outbox drained',
          );
        } finally {
          await survivor.stop();
        }
      } finally {
        child?.kill('SIGKILL');
        receiver.stop(true);
      }
      const rows = await sql<{ event_id: string; status: string; attempts: number }[]>`
        select event_id, status, attempts from webhook_deliveries where endpoint_id = ${endpoint.id}`;
      expect(rows).toHaveLength(COUNT);
      // None lost: every event reached the receiver and got its 2xx.
      expect(rows.filter((r) => r.status !== 'delivered')).toEqual([]);
      expect(ids.filter((id) => !delivered.has(id))).toEqual([]);
      // No delivery attempted more often than the limit, by the receiver's count or ours.
      expect(Math.max(...rows.map((r) => r.attempts))).toBeLessThanOrEqual(MAX_ATTEMPTS);
      expect(Math.max(...attempts.values())).toBeLessThanOrEqual(MAX_ATTEMPTS);
      // Every request carried one of our event ids: duplicates share their webhook-id.
      expect([...attempts.keys()].every((id) => ids.includes(id))).toBe(true);
      expect(mismatched).toBe(0);
      const total = [...attempts.values()].reduce((a, b) => a + b, 0);
      console.info(
        `dispatcher crash: ${COUNT} deliveries, ${total} requests, max ${Math.max(...attempts.values())} per event`,
      );
    },
    180_000,
  );
});
