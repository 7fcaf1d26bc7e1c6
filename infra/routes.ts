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
  /**
   * ALB path patterns (case-sensitive, `*` matches any characters), any of which matches. One
   * listener rule carries them all, so a blue/green deploy shifts them together: at most five.
   */
  paths: readonly string[];
  priority: number;
}

/**
 * Lowest priority first. `/v1/*` belongs to control, except `/v1/realtime/*`, the realtime
 * plane's (core), and within that the one exact path `/v1/realtime/tokens`, where control mints
 * the tokens browsers then present to core: it comes first. `/webhooks/*` is control's (customer
 * webhooks and inbound triggers; control answers 404 on a path it does not serve).
 */
export const PATH_RULES: readonly PathRule[] = [
  { service: 'control', paths: ['/v1/realtime/tokens'], priority: 10 },
  { service: 'core', paths: ['/v1/realtime/*', '/realtime/*', '/telephony/*'], priority: 20 },
  { service: 'control', paths: ['/v1/*', '/webhooks/*'], priority: 100 },
];

/**
 * Production deploys blue/green with ECS's own strategy: each rule above forwards to a pair of
 * target groups ECS shifts between, a test listener on a port the ALB's security group keeps
 * closed to the internet sees the new tasks first, and ECS rolls back by itself when a watched
 * alarm fires before the bake time is over. Other stages roll.
 */
export const BLUE_GREEN = {
  /** Both revisions run this long after production traffic moved, before the old one stops. */
  bakeTimeMinutes: 10,
  /** The test listener: HTTP on this port, reachable only from inside the VPC. */
  testListenerPort: 9443,
  /**
   * Alarm keys (infra/alarms.ts) that roll a production deploy back, per service: the
   * load-balancer-wide 5xx alarms, which see both target groups of a pair. Tasks failing their
   * health check are the circuit breaker's to roll back.
   */
  rollbackAlarms: {
    core: ['targets-5xx', 'alb-5xx'],
    control: ['targets-5xx', 'alb-5xx'],
  } satisfies Record<ServiceName, string[]>,
} as const;

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

/**
 * The API Gateway routes to the forwarder Lambda: every `/telephony/*` path as core names it,
 * and the provider URLs operators configure in Twilio and Telnyx, which the Lambda forwards to
 * core's matching `/telephony/...` route (core/lambda.ts `corePathOf`).
 */
export const WEBHOOK_ROUTES = [
  'ANY /telephony/{proxy+}',
  'POST /webhooks/twilio/voice',
  'POST /webhooks/twilio/status',
  'POST /webhooks/telnyx/voice',
  'POST /webhooks/telnyx/status',
] as const;
/** The Lambda forwarder: `core/lambda.ts`, export `handler`, on Lambda's Node.js runtime. */
export const WEBHOOK_HANDLER = 'core/lambda.handler';
export const WEBHOOK_RUNTIME = 'nodejs22.x';

/** The ALB path patterns of one service, in priority order. */
export function pathsOf(service: ServiceName): string[] {
  return PATH_RULES.filter((r) => r.service === service)
    .sort((a, b) => a.priority - b.priority)
    .flatMap((r) => r.paths);
}

/** Which service the ALB sends a request path to, or undefined for the 403 default. */
export function routeOf(pathname: string): ServiceName | undefined {
  const sorted = [...PATH_RULES].sort((a, b) => a.priority - b.priority);
  return sorted.find((r) => r.paths.some((p) => matchesPathPattern(p, pathname)))?.service;
}

/** ALB path-pattern matching: `*` is any run of characters, `?` exactly one, case-sensitive. */
export function matchesPathPattern(pattern: string, pathname: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(pathname);
}
