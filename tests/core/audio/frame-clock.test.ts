import { describe, expect, it } from 'vitest';
import {
  bytesPerFrame,
  FrameClock,
  samplesPerFrame,
  sharedFrameClock,
} from '../../../core/audio/frame-clock.ts';

/**
 * Time that moves only when a test says so, with the one-shot timers a FrameClock arms on it:
 * ticks are judged against exact due times, never against how busy the machine is.
 */
function manualTime(o: { lateMs?: number } = {}) {
  let nowMs = 1000;
  let nextId = 1;
  let armed = 0;
  const pending = new Map<number, { atMs: number; fire: () => void }>();
  const cleared: number[] = [];
  return {
    now: () => nowMs,
    /** Timers armed so far. */
    armed: () => armed,
    pending: () => pending.size,
    timers: {
      setTimeout(fire: () => void, delayMs: number) {
        const id = nextId++;
        armed++;
        // A timer fires `lateMs` after it is due, as a loaded event loop's do.
        pending.set(id, { atMs: nowMs + delayMs + (o.lateMs ?? 0), fire });
        return id;
      },
      clearTimeout(handle: unknown) {
        cleared.push(handle as number);
        pending.delete(handle as number);
      },
    },
    /** Ids handed to clearTimeout, in order. */
    cleared: () => cleared,
    /** The runtime keeps the armed timer due soonest and never fires it; returns its fire. */
    loseNext(): () => void {
      let soonest: [number, { atMs: number; fire: () => void }] | undefined;
      for (const entry of pending) if (!soonest || entry[1].atMs < soonest[1].atMs) soonest = entry;
      if (!soonest) throw new Error('no timer armed');
      pending.delete(soonest[0]);
      return soonest[1].fire;
    },
    /** Lets `ms` pass, firing every timer that falls due, in order, at its time. */
    advance(ms: number) {
      const endMs = nowMs + ms;
      for (;;) {
        let next: [number, { atMs: number; fire: () => void }] | undefined;
        for (const entry of pending)
          if (entry[1].atMs <= endMs && (!next || entry[1].atMs < next[1].atMs)) next = entry;
        if (!next) break;
        pending.delete(next[0]);
        nowMs = Math.max(nowMs, next[1].atMs);
        next[1].fire();
      }
      nowMs = endMs;
    },
    /** The event loop is blocked: time passes and nothing fires. */
    stall(ms: number) {
      nowMs += ms;
    },
  };
}

interface Tick {
  frame: number;
  deadlineMs: number;
  atMs: number;
}

function recorder(now: () => number): {
  ticks: Tick[];
  listener: (frame: number, deadlineMs: number) => void;
} {
  const ticks: Tick[] = [];
  return {
    ticks,
    listener: (frame, deadlineMs) => ticks.push({ frame, deadlineMs, atMs: now() }),
  };
}

