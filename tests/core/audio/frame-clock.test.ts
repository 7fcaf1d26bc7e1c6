import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bytesPerFrame,
  FrameClock,
  samplesPerFrame,
  sharedFrameClock,
} from '../../../core/audio/frame-clock.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Tick {
  frame: number;
  deadlineMs: number;
  atMs: number;
}

function recorder(): { ticks: Tick[]; listener: (frame: number, deadlineMs: number) => void } {
  const ticks: Tick[] = [];
  return {
    ticks,
    listener: (frame, deadlineMs) => ticks.push({ frame, deadlineMs, atMs: performance.now() }),
  };
}

describe('FrameClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('ticks every 20 ms on average over a second without drifting', async () => {
    const clock = new FrameClock();
    const { ticks, listener } = recorder();
    const startMs = performance.now();
    const unsubscribe = clock.subscribe(listener);
    await sleep(1010);
    unsubscribe();

    // 50 frames are due by 1000 ms; allow a late loop under parallel test load.
    expect(ticks.length).toBeGreaterThanOrEqual(46);
    expect(ticks.length).toBeLessThanOrEqual(51);
    ticks.forEach((tick, i) => {
      expect(tick.frame).toBe(i + 1);
      expect(tick.atMs).toBeGreaterThanOrEqual(tick.deadlineMs); // never early
    });
    const first = ticks[0]!;
    const last = ticks.at(-1)!;
    expect(first.deadlineMs - startMs).toBeCloseTo(20, 0);
    const meanIntervalMs = (last.atMs - first.atMs) / (ticks.length - 1);
    expect(meanIntervalMs).toBeGreaterThan(19);
    expect(meanIntervalMs).toBeLessThan(21);
    // Deadlines sit on the grid, so lateness does not grow with time (it would, with drift).
    expect(last.deadlineMs - first.deadlineMs).toBeCloseTo((last.frame - first.frame) * 20, 6);
    expect(last.atMs - last.deadlineMs).toBeLessThan(15);
  });

  it('serves many listeners from one timer', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const clock = new FrameClock();
    const recorders = Array.from({ length: 100 }, recorder);
    const unsubscribes = recorders.map((r) => clock.subscribe(r.listener));
    await sleep(205);
    for (const unsubscribe of unsubscribes) unsubscribe();
    const ticks = recorders[0]!.ticks.length;
    expect(ticks).toBeGreaterThanOrEqual(8);
    for (const r of recorders)
      expect(r.ticks.map((t) => t.frame)).toEqual(recorders[0]!.ticks.map((t) => t.frame));
    // one timer per tick for the whole clock (+1 for sleep, +1 armed for the next frame), not per listener
    expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(ticks + 3);
  });

  it('stops ticking a listener that unsubscribed, and stops its timer with no listeners left', async () => {
    const clearTimeoutSpy = vi.spyOn(globalThis, 'clearTimeout');
    const clock = new FrameClock();
    const a = recorder();
    const b = recorder();
    const stopA = clock.subscribe(a.listener);
    const stopB = clock.subscribe(b.listener);
    await sleep(70);
    stopA();
    const aCount = a.ticks.length;
    expect(aCount).toBeGreaterThan(0);
    expect(clock.running).toBe(true);
    await sleep(70);
    expect(a.ticks.length).toBe(aCount);
    expect(b.ticks.length).toBeGreaterThan(aCount);

    stopB();
    expect(clock.running).toBe(false);
    expect(clock.listenerCount).toBe(0);
    expect(clearTimeoutSpy).toHaveBeenCalled();
    const bCount = b.ticks.length;
    await sleep(70);
    expect(b.ticks.length).toBe(bCount);
  });

  it('restarts on a fresh grid when a listener returns', async () => {
    const clock = new FrameClock();
    const first = recorder();
    clock.subscribe(first.listener)();
    expect(clock.running).toBe(false);
    const second = recorder();
    const stop = clock.subscribe(second.listener);
    await sleep(50);
    stop();
    expect(first.ticks).toEqual([]);
    expect(second.ticks[0]?.frame).toBe(1);
  });

  it('catches up at most maxCatchUpFrames after a stall, then resumes on its grid', async () => {
    const clock = new FrameClock({ maxCatchUpFrames: 2 });
    const { ticks, listener } = recorder();
    const stop = clock.subscribe((frame, deadlineMs) => {
      listener(frame, deadlineMs);
      if (frame === 3) {
        const until = performance.now() + 150; // block the event loop for 7.5 frames
        while (performance.now() < until) {}
      }
    });
    await sleep(400);
    stop();

    const frames = ticks.map((t) => t.frame);
    expect(frames.slice(0, 3)).toEqual([1, 2, 3]);
    const resumed = ticks[3]!;
    expect(resumed.frame).toBeGreaterThanOrEqual(3 + 150 / 20 - 2);
    // the burst right after the stall is at most 2 frames delivered back to back
    const burst = ticks.slice(3).filter((t) => t.atMs - resumed.atMs < 2);
    expect(burst.length).toBeLessThanOrEqual(2);
    expect(clock.skippedFrames).toBe(resumed.frame - 4);
    // afterwards frames are consecutive again, on the original grid
    const after = frames.slice(3);
    expect(after).toEqual(after.map((_, i) => resumed.frame + i));
    for (const t of ticks) expect(t.deadlineMs - ticks[0]!.deadlineMs).toBeCloseTo((t.frame - 1) * 20, 6);
  });

  it('keeps ticking other listeners when one throws', async () => {
    const errors: unknown[] = [];
    const clock = new FrameClock({ onError: (e) => errors.push(e) });
    const good = recorder();
    const stopBad = clock.subscribe(() => {
      throw new Error('boom');
    });
    const stopGood = clock.subscribe(good.listener);
    await sleep(65);
    stopBad();
    stopGood();
    expect(good.ticks.length).toBeGreaterThanOrEqual(2);
    expect(errors.length).toBe(good.ticks.length);
    expect(String(errors[0])).toContain('boom');
  });

  it('offers one node-wide shared 20 ms clock', () => {
    expect(sharedFrameClock()).toBe(sharedFrameClock());
    expect(sharedFrameClock().frameMs).toBe(20);
  });
});

describe('frame sizes', () => {
  it('counts samples per 20 ms frame at the platform rates', () => {
    expect([8000, 16000, 24000, 48000].map((rate) => samplesPerFrame(rate))).toEqual([160, 320, 480, 960]);
    expect(samplesPerFrame(8000, 10)).toBe(80);
  });

  it('counts bytes per frame by encoding', () => {
    expect(bytesPerFrame('mulaw', 8000)).toBe(160);
    expect(bytesPerFrame('alaw', 8000)).toBe(160);
    expect(bytesPerFrame('pcm16', 8000)).toBe(320);
    expect(bytesPerFrame('pcm16', 16000)).toBe(640);
    expect(bytesPerFrame('pcm16', 24000, 40)).toBe(1920);
  });

  it('refuses frames that are not a whole number of samples', () => {
    expect(() => samplesPerFrame(11025)).toThrow(RangeError);
    expect(() => bytesPerFrame('pcm16', 0)).toThrow(RangeError);
  });
});
