import type { Server, WebSocketHandler } from 'bun';
import type { Logger } from '../observability/log.ts';

/** What a plane offers the HTTP server: a request handler, and WebSocket handlers if it upgrades. */
export interface Plane {
  /** Answers the request, or returns undefined after upgrading it to a WebSocket. */
  fetch(req: Request, server: Server<unknown>): Response | undefined | Promise<Response | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: each plane types its own socket data.
  websocket?: WebSocketHandler<any>;
}

export interface HttpServerOptions {
  port: number;
  hostname: string;
  plane: Plane;
  log: Logger;
  /** Largest request body accepted; larger ones get 413 from Bun before our code runs. */
  maxRequestBodySize?: number;
}

export interface RunningHttpServer {
  server: Server<unknown>;
  /** `http://host:port` as bound (port 0 resolved). */
  url: string;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then cuts
   * whatever is left. Resolves when the server is down.
   */
  stop(graceMs: number): Promise<void>;
}

/** Starts Bun.serve for a plane, turning thrown errors into a JSON 500 that leaks nothing. */
export function startHttpServer(opts: HttpServerOptions): RunningHttpServer {
  const { plane, log } = opts;
  const server = Bun.serve({
    port: opts.port,
    hostname: opts.hostname,
    maxRequestBodySize: opts.maxRequestBodySize ?? 10 * 1024 * 1024,
    fetch: (req, srv) => plane.fetch(req, srv),
    websocket: plane.websocket ?? { message() {} },
    error(err) {
      log.error({ err }, 'unhandled request error');
      return Response.json({ error: { code: 'internal', message: 'internal error' } }, { status: 500 });
    },
  });
  const host = opts.hostname === '0.0.0.0' || opts.hostname === '::' ? 'localhost' : opts.hostname;
  return {
    server,
    url: `http://${host}:${server.port}`,
    async stop(graceMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceful = server.stop(false);
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const result = await Promise.race([graceful.then(() => 'done' as const), timedOut]);
      clearTimeout(timer);
      if (result === 'timeout') {
        log.warn({ graceMs }, 'grace period over, closing remaining connections');
        await server.stop(true);
      }
    },
  };
}

/**
 * Runs `shutdown` once on SIGTERM or SIGINT and exits 0 when it is done (1 if it failed or
 * overran `hardLimitMs`). Further signals are ignored: Ctrl-C under `npm start` delivers SIGINT
 * twice (the terminal's process group, then npm forwarding it), and the hard limit already
 * bounds how long an exit can take.
 */
export function onShutdownSignal(log: Logger, hardLimitMs: number, shutdown: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const hard = setTimeout(() => {
      log.error({ hardLimitMs }, 'shutdown overran its limit');
      process.exit(1);
    }, hardLimitMs);
    shutdown().then(
      () => {
        clearTimeout(hard);
        log.info({}, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