describe('FrameClock', () => {
  it('ticks every 20 ms on its grid over a second, late timers never adding up to drift', () => {
    const time = manualTime({ lateMs: 7 });
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const { ticks, listener } = recorder(time.now);
    const startMs = time.now();
    const unsubscribe = clock.subscribe(listener);
    time.advance(1010);
    unsubscribe();

    // 50 frames are due by 1000 ms and each timer fires 7 ms late: still all 50, none early.
    expect(ticks.map((t) => t.frame)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const tick of ticks) {
      expect(tick.deadlineMs).toBe(startMs + tick.frame * 20);
      expect(tick.atMs).toBeGreaterThanOrEqual(tick.deadlineMs);
      // Lateness stays what one timer adds; with drift it would grow frame after frame.
      expect(tick.atMs - tick.deadlineMs).toBeLessThanOrEqual(7);
    }
    expect(clock.skippedFrames).toBe(0);
  });

  it('serves many listeners from one timer', () => {
    const time = manualTime();
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const recorders = Array.from({ length: 100 }, () => recorder(time.now));
    const unsubscribes = recorders.map((r) => clock.subscribe(r.listener));
    time.advance(200);
    for (const unsubscribe of unsubscribes) unsubscribe();
    const ticks = recorders[0]!.ticks.length;
    expect(ticks).toBe(10);
    for (const r of recorders)
      expect(r.ticks.map((t) => t.frame)).toEqual(recorders[0]!.ticks.map((t) => t.frame));
    // one timer per tick for the whole clock (+1 armed for the next frame), not one per listener
    expect(time.armed()).toBe(ticks + 1);
    expect(time.pending()).toBe(0);
  });

  it('stops ticking a listener that unsubscribed, and stops its timer with no listeners left', () => {
    const time = manualTime();
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const a = recorder(time.now);
    const b = recorder(time.now);
    const stopA = clock.subscribe(a.listener);
    const stopB = clock.subscribe(b.listener);
    time.advance(70);
    stopA();
    expect(a.ticks.length).toBe(3);
    expect(clock.running).toBe(true);
    time.advance(70);
    expect(a.ticks.length).toBe(3);
    expect(b.ticks.length).toBe(7);

    stopB();
    expect(clock.running).toBe(false);
    expect(clock.listenerCount).toBe(0);
    expect(time.pending()).toBe(0); // the armed timer was cleared
    time.advance(70);
    expect(b.ticks.length).toBe(7);
  });

  it('restarts on a fresh grid when a listener returns', () => {
    const time = manualTime();
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const first = recorder(time.now);
    clock.subscribe(first.listener)();
    expect(clock.running).toBe(false);
    time.advance(13);
    const second = recorder(time.now);
    const restartMs = time.now();
    const stop = clock.subscribe(second.listener);
    time.advance(50);
    stop();
    expect(first.ticks).toEqual([]);
    expect(second.ticks[0]).toMatchObject({ frame: 1, deadlineMs: restartMs + 20 });
  });

  it('catches up at most maxCatchUpFrames after a stall, then resumes on its grid', () => {
    const time = manualTime();
    const clock = new FrameClock({ maxCatchUpFrames: 2, now: time.now, timers: time.timers });
    const { ticks, listener } = recorder(time.now);
    const stop = clock.subscribe((frame, deadlineMs) => {
      listener(frame, deadlineMs);
      if (frame === 3) time.stall(150); // the event loop blocked for 7.5 frames
    });
    time.advance(400);
    stop();

    const frames = ticks.map((t) => t.frame);
    expect(frames.slice(0, 3)).toEqual([1, 2, 3]);
    const resumed = ticks[3]!;
    expect(resumed.frame).toBeGreaterThanOrEqual(3 + 150 / 20 - 2);
    // the burst right after the stall is at most 2 frames delivered back to back
    const burst = ticks.slice(3).filter((t) => t.atMs === resumed.atMs);
    expect(burst.length).toBe(2);
    expect(clock.skippedFrames).toBe(resumed.frame - 4);
    // afterwards frames are consecutive again, on the original grid
    const after = frames.slice(3);
    expect(after).toEqual(after.map((_, i) => resumed.frame + i));
    for (const t of ticks) expect(t.deadlineMs - ticks[0]!.deadlineMs).toBe((t.frame - 1) * 20);
  });

  it('replaces a tick timer the runtime never fired when inbound traffic pokes it, keeping its grid', () => {
    const time = manualTime();
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const { ticks, listener } = recorder(time.now);
    const stop = clock.subscribe(listener);
    time.advance(50); // frames 1 and 2
    const lostFire = time.loseNext(); // frame 3's timer (due at 60 ms): armed, never fired
    time.advance(100);
    clock.poke(); // 150 ms: 90 ms overdue, which a loaded loop may be
    expect(ticks.length).toBe(2);
    time.advance(120);
    clock.poke(); // 270 ms: 210 ms overdue: lost
    expect(clock.replacedTimers).toBe(1);
    // Frames 11-13 are due, delivered back to back (the catch-up bound); 3-10 were skipped.
    expect(ticks.map((t) => t.frame)).toEqual([1, 2, 11, 12, 13]);
    expect(clock.skippedFrames).toBe(8);
    time.advance(100);
    expect(ticks.map((t) => t.frame).slice(5)).toEqual([14, 15, 16, 17, 18]);
    for (const t of ticks) expect(t.deadlineMs).toBe(ticks[0]!.deadlineMs + (t.frame - 1) * 20);
    // The abandoned timer fires after all: no extra tick.
    lostFire();
    expect(ticks.length).toBe(10);
    clock.poke(); // the fresh timer is on time: nothing to do
    expect(clock.replacedTimers).toBe(1);
    stop();
    expect(time.pending()).toBe(0);
  });

  it('leaves a stopped clock alone when poked', () => {
    const time = manualTime();
    const clock = new FrameClock({ now: time.now, timers: time.timers });
    const { ticks, listener } = recorder(time.now);
    clock.subscribe(listener)();
    time.advance(1000);
    clock.poke();
    expect(clock.running).toBe(false);
    expect(ticks).toEqual([]);
    expect(clock.replacedTimers).toBe(0);
  });

  it('keeps ticking other listeners when one throws', () => {
    const time = manualTime();
    const errors: unknown[] = [];
    const clock = new FrameClock({ onError: (e) => errors.push(e), now: time.now, timers: time.timers });
    const good = recorder(time.now);
    const stopBad = clock.subscribe(() => {
      throw new Error('boom');
    });
    const stopGood = clock.subscribe(good.listener);
    time.advance(65);
    stopBad();
    stopGood();
    expect(good.ticks.length).toBe(3);
    expect(errors.length).toBe(3);
    expect(String(errors[0])).toContain('boom');
  });

  it('runs on the real timers by default', async () => {
    const clock = new FrameClock();
    const { ticks, listener } = recorder(() => performance.now());
    const stop = clock.subscribe(listener);
    const started = performance.now();
    // Waits for ticks, however late a loaded machine delivers them; the bound only fails a hang.
    while (ticks.length < 5) {
      if (performance.now() - started > 10_000) throw new Error('the clock never ticked 5 times');
      await new Promise((r) => setTimeout(r, 10));
    }
    stop();
    expect(clock.running).toBe(false);
    const frames = ticks.map((t) => t.frame);
    expect(frames).toEqual(frames.map((_, i) => frames[0]! + i));
    for (const t of ticks)
      expect(t.deadlineMs - ticks[0]!.deadlineMs).toBeCloseTo((t.frame - frames[0]!) * 20, 6);
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
