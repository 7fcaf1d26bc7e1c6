import { describe, expect, it } from 'vitest';
import type { FrameClock } from '../../../core/audio/index.ts';
import { Playout } from '../../../core/session/playout.ts';
import type { OutboundFrame } from '../../../core/wire/frames.ts';

/** A clock driven by hand: `tick()` advances time 20 ms and fires one frame to every listener. */
function manualClock() {
  let nowMs = 1000;
  const listeners = new Set<(i: number, d: number) => void>();
  const clock = {
    subscribe(fn: (i: number, d: number) => void) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  } as unknown as FrameClock;
  return {
    clock,
    now: () => nowMs,
    tick: () => {
      nowMs += 20;
      for (const l of [...listeners]) l(0, 0);
    },
    get listening() {
      return listeners.size;
    },
  };
}

function ramp(n: number, from = 0): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => (from + i) % 30000);
}

function collect() {
  const audio: Int16Array[] = [];
  const marks: string[] = [];
  const send = (f: OutboundFrame) => {
    if (f.kind === 'audio_out') audio.push(new Int16Array(f.data.slice().buffer));
    else if (f.kind === 'mark') marks.push(f.name);
  };
  return { audio, marks, send };
}

describe('Playout', () => {
  it('sends the lead at once, then one 20 ms frame per tick, then the mark, then stops ticking once idle', () => {
    // Driven by the clock alone (no inbound traffic pumping it), a frame goes out once it is
    // late: the first tick after the lead finds the next frame just due, the ones after send one each.
    const c = manualClock();
    const out = collect();
    const p = new Playout({
      pipelineRate: 8000,
      wireRate: 8000,
      encoding: 'pcm16',
      clock: c.clock,
      now: c.now,
      send: out.send,
      leadFrames: 2,
    });
    p.enqueue(ramp(160 * 5 + 40), 'm1');
    expect(out.audio).toHaveLength(2);
    c.tick();
    expect(out.audio).toHaveLength(2);
    for (let i = 0; i < 3; i++) c.tick();
    expect(out.audio).toHaveLength(5);
    expect(out.marks).toEqual([]);
    c.tick();
    expect(out.audio).toHaveLength(6);
    // The last frame is the 40-sample tail, zero-padded.
    expect(Array.from(out.audio[5]!.subarray(0, 40))).toEqual(Array.from(ramp(40, 800)));
    expect(out.audio[5]!.subarray(40).every((s) => s === 0)).toBe(true);
    expect(out.marks).toEqual(['m1']);
    // Stays on the clock a while (audio streaming in frame by frame just waits for its turn)…
    for (let i = 0; i < 49; i++) c.tick();
    expect(c.listening).toBe(1);
    p.enqueue(ramp(160));
    expect(out.audio).toHaveLength(6); // no lead burst while still on the clock
    c.tick();
    expect(out.audio).toHaveLength(7);
    // …then leaves it after 50 idle ticks.
    for (let i = 0; i < 50; i++) c.tick();
    expect(c.listening).toBe(0);
    expect(out.audio).toHaveLength(7);
    expect(
      Array.from(
        out.audio
          .slice(0, 6)
          .flatMap((a) => Array.from(a))
          .slice(0, 840),
      ),
    ).toEqual(Array.from(ramp(840)));
  });

  it('keeps audio intact across ring wrap-around and growth', () => {
    const c = manualClock();
    const out = collect();
    const p = new Playout({
      pipelineRate: 8000,
      wireRate: 8000,
      encoding: 'pcm16',
      clock: c.clock,
      now: c.now,
      send: out.send,
      leadFrames: 0,
    });
    let fed = 0;
    // Feed 3 s in uneven chunks while draining 1 frame per tick: wraps the 1 s ring several times
    // and grows it when the queue passes a second.
    for (let step = 0; step < 300; step++) {
      const n = step < 100 ? 500 : 100;
      p.enqueue(ramp(n, fed));
      fed += n;
      c.tick();
    }
    while (p.playing) c.tick();
    const played = out.audio.flatMap((a) => Array.from(a)).slice(0, fed);
    expect(played).toEqual(Array.from(ramp(fed)));
  });

  it('drops queued audio and pending marks on clear', () => {
    const c = manualClock();
    const out = collect();
    const p = new Playout({
      pipelineRate: 16000,
      wireRate: 8000,
      encoding: 'mulaw',
      clock: c.clock,
      now: c.now,
      send: out.send,
    });
    p.enqueue(ramp(16000), 'gone');
    expect(p.clear()).toBe(true);
    c.tick();
    expect(out.marks).toEqual([]);
    expect(p.playing).toBe(false);
    expect(c.listening).toBe(0);
    // Resampled and encoded: 20 ms at 8 kHz mu-law is 160 bytes.
    expect(out.audio.every((a) => a.buffer.byteLength === 160)).toBe(true);
  });

  it('caps the queue by dropping the oldest audio', () => {
    const c = manualClock();
    const out = collect();
    const p = new Playout({
      pipelineRate: 8000,
      wireRate: 8000,
      encoding: 'pcm16',
      clock: c.clock,
      now: c.now,
      send: out.send,
      leadFrames: 0,
      maxQueuedMs: 500,
    });
    p.enqueue(ramp(8000));
    expect(p.queuedSamples).toBe(4000);
    expect(p.overflowSamples).toBe(4000);
  });
});

describe('Playout.pump', () => {
  it('lets inbound traffic send frames due within its early window, never ahead of the schedule', () => {
    const c = manualClock();
    const out = collect();
    const p = new Playout({
      pipelineRate: 8000,
      wireRate: 8000,
      encoding: 'pcm16',
      clock: c.clock,
      now: c.now,
      send: out.send,
      leadFrames: 1,
    });
    p.enqueue(ramp(160 * 10));
    expect(out.audio).toHaveLength(1);
    const t0 = c.now();
    p.pump(t0 + 5, 10); // next frame is due at t0+20: within 10 ms of t0+15? no
    expect(out.audio).toHaveLength(1);
    p.pump(t0 + 12, 10); // due at t0+20 <= t0+22: sent early, by the inbound path
    expect(out.audio).toHaveLength(2);
    p.pump(t0 + 12, 10); // the next is due at t0+40: not yet
    expect(out.audio).toHaveLength(2);
    // Far behind (the loop stalled): at most 3 frames back to back, then a fresh schedule.
    p.pump(t0 + 500, 10);
    expect(out.audio).toHaveLength(5);
    p.pump(t0 + 505, 10);
    expect(out.audio).toHaveLength(5);
  });
});
