/**
 * Core's CloudWatch metrics: the Embedded Metric Format lines a real `core/main.ts` run writes,
 * and the capacity refusals they count.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { CallCapacity } from '../../../core/capacity/call-capacity.ts';
import { startEmfEmitter } from '../../../core/observability/cloudwatch-emf.ts';
import { MemoryStore } from '../../../core/store/index.ts';
import { SESSIONS_METRIC } from '../../../infra/alarms.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
type Emf = Record<string, unknown> & {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
  };
};

let child: ChildProcessByStdio<null, Readable, Readable> | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Collects stdout lines of a running child until `enough` says so. */
function linesUntil(
  proc: ChildProcessByStdio<null, Readable, Readable>,
  enough: (lines: string[]) => boolean,
) {
  return new Promise<string[]>((resolve, reject) => {
    const lines: string[] = [];
    let buffered = '';
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    proc.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
      if (enough(lines)) resolve(lines);
    });
    proc.on('exit', (code) => reject(new Error(`core exited (${code}) before enough lines: ${stderr}`)));
  });
}

const emfOf = (lines: string[]) => lines.filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Emf);

describe('CloudWatch embedded metrics from core', () => {
  it('a core/main.ts run on a stage writes sipai_sessions_active lines CloudWatch reads as the alarm metric', async () => {
    child = spawn(path.join(ROOT, 'node_modules/.bin/bun'), ['run', 'core/main.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        REALTIME_WS_SECRET: 'emf-test-secret-0123456789abcdef',
        LOG_LEVEL: 'info',
        SIPAI_STAGE: 'emf-test',
        SIPAI_EMF_INTERVAL_MS: '50',
      },
    });
    const lines = await linesUntil(child, (l) => emfOf(l).length >= 2);
    const [first, second] = emfOf(lines);
    for (const line of [first, second]) {
      if (!line) throw new Error('missing line');
      const directive = line._aws.CloudWatchMetrics[0];
      expect(directive?.Namespace).toBe(SESSIONS_METRIC.namespace);
      expect(directive?.Dimensions).toEqual([[SESSIONS_METRIC.stageDimension]]);
      expect(directive?.Metrics.map((m) => m.Name)).toEqual([
        SESSIONS_METRIC.name,
        'sipai_admissions_refused_at_capacity',
      ]);
      expect(line[SESSIONS_METRIC.stageDimension]).toBe('emf-test');
      expect(line[SESSIONS_METRIC.name]).toBe(0);
      expect(line.sipai_admissions_refused_at_capacity).toBe(0);
      expect(Math.abs(line._aws.Timestamp - Date.now())).toBeLessThan(60_000);
    }
    // Every line is a whole JSON object of its own: the pino logs beside them stay parseable.
    for (const l of lines.filter((x) => x.trim())) expect(() => JSON.parse(l)).not.toThrow();
  }, 30_000);

  it('writes nothing without a stage (local runs)', async () => {
    child = spawn(path.join(ROOT, 'node_modules/.bin/bun'), ['run', 'core/main.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        REALTIME_WS_SECRET: 'emf-test-secret-0123456789abcdef',
        LOG_LEVEL: 'info',
        SIPAI_EMF_INTERVAL_MS: '50',
      },
    });
    const lines = await linesUntil(child, (l) => l.some((x) => x.includes('core listening')));
    // Listening means the emitter would have written its first line already.
    expect(emfOf(lines)).toEqual([]);
  }, 30_000);

  it('counts admissions refused at capacity once each, and live sessions as the sampler reads them', async () => {
    const capacity = new CallCapacity(new MemoryStore(), { globalMax: 1, perCampaignMax: 1, ttlMs: 60_000 });
    const written: string[] = [];
    let live = 0;
    const emitter = startEmfEmitter({
      stage: 'unit',
      intervalMs: 3_600_000,
      write: (l) => written.push(l),
      now: () => 1_000,
      sessions: () => live,
    });
    try {
      expect((await capacity.admit('call-a')).ok).toBe(true);
      live = 1;
      expect((await capacity.admit('call-b')).ok).toBe(false);
      expect((await capacity.admit('call-c')).ok).toBe(false);
      emitter.emit();
      emitter.emit();
    } finally {
      emitter.stop();
    }
    const values = written.map((l) => JSON.parse(l) as Record<string, number>);
    expect(values.map((v) => [v.sipai_sessions_active, v.sipai_admissions_refused_at_capacity])).toEqual([
      [0, 0],
      [1, 2],
      [1, 0],
    ]);
  });
});
