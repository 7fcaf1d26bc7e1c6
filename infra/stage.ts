/**
 * What each stage gets, as plain data: `sst.config.ts` reads it, the deploy tests and the URL
 * guard check it, and none of it touches SST or AWS. Stages: `production`, `staging`, `dev`,
 * pull-request stages `pr-<number>`; any other name is a personal stage and is treated like dev.
 */

/** The SST CLI version the config is written against (`app.version`; package.json pins the same). */
export const SST_VERSION = '4.17.1';
/** The Pulumi AWS provider the stack is typed and tested against. */
export const AWS_PROVIDER_VERSION = '7.20.0';
/** Every stage deploys to this region; changing it moves a stage, so it is one constant. */
export const AWS_REGION = 'us-east-1';

export const CORE_PORT = 8081;
export const CONTROL_PORT = 8080;

/**
 * Fargate gives a stopping container at most 120 s between SIGTERM and SIGKILL, and a Fargate
 * Spot task gets a two-minute warning: nothing can drain longer than that after SIGTERM.
 */
export const STOP_TIMEOUT_SECONDS = 120;
/** `core/main.ts` and `control/main.ts` force-exit this long after SHUTDOWN_GRACE_MS. */
export const HARD_EXIT_MARGIN_MS = 5_000;
/** The longest SHUTDOWN_GRACE_MS that still exits before SIGKILL, with 5 s of slack for signal delivery. */
export const MAX_SHUTDOWN_GRACE_MS = STOP_TIMEOUT_SECONDS * 1000 - HARD_EXIT_MARGIN_MS - 5_000;

export type StageKind = 'production' | 'staging' | 'dev' | 'pr';
export type LogRetention = '1 week' | '2 weeks' | '1 month';
export type FargateCpu = '0.25 vCPU' | '0.5 vCPU' | '1 vCPU' | '2 vCPU';
export type FargateMemory = `${number} GB`;
export type Capacity =
  | 'spot'
  | { fargate: { weight: number; base?: number }; spot: { weight: number; base?: number } };

export interface ServiceSize {
  cpu: FargateCpu;
  memory: FargateMemory;
  min: number;
  max: number;
}

export interface StageSettings {
  stage: string;
  kind: StageKind;
  production: boolean;
  /** `managed` NAT gateways in production; one fck-nat EC2 instance per AZ elsewhere (about 10× cheaper). */
  nat: 'managed' | 'ec2';
  az: number;
  capacity: Capacity;
  /** CloudWatch log retention for the services, the Lambda and the API's access log. */
  logRetention: LogRetention;
  retentionDays: number;
  removal: 'remove' | 'retain';
  protect: boolean;
  core: ServiceSize & { cpuTarget: number; sessionsPerTaskTarget: number };
  control: ServiceSize & { cpuTarget: number; requestsPerTarget: number };
  redisInstance: string;
  postgres: { instance: string; storage: `${number} GB`; multiAz: boolean };
  /**
   * ALB deregistration delay: how long a task leaving the target group keeps its open calls
   * (WebSockets stay up, no new requests) before ECS sends SIGTERM.
   */
  drainSeconds: number;
  /** SHUTDOWN_GRACE_MS: after SIGTERM, what live calls still get; always fits the stop timeout. */
  shutdownGraceMs: number;
  /** TELEPHONY_GLOBAL_MAX_CONCURRENCY: calls at once across the whole stage. */
  globalMaxConcurrency: number;
  logLevel: 'info' | 'debug';
}

const STAGE_NAME = /^[a-z][a-z0-9-]{0,25}$/;

/** Which kind of stage a name is. */
export function stageKind(stage: string): StageKind {
  if (stage === 'production') return 'production';
  if (stage === 'staging') return 'staging';
  if (/^pr-\d+$/.test(stage)) return 'pr';
  return 'dev';
}

