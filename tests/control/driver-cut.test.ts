import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectDatabase, type Sql } from '../../control/db/index.ts';
import { createTestDatabase } from '../support/databases.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const postgresUrl = inject('postgresUrl');

/**
 * Polls `check` until it holds (this suite needs the driver alone, not control's app, which
 * tests/control/support.ts brings along).
 */
async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}

/** Rows each transaction writes; a transaction on record has all of them or none. */
const ROWS_PER_TX = 20;
const WORKERS = 8;
const CUTS = 5;

/**
 * control's Postgres driver (control/db/driver, CHANGES.md there) when its connections are cut
 * while transactions run on them: no error escapes to the process (an uncaught exception or
 * an unhandled rejection), each transaction commits whole or not at all, and the pool reaches
 * Postgres again by itself once the connections are let through.
 */
describe.skipIf(!postgresUrl)('the Postgres driver through cut connections', () => {
  let db: { url: string; drop(): Promise<void> };
  let proxy: TcpProxy;
  let sql: Sql;
  let direct: Sql;
  const escaped: string[] = [];
  const onUncaught = (err: unknown) => void escaped.push(`uncaught: ${(err as Error)?.stack ?? err}`);
  const onUnhandled = (err: unknown) => void escaped.push(`unhandled: ${(err as Error)?.stack ?? err}`);

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    db = await createTestDatabase(postgresUrl!);
    direct = connectDatabase(db.url, 2);
    await direct`create table cut_rows (tx int not null, n int not null, primary key (tx, n))`;
    proxy = await startTcpProxy(db.url);
    sql = connectDatabase(proxy.url, 5);
  });

  afterAll(async () => {
    await proxy?.restore();
    await sql?.end({ timeout: 5 });
    await direct?.end({ timeout: 5 });
    await proxy?.stop();
    await db?.drop();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
  });

  it('fails the transactions a cut interrupts, lets nothing escape and recovers', async () => {
    let nextTx = 0;
    const committed = new Set<number>();
    let failed = 0;
    let reservedFailed = 0;
    let stop = false;
    const transact = async () => {
      while (!stop) {
        const tx = nextTx++;
        try {
          await sql.begin(async (t) => {
            for (let n = 0; n < ROWS_PER_TX; n++) await t`insert into cut_rows (tx, n) values (${tx}, ${n})`;
          });
          committed.add(tx);
        } catch {
          failed++;
          // The pool is out of reach: try again soon, as the recorder's backoff would.
          await Bun.sleep(10);
        }
      }
    };
    // A reserved connection, as migrations use one: a cut fails its queries, release stays harmless.
    const reserveLoop = async () => {
      while (!stop) {
        try {
          const conn = await sql.reserve();
          try {
            for (let i = 0; i < 5; i++) await conn`select pg_sleep(0.001)`;
          } finally {
            conn.release();
          }
        } catch {
          reservedFailed++;
          await Bun.sleep(10);
        }
      }
    };
    const loops = [...Array.from({ length: WORKERS }, transact), reserveLoop()];
    for (let cut = 0; cut < CUTS; cut++) {
      const before = committed.size;
      await eventually(() => committed.size >= before + WORKERS, 20_000, `commits before cut ${cut + 1}`);
      const failedBefore = failed;
      await proxy.cut();
      await eventually(() => failed >= failedBefore + WORKERS, 20_000, `failures during cut ${cut + 1}`);
      await proxy.restore();
    }
    // Recovered: every worker commits again.
    const after = committed.size;
    await eventually(() => committed.size >= after + 5 * WORKERS, 20_000, 'commits after the last cut');
    stop = true;
    await Promise.all(loops);

    expect(escaped).toEqual([]);
    expect(failed).toBeGreaterThanOrEqual(CUTS * WORKERS);
    expect(reservedFailed).toBeGreaterThan(0);
    const rows = await direct<{ tx: number; n: number }[]>`
      select tx, count(*)::int as n from cut_rows group by tx`;
    // Whole or nothing: no transaction left part of its rows, none ran outside its transaction.
    expect(rows.filter((r) => r.n !== ROWS_PER_TX)).toEqual([]);
    // Every transaction reported committed is on record (one reported failed may be too: the
    // cut can fall between Postgres committing and the driver reading its answer).
    const onRecord = new Set(rows.map((r) => r.tx));
    expect([...committed].filter((tx) => !onRecord.has(tx))).toEqual([]);
  }, 120_000);
});
