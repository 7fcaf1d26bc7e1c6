import type { Server } from 'bun';
import pkg from '../package.json' with { type: 'json' };
import type { Config } from './config/index.ts';
import type { Logger } from './observability/log.ts';
import { metricsResponse } from './observability/metrics.ts';
import { isMediaPath, MediaServer, type MediaSocketData } from './realtime/index.ts';
import type { Plane } from './server/index.ts';
import type { Store } from './store/index.ts';

export interface CoreOptions {
  config: Config;
  store: Store;
  log: Logger;
}

/** Paths the core plane answers; everything else belongs to control (`/v1/*`). */
export function isCorePath(pathname: string): boolean {
  return (
    pathname === '/health' ||
    pathname === '/metrics' ||
    pathname.startsWith('/telephony/') ||
    pathname.startsWith('/realtime/') ||
    pathname === '/v1/realtime/voice'
  );
}

type Route = (req: Request, server: Server<unknown>) => Response | undefined | Promise<Response | undefined>;

/**
 * The data plane: health, metrics, the media WebSockets (every protocol into one session
 * pipeline) and, with the telephony work, provider webhooks in the same route table. Talks
 * only to the Store and to providers, never to Postgres.
 */
export class Core implements Plane {
  readonly media: MediaServer;
  readonly websocket: Plane['websocket'];
  private readonly routes = new Map<string, Route>();
  private readonly startedAt = Date.now();

  constructor(private readonly opts: CoreOptions) {
    const { config } = opts;
    if (!config.REALTIME_WS_SECRET) throw new Error('REALTIME_WS_SECRET must be set before core starts');
    this.media = new MediaServer({
      store: opts.store,
      log: opts.log,
      tokenSecrets: [config.REALTIME_WS_SECRET],
      realtimeApiKey: config.REALTIME_API_KEY,
      maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
      maxMessageBytes: config.WS_MAX_MESSAGE_BYTES,
      idleTimeoutMs: config.SESSION_IDLE_TIMEOUT_SEC * 1000,
      maxDurationMs: config.SESSION_MAX_DURATION_SEC * 1000,
    });
    this.websocket = this.media.websocket as Plane['websocket'] & { __data?: MediaSocketData };
    this.routes.set('GET /health', () => this.health());
    this.routes.set('GET /metrics', () => metricsResponse());
  }

  fetch(req: Request, server: Server<unknown>): Response | undefined | Promise<Response | undefined> {
    const url = new URL(req.url);
    const { pathname } = url;
    if (req.method === 'GET' && isMediaPath(pathname)) return this.media.upgrade(req, server, url);
    const route = this.routes.get(`${req.method} ${pathname}`);
    if (route) return route(req, server);
    return Response.json(
      { error: { code: 'not_found', message: `no route for ${req.method} ${pathname}` } },
      { status: 404 },
    );
  }

  /** 200 while the Store answers, 503 otherwise, naming each dependency and its state. */
  async health(): Promise<Response> {
    const store = await this.opts.store.health();
    const ok = store.ok;
    return Response.json(
      {
        status: ok ? 'ok' : 'degraded',
        service: 'core',
        version: pkg.version,
        uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
        activeSessions: this.media.activeSessions,
        dependencies: { store },
      },
      { status: ok ? 200 : 503 },
    );
  }

  /** Stops admitting new calls and lets live ones finish, up to `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.opts.log.info({ activeSessions: this.media.activeSessions, graceMs }, 'core draining');
    await this.media.drain(graceMs);
  }
}