const RETENTION_DAYS: Record<LogRetention, number> = { '1 week': 7, '2 weeks': 14, '1 month': 30 };

/** The settings of one stage. Throws on a name SST or AWS resource names would reject. */
export function stageSettings(stage: string): StageSettings {
  if (!STAGE_NAME.test(stage)) {
    throw new Error(
      `stage "${stage}" must be 1-26 lower-case letters, digits or "-", starting with a letter`,
    );
  }
  const kind = stageKind(stage);
  const production = kind === 'production';
  const logRetention: LogRetention = production ? '1 month' : kind === 'staging' ? '2 weeks' : '1 week';
  const drainSeconds = production ? 900 : kind === 'staging' ? 120 : 30;
  return {
    stage,
    kind,
    production,
    nat: production ? 'managed' : 'ec2',
    az: production ? 3 : 2,
    // Production: the first two tasks of each service on regular Fargate, the rest split evenly
    // with Spot. Elsewhere everything on Spot (interruptions are acceptable there).
    capacity: production ? { fargate: { weight: 1, base: 2 }, spot: { weight: 1 } } : 'spot',
    logRetention,
    retentionDays: RETENTION_DAYS[logRetention],
    removal: production ? 'retain' : 'remove',
    protect: production,
    core: production
      ? { cpu: '1 vCPU', memory: '2 GB', min: 2, max: 20, cpuTarget: 60, sessionsPerTaskTarget: 40 }
      : kind === 'staging'
        ? { cpu: '1 vCPU', memory: '2 GB', min: 1, max: 4, cpuTarget: 60, sessionsPerTaskTarget: 40 }
        : { cpu: '0.5 vCPU', memory: '1 GB', min: 1, max: 2, cpuTarget: 60, sessionsPerTaskTarget: 40 },
    control: production
      ? { cpu: '0.5 vCPU', memory: '1 GB', min: 2, max: 6, cpuTarget: 70, requestsPerTarget: 1000 }
      : {
          cpu: '0.25 vCPU',
          memory: '0.5 GB',
          min: 1,
          max: kind === 'staging' ? 2 : 1,
          cpuTarget: 70,
          requestsPerTarget: 1000,
        },
    redisInstance: production ? 't4g.small' : 't4g.micro',
    postgres: production
      ? { instance: 't4g.medium', storage: '50 GB', multiAz: true }
      : { instance: 't4g.micro', storage: '20 GB', multiAz: false },
    drainSeconds,
    shutdownGraceMs: Math.min(drainSeconds * 1000, MAX_SHUTDOWN_GRACE_MS),
    globalMaxConcurrency: production ? 200 : kind === 'staging' ? 50 : 10,
    logLevel: kind === 'dev' || kind === 'pr' ? 'debug' : 'info',
  };
}

export interface StageDomains {
  /** The shared ALB: `/v1/*` (control), `/realtime/*`, `/telephony/*` (core). */
  api: string;
  /** API Gateway in front of the voice-webhook Lambda. */
  hooks: string;
}

const DOMAIN_ROOT = /^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/**
 * Host names of a stage under the deployment's domain root (`SIPAI_DOMAIN`, a Route 53 hosted
 * zone): production gets `api.<root>` and `hooks.<root>`, every other stage `api.<stage>.<root>`.
 */
export function stageDomains(stage: string, domainRoot: string | undefined): StageDomains {
  const root = domainRoot?.trim().toLowerCase().replace(/\.$/, '');
  if (!root)
    throw new Error(
      'SIPAI_DOMAIN is not set: the Route 53 domain the stages live under, e.g. voice.example.org',
    );
  if (!DOMAIN_ROOT.test(root)) throw new Error(`SIPAI_DOMAIN must be a DNS name, got "${domainRoot}"`);
  const suffix = stageKind(stage) === 'production' ? root : `${stage}.${root}`;
  return { api: `api.${suffix}`, hooks: `hooks.${suffix}` };
}
