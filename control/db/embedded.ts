import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedPostgres {
  /** A `postgres://` URL for the `postgres` driver, on a loopback port. */
  url: string;
  stop(): Promise<void>;
}

/**
 * PGlite (Postgres compiled to WebAssembly) behind its wire-protocol socket, so the embedded
 * default runs the same driver and SQL as production. PGlite is one session: the socket
 * server interleaves extended-protocol messages of concurrent connections, so callers must
 * use a single pooled connection (see `EMBEDDED_POOL_MAX`).
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  // One pooled connection plus headroom for a reconnect while the old socket closes.
  const server = new PGLiteSocketServer({
    db,
    port: 0,
    host: '127.0.0.1',
    maxConnections: EMBEDDED_POOL_MAX + 2,
  });
  await server.start();
  return {
    url: `postgres://postgres:postgres@${server.getServerConn()}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

/** The pool size the embedded database supports. */
export const EMBEDDED_POOL_MAX = 1;
