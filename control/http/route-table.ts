/** What the guards need to know of a route before Elysia routes the request. */
export interface RoutePolicy {
  /** `METHOD /template` as the app declares it, prefix included (`POST /v1/campaigns/:id/contacts`). */
  route: string;
  /** Answered without an API key (health, the documentation). */
  public: boolean;
  /** Largest request body the route reads. */
  maxBodyBytes: number;
  /** Content types besides JSON its own body parser takes (`text/csv`); lower case, no parameters. */
  otherContentTypes: readonly string[];
}

/** A route of the built app as Elysia lists it in `app.routes`. */
export interface DeclaredRoute {
  method: string;
  path: string;
  hooks?: { detail?: { security?: unknown[] } };
}

/** Per-route exceptions to the defaults, keyed `METHOD /template` without the API prefix. */
export type BodyPolicies = Record<string, { maxBodyBytes?: number; otherContentTypes?: readonly string[] }>;

/** Request bodies are at most this large unless a route says otherwise. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

function templateRegExp(template: string): RegExp {
  const source = template
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : escapeRegExp(part)))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/**
 * The app's routes, matched by method and path ahead of Elysia's router, so authentication and
 * body limits apply before any body is read. Built from the app itself: a route is public when
 * its OpenAPI detail declares no security requirement, so a new route is guarded by default.
 */
export class RouteTable {
  private entries: { method: string; pattern: RegExp; policy: RoutePolicy }[] = [];

  /** Loads the built app's routes; `policies` lists per-route exceptions (each must name a route). */
  load(routes: readonly DeclaredRoute[], prefix: string, policies: BodyPolicies = {}): void {
    const known = new Set<string>();
    this.entries = routes.map((r) => {
      const key = `${r.method} ${r.path.startsWith(prefix) ? r.path.slice(prefix.length) : r.path}`;
      known.add(key);
      const security = r.hooks?.detail?.security;
      return {
        method: r.method,
        pattern: templateRegExp(r.path),
        policy: {
          route: `${r.method} ${r.path}`,
          public: !Array.isArray(security) || security.length === 0,
          maxBodyBytes: policies[key]?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
          otherContentTypes: policies[key]?.otherContentTypes ?? [],
        },
      };
    });
    for (const key of Object.keys(policies)) {
      if (!known.has(key)) throw new Error(`body policy for ${key}: no such route`);
    }
  }

  /**
   * The methods some route serves at `path` (HEAD wherever GET is), for 405's `Allow`; empty
   * when no route has the path.
   */
  methodsOf(path: string): string[] {
    const methods = new Set<string>();
    for (const e of this.entries) {
      if (!e.pattern.test(path)) continue;
      if (e.method === 'ALL') return [];
      methods.add(e.method);
      if (e.method === 'GET') methods.add('HEAD');
    }
    return [...methods].sort();
  }

  /** The policy of the route `method path` reaches, or null when none does (a 404 to come). */
  match(method: string, path: string): RoutePolicy | null {
    const m = method === 'HEAD' ? 'GET' : method;
    for (const e of this.entries) {
      if ((e.method === m || e.method === 'ALL') && e.pattern.test(path)) return e.policy;
    }
    return null;
  }
}
