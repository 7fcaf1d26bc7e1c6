import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The web console at `/`: a page and its assets, bundled from `control/console/` with Bun's
 * bundler on the first request (then kept in memory), served from this origin only. Nothing on
 * the page comes from another host, and its Content-Security-Policy says so to the browser.
 */

/** The page; every other console URL is an asset under {@link ASSETS_PREFIX}. */
export const CONSOLE_PATH = '/';
export const ASSETS_PREFIX = '/console/';

const SOURCE_DIR = fileURLToPath(new URL('../../console', import.meta.url));

/** Bundled from TypeScript: the app, and the AudioWorklet that turns the microphone into PCM16. */
const ENTRYPOINTS = ['app.ts', 'mic-worklet.ts'];
/** Copied as they are. */
const STATIC_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

interface Asset {
  body: string;
  type: string;
}

/** Whether `pathname` is the console's (the page or one of its assets). */
export function isConsolePath(pathname: string): boolean {
  return pathname === CONSOLE_PATH || pathname.startsWith(ASSETS_PREFIX);
}

/** A `Host` header we are willing to repeat in a header: a name or address and a port. */
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The page's policy: scripts, styles, fetches and the realtime WebSocket of this origin only
 * (`'self'` covers same-origin ws: in current browsers; the explicit ws:/wss: URL covers the
 * rest); agent audio is played from memory, never fetched; nothing inline.
 */
export function consoleCsp(host: string | null): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    `connect-src 'self'${sockets}`,
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
  ].join('; ');
}

async function bundle(): Promise<Map<string, Asset>> {
  const result = await Bun.build({
    entrypoints: ENTRYPOINTS.map((e) => join(SOURCE_DIR, e)),
    target: 'browser',
    format: 'esm',
    minify: true,
    naming: '[name].[ext]',
  });
  if (!result.success) {
    throw new Error(`console bundle failed: ${result.logs.map((l) => l.message).join('; ')}`);
  }
  const assets = new Map<string, Asset>();
  for (const output of result.outputs) {
    const name = output.path.replace(/^.*\//, '');
    assets.set(name, { body: await output.text(), type: 'text/javascript; charset=utf-8' });
  }
  for (const [name, type] of Object.entries(STATIC_FILES)) {
    assets.set(name, { body: await Bun.file(join(SOURCE_DIR, name)).text(), type });
  }
  return assets;
}

/** Serves the console: `handle` answers the page and its assets, built once and cached. */
export class ConsoleSite {
  private assets: Promise<Map<string, Asset>> | null = null;

  /** Builds the bundle now (otherwise the first request does). */
  load(): Promise<Map<string, Asset>> {
    if (!this.assets) {
      this.assets = bundle();
      // A failed build is retried by the next request, not cached.
      this.assets.catch(() => {
        this.assets = null;
      });
    }
    return this.assets;
  }

  async handle(req: Request): Promise<Response> {
    const { pathname } = new URL(req.url);
    const headers: Record<string, string> = {
      'content-security-policy': consoleCsp(req.headers.get('host')),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return Response.json(
        { error: { code: 'method_not_allowed', message: `${req.method} is not allowed here; use GET` } },
        { status: 405, headers: { ...headers, allow: 'GET, HEAD' } },
      );
    }
    const name = pathname === CONSOLE_PATH ? 'index.html' : pathname.slice(ASSETS_PREFIX.length);
    const asset = (await this.load()).get(name);
    if (!asset) {
      return Response.json(
        { error: { code: 'not_found', message: `no console asset ${name}` } },
        { status: 404, headers },
      );
    }
    return new Response(req.method === 'HEAD' ? null : asset.body, {
      headers: {
        ...headers,
        'content-type': asset.type,
        // Names are fixed, not hashed: a restart may change a file, so browsers revalidate.
        'cache-control': 'no-cache',
      },
    });
  }
}
