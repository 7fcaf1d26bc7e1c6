import { randomUUID } from 'node:crypto';
import { Control, type ControlOptions } from '../../control/app.ts';
import {
  connectDatabase,
  EMBEDDED_POOL_MAX,
  type Sql,
  startEmbeddedPostgres,
} from '../../control/db/index.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { MemoryStore, RedisStore, type Store } from '../../core/store/index.ts';
import { createTestDatabase } from '../support/databases.ts';

/** A database and a Store for one suite, and how to give both back. */
export interface Backing {
  sql: Sql;
  /** Where `sql` connects: a server's database, or the embedded PGlite's socket. */
  databaseUrl: string;
  store: Store;
  databaseKind: 'postgres' | 'embedded';
  /** Another, empty Store of the same kind: a fresh MemoryStore, or a flushed Redis. */
  freshStore(): Promise<Store>;
  close(): Promise<void>;
}

/** A fresh database on the harness's PostgreSQL and a private key space on its redis-server. */
export async function postgresAndRedis(postgresUrl: string, redisUrl: string): Promise<Backing> {
  const db = await createTestDatabase(postgresUrl);
  const sql = connectDatabase(db.url, 5);
  const stores: Store[] = [];
  const connect = async () => {
    const store = await RedisStore.connect(redisUrl, { prefix: `t:${randomUUID()}:` });
    stores.push(store);
    return store;
  };
  const store = await connect();
  return {
    sql,
    databaseUrl: db.url,
    store,
    databaseKind: 'postgres',
    freshStore: connect,
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await sql.end({ timeout: 5 });
      await db.drop();
    },
  };
}

/** The development path: PGlite in memory behind its socket, and a MemoryStore. */
export async function embedded(): Promise<Backing> {
  const pg = await startEmbeddedPostgres('memory://');
  const sql = connectDatabase(pg.url, EMBEDDED_POOL_MAX);
  return {
    sql,
    databaseUrl: pg.url,
    store: new MemoryStore(),
    databaseKind: 'embedded',
    freshStore: async () => new MemoryStore(),
    async close() {
      await sql.end({ timeout: 5 });
      await pg.stop();
    },
  };
}

/** A Control over `backing`, configured by `env` (variables as strings, validated as at boot). */
export function makeControl(
  backing: Backing,
  env: Record<string, string> = {},
  store = backing.store,
  options: Partial<ControlOptions> = {},
): Control {
  return new Control({
    config: parseConfig(env),
    log: createLogger({ level: 'silent', service: 'control' }),
    sql: backing.sql,
    store,
    databaseKind: backing.databaseKind,
    ...options,
  });
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not reached within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`,
      );
    }
    await Bun.sleep(25);
  }
}

/** A second tenant: an account and an admin key, made through the service layer. */
export async function makeAccount(
  control: Control,
  name: string,
): Promise<{ accountId: string; key: string }> {
  const account = await control.services.accounts.create(name);
  const key = await control.services.keys.create(account.id, { name: 'admin', role: 'admin' });
  return { accountId: account.id, key: key.secret };
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON, checked field by field.
export type Json = any;

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Json;
}

export interface CallOptions {
  /** The API key sent as `Authorization: Bearer`; none when absent. */
  key?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is, with content-type application/json. */
  rawBody?: string;
  headers?: Record<string, string>;
}

/** Calls the API in process, as a client over HTTP would. */
export function apiClient(control: Control) {
  return async (method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> => {
    const headers = new Headers(opts.headers);
    if (opts.key) headers.set('authorization', `Bearer ${opts.key}`);
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const res = await control.fetch(new Request(`http://localhost${path}`, { method, headers, body }));
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
