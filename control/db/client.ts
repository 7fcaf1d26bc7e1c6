import postgres, { type ISql, type Sql } from 'postgres';

export type { Sql } from 'postgres';

/** What a query needs: the pool or an open transaction, so services run inside either. */
export type Queryable = ISql;

/** The control plane's Postgres pool (the `postgres` driver), for a server or the embedded PGlite. */
export function connectDatabase(url: string, poolMax: number): Sql {
  return postgres(url, {
    max: poolMax,
    onnotice: () => {},
    idle_timeout: 30,
    connect_timeout: 10,
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
