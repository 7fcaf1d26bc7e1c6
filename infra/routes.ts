/**
 * How the one shared ALB splits traffic between the two services, and how it checks them.
 * Plain data, so the deploy tests can hold the config to it. Rules are evaluated by priority,
 * lowest first; the listener's default answers 403, so a path no rule names never reaches a
 * container (`/metrics` stays private).
 */
import { CONTROL_PORT, CORE_PORT } from './stage.ts';

export type ServiceName = 'core' | 'control';

export interface PathRule {
  service: ServiceName;
  /** ALB path pattern: case-sensitive, `*` matches any characters, one pattern per rule. */
  path: string;
  priority: number;
}

/**
 * `/v1/*` belongs to control, with one exception: the native voice WebSocket `/v1/realtime/voice`
 * is core's (core/app.ts `isCorePath`). It gets its own rule, ahead of `/v1/*`. The rest of
 * `/v1/realtime/*` stays with control: `/v1/realtime/tokens` is where control mints the tokens
 * browsers then present to core, so sending the whole prefix to core would break token minting.
 */
export const PATH_RULES: readonly PathRule[] = [
  { service: 'core', path: '/v1/realtime/voice', priority: 10 },
  { service: 'core', path: '/realtime/*', priority: 20 },
  { service: 'core', path: '/telephony/*', priority: 30 },
  { service: 'control', path: '/v1/*', priority: 100 },
];

export interface HealthCheck {
  path: string;
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

/** ALB target health: both services answer 200 when ready, 503 while a dependency is down. */
export const HEALTH_CHECKS: Record<ServiceName, HealthCheck> = {
  core: {
    // Liveness only: a Store outage must not make the ALB replace tasks that carry live calls.
    path: '/health/live',
    intervalSeconds: 15,
    timeoutSeconds: 5,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
  },
  control: {
    path: '/v1/health',
    intervalSeconds: 15,
    timeoutSeconds: 5,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
  },
};

export const SERVICE_PORTS: Record<ServiceName, number> = { core: CORE_PORT, control: CONTROL_PORT };

/**
 * The ALB closes a connection that carries no bytes for this long. A call's media WebSocket is
 * never that quiet, but a `/realtime/voice` client may sit silent between turns; calls are capped
 * at SESSION_MAX_DURATION_SEC (3600 s by default), so the idle timeout matches it.
 */
export const ALB_IDLE_TIMEOUT_SECONDS = 3600;

/** The API Gateway route that carries every provider webhook to the forwarder Lambda. */
export const WEBHOOK_ROUTE = 'ANY /telephony/{proxy+}';
/** The Lambda forwarder: `core/lambda.ts`, export `handler`, on Lambda's Node.js runtime. */
export const WEBHOOK_HANDLER = 'core/lambda.handler';
export const WEBHOOK_RUNTIME = 'nodejs22.x';

/** The ALB path patterns of one service, in priority order. */
export function pathsOf(service: ServiceName): string[] {
  return PATH_RULES.filter((r) => r.service === service)
    .sort((a, b) => a.priority - b.priority)
    .map((r) => r.path);
}

/** Which service the ALB sends a request path to, or undefined for the 403 default. */
export function routeOf(pathname: string): ServiceName | undefined {
  const sorted = [...PATH_RULES].sort((a, b) => a.priority - b.priority);
  return sorted.find((r) => matchesPathPattern(r.path, pathname))?.service;
}

/** ALB path-pattern matching: `*` is any run of characters, `?` exactly one, case-sensitive. */
export function matchesPathPattern(pattern: string, pathname: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(pathname);
}
