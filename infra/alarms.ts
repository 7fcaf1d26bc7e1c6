/**
 * The CloudWatch alarms of a stage, as plain data; `sst.config.ts` turns each into an
 * `aws.cloudwatch.MetricAlarm` wired to the stage's alarm topic, and docs/RUNBOOK.md says what to
 * do when one fires. Thresholds follow the runbook seeds: 5xx from the ALB or the targets,
 * any unhealthy target, CPU or memory above 80 %, live calls near the global limit.
 */
import type { StageSettings } from './stage.ts';

/**
 * Live calls, published by core as a CloudWatch metric (one datapoint per task per minute,
 * e.g. through the Embedded Metric Format on stdout) with the dimension `Stage`.
 * `Sum` over a minute is the stage's total; `Average` is the per-task load autoscaling tracks.
 */
export const SESSIONS_METRIC = {
  namespace: 'sipai',
  name: 'sipai_sessions_active',
  stageDimension: 'Stage',
} as const;

/** Which resource's dimensions an alarm watches. */
export type AlarmSubject =
  | 'alb'
  | 'core-target'
  | 'control-target'
  | 'core-service'
  | 'control-service'
  | 'stage';

export interface AlarmSpec {
  /** Suffix of the alarm name `<app>-<stage>-<key>`, and the runbook's heading. */
  key: string;
  description: string;
  subject: AlarmSubject;
  namespace: string;
  metricName: string;
  statistic: 'Sum' | 'Average' | 'Maximum';
  periodSeconds: number;
  evaluationPeriods: number;
  threshold: number;
  comparison: 'GreaterThanOrEqualToThreshold' | 'GreaterThanThreshold';
  /** A metric with no datapoints (no traffic, no errors) is healthy. */
  treatMissingData: 'notBreaching';
}

/** The 80 % line for CPU and memory. */
export const UTILIZATION_ALARM_PERCENT = 80;
/** Share of TELEPHONY_GLOBAL_MAX_CONCURRENCY at which the "calls near limit" alarm fires. */
export const CALLS_NEAR_LIMIT_RATIO = 0.9;

/** Every alarm of one stage. */
export function alarmSpecs(s: StageSettings): AlarmSpec[] {
  const elb = 'AWS/ApplicationELB';
  const ecs = 'AWS/ECS';
  const base = { treatMissingData: 'notBreaching' as const };
  const utilization = (service: 'core' | 'control', metric: 'CPUUtilization' | 'MemoryUtilization') => ({
    ...base,
    key: `${service}-${metric === 'CPUUtilization' ? 'cpu' : 'memory'}-high`,
    description: `${service} ${metric === 'CPUUtilization' ? 'CPU' : 'memory'} above ${UTILIZATION_ALARM_PERCENT} % for 5 minutes`,
    subject: `${service}-service` as const,
    namespace: ecs,
    metricName: metric,
    statistic: 'Average' as const,
    periodSeconds: 60,
    evaluationPeriods: 5,
    threshold: UTILIZATION_ALARM_PERCENT,
    comparison: 'GreaterThanThreshold' as const,
  });
  const unhealthy = (service: 'core' | 'control') => ({
    ...base,
    key: `${service}-unhealthy-hosts`,
    description: `a ${service} task has failed its ALB health check for 3 minutes`,
    subject: `${service}-target` as const,
    namespace: elb,
    metricName: 'UnHealthyHostCount',
    statistic: 'Maximum' as const,
    periodSeconds: 60,
    evaluationPeriods: 3,
    threshold: 1,
    comparison: 'GreaterThanOrEqualToThreshold' as const,
  });
  return [
    {
      ...base,
      key: 'alb-5xx',
      description: 'the ALB itself answered 5xx (no healthy target, or a target reset the connection)',
      subject: 'alb',
      namespace: elb,
      metricName: 'HTTPCode_ELB_5XX_Count',
      statistic: 'Sum',
      periodSeconds: 300,
      evaluationPeriods: 1,
      threshold: 10,
      comparison: 'GreaterThanOrEqualToThreshold',
    },
    {
      ...base,
      key: 'targets-5xx',
      description: 'core or control answered 5xx through the ALB',
      subject: 'alb',
      namespace: elb,
      metricName: 'HTTPCode_Target_5XX_Count',
      statistic: 'Sum',
      periodSeconds: 300,
      evaluationPeriods: 1,
      threshold: 25,
      comparison: 'GreaterThanOrEqualToThreshold',
    },
    unhealthy('core'),
    unhealthy('control'),
    utilization('core', 'CPUUtilization'),
    utilization('core', 'MemoryUtilization'),
    utilization('control', 'CPUUtilization'),
    utilization('control', 'MemoryUtilization'),
    {
      ...base,
      key: 'calls-near-limit',
      description: `live calls above ${CALLS_NEAR_LIMIT_RATIO * 100} % of TELEPHONY_GLOBAL_MAX_CONCURRENCY (${s.globalMaxConcurrency})`,
      subject: 'stage',
      namespace: SESSIONS_METRIC.namespace,
      metricName: SESSIONS_METRIC.name,
      statistic: 'Sum',
      periodSeconds: 60,
      evaluationPeriods: 3,
      threshold: Math.floor(s.globalMaxConcurrency * CALLS_NEAR_LIMIT_RATIO),
      comparison: 'GreaterThanOrEqualToThreshold',
    },
  ];
}
