import type { ISql, Sql } from 'postgres';
// The `postgres` driver with its handling of cut connections fixed (driver/CHANGES.md); the
// npm package supplies the types.
import postgres from './driver/index.js';

export type { Sql } from 'postgres';

/** What a query needs: the pool or an open transaction, so services run inside either. */
export type Queryable = ISql;

/**
 * Seconds before reconnecting after `retries` failed connections: 0.1 s doubling to 2 s, with
 * jitter. The driver's default grows to 20 s, so control would stay cut off for up to 20 s
 * after a short Postgres outage; the recorder and the API already retry on their own.
 */
export function reconnectDelaySec(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(0.1 * 2 ** retries, 2);
}

/** The control plane's Postgres pool (the `postgres` driver), for a server or the embedded PGlite. */
export function connectDatabase(url: string, poolMax: number): Sql {
  return postgres(url, {
    max: poolMax,
    onnotice: () => {},
    idle_timeout: 30,
    connect_timeout: 10,
    backoff: reconnectDelaySec,
    transform: { undefined: null },
  });
}

/** Round trip time of `select 1`, or the error: what `/v1/health` reports. */
export async function pingDatabase(sql: Sql): Promise<{ ok: boolean; latencyMs?: number; error?: string }> {
  const started = performance.now();
  try {
    await sql`select 1`;
    return { ok: true, latencyMs: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** A value for a `jsonb` parameter (`${sql.json(asJson(config))}`): our schemas guarantee it is JSON. */
export function asJson(value: unknown): postgres.JSONValue {
  return value as postgres.JSONValue;
}
