/**
 * Core's CloudWatch metrics, published as Embedded Metric Format lines on stdout: on ECS the
 * awslogs driver ships stdout to CloudWatch Logs, which turns each such line into datapoints.
 * No SDK, no credentials, no extra network path. `sipai_sessions_active` feeds the "calls near
 * limit" alarm (Sum over the stage) and session-based scaling (Average per task), both in
 * infra/alarms.ts; `sipai_admissions_refused_at_capacity` counts calls refused for a full house
 * since the previous line.
 */
import { mediaMetrics } from '../realtime/metrics.ts';

/** The namespace and dimension infra/alarms.ts `SESSIONS_METRIC` reads. */
export const EMF_NAMESPACE = 'sipai';
export const EMF_STAGE_DIMENSION = 'Stage';
export const SESSIONS_ACTIVE_METRIC = 'sipai_sessions_active';
export const REFUSED_AT_CAPACITY_METRIC = 'sipai_admissions_refused_at_capacity';
/** One line a minute: the alarm and the scaling policy both read one-minute periods. */
export const DEFAULT_EMF_INTERVAL_MS = 60_000;

/** Admissions refused at capacity since the process started (call-capacity.ts counts them). */
export const capacityRefusals = { total: 0 };

/** Live sessions in this process, over every wire protocol. */
export function liveSessions(): number {
  return Object.values(mediaMetrics).reduce((sum, m) => sum + m.sessions, 0);
}

export interface EmfEmitterOptions {
  stage: string;
  intervalMs?: number;
  /** Where lines go; stdout by default. */
  write?: (line: string) => void;
  now?: () => number;
  sessions?: () => number;
  refusedTotal?: () => number;
}

/** One EMF line: the two metrics, dimensioned by stage. */
export function emfLine(stage: string, timestampMs: number, sessions: number, refused: number): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: [
        {
          Namespace: EMF_NAMESPACE,
          Dimensions: [[EMF_STAGE_DIMENSION]],
          Metrics: [
            { Name: SESSIONS_ACTIVE_METRIC, Unit: 'Count' },
            { Name: REFUSED_AT_CAPACITY_METRIC, Unit: 'Count' },
          ],
        },
      ],
    },
    [EMF_STAGE_DIMENSION]: stage,
    [SESSIONS_ACTIVE_METRIC]: sessions,
    [REFUSED_AT_CAPACITY_METRIC]: refused,
  });
}

/** A running emitter: `emit` writes one line now, `stop` ends the timer. */
export interface EmfEmitter {
  emit(): void;
  stop(): void;
}

/** Writes one line at start and one every `intervalMs`; the timer never keeps the process alive. */
export function startEmfEmitter(opts: EmfEmitterOptions): EmfEmitter {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = opts.now ?? Date.now;
  const sessions = opts.sessions ?? liveSessions;
  const refusedTotal = opts.refusedTotal ?? (() => capacityRefusals.total);
  let reported = refusedTotal();
  const emit = () => {
    const total = refusedTotal();
    write(emfLine(opts.stage, now(), sessions(), total - reported));
    reported = total;
  };
  emit();
  const timer = setInterval(emit, opts.intervalMs ?? DEFAULT_EMF_INTERVAL_MS);
  timer.unref?.();
  return { emit, stop: () => clearInterval(timer) };
}
