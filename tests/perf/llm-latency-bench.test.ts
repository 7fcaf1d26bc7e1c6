import { describe, expect, it } from 'vitest';
import { sileroAvailable } from '../../core/agent/providers/vad/silero.ts';
import {
  ISSUE_DELAYS,
  type LatencyRunResult,
  makeClip,
  runLatency,
  type VadKind,
  ZERO_DELAYS,
} from '../../perf/local/llm-latency-bench.ts';
import { voicesAvailable } from '../support/voices.ts';

/** Sanity of a short run: every call talked, every turn answered rightly and timed, nothing failed. */
function expectSane(r: LatencyRunResult, calls: number, turns: number) {
  expect(r.errors).toEqual([]);
  expect(r.connected).toBe(calls);
  expect(r.turns).toBe(calls * turns);
  expect(r.completed).toBe(calls * turns);
  expect(r.rightReplies).toBe(calls * turns);
  expect(r.measured.count).toBe(calls * turns);
  expect(r.callerLessEndpointing.count).toBe(calls * turns);
  expect(Number.isFinite(r.overhead.p50)).toBe(true);
  expect(r.serverCpuPct).toBeGreaterThan(0);
  expect(r.replyFrames).toBeGreaterThan(0);
}

/**
 * The benchmark's quick scenario over real sockets and processes (vendor fakes, core, callers),
 * bounded by turns rather than a time window: the numbers must be sane, not fast.
 */
describe.skipIf(!voicesAvailable.flite)('the llm latency benchmark, quick scenario', () => {
  const clip = voicesAvailable.flite ? makeClip() : { frames: [], silence: new Uint8Array(0) };
  const vad: VadKind = sileroAvailable().ok ? 'silero' : 'energy';
  const run = (delays = ISSUE_DELAYS) =>
    runLatency({ delays, calls: 2, vad, clip, windowMs: 0, warmupMs: 0, maxTurns: 2, turnTimeoutMs: 10_000 });

  it('times every turn of the llm agent, and each stage takes at least its fake’s delay', async () => {
    const r = await run();
    expectSane(r, 2, 2);
    expect(r.vad).toBe(vad);
    expect(r.sumMs).toBe(550);
    // The fakes held each answer: no stage beat its delay, so no measured turn beat their sum.
    expect(r.stages.stt.count).toBe(4);
    expect(r.stages.stt.p50).toBeGreaterThanOrEqual(0);
    expect(r.stages.llm.p50).toBeGreaterThanOrEqual(0);
    expect(r.stages.tts.p50).toBeGreaterThanOrEqual(0);
    expect(r.measured.p50).toBeGreaterThanOrEqual(550);
    expect(r.overhead.p50).toBe(r.measured.p50 - 550);
  }, 120_000);

  it('runs the zero-delay floor the same way', async () => {
    const r = await run(ZERO_DELAYS);
    expectSane(r, 2, 2);
    expect(r.sumMs).toBe(0);
    expect(r.overhead.p50).toBe(r.measured.p50);
    expect(r.overhead.p50).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
