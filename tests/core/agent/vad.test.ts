import { describe, expect, it } from 'vitest';
import type { VoiceDetector } from '../../../core/agent/providers/types.ts';
import { ModelVad, type VadEvent } from '../../../core/agent/vad.ts';

const RATE = 16000;
const FRAME = new Int16Array(320); // 20 ms

/**
 * A detector whose flag follows a script of 20 ms frames (true = speech), held up for
 * `hangoverMs` after the speech stops, as Silero's minimum-silence rule does.
 */
class ScriptedDetector implements VoiceDetector {
  readonly name = 'scripted';
  readonly sampleRate = RATE;
  private frame = 0;
  private lastSpeech = -Infinity;
  constructor(
    private readonly speech: (frame: number) => boolean,
    readonly hangoverMs?: number,
  ) {}
  process(): number {
    const n = this.frame++;
    if (this.speech(n)) this.lastSpeech = n;
    return (n - this.lastSpeech) * 20 < (this.hangoverMs ?? 0) + 20 ? 1 : 0;
  }
  reset(): void {}
}

/** Feeds frames until `speech_end`; the frame index (of the first silent one = 0) it fired on. */
function runUntilEnd(vad: ModelVad, speechFrames: number): { endAt: number; events: VadEvent[] } {
  const events: VadEvent[] = [];
  for (let i = 0; i < speechFrames + 200; i++) {
    const e = vad.process(FRAME);
    if (e) events.push(e);
    if (e === 'speech_end') return { endAt: i - speechFrames, events };
  }
  throw new Error('no speech_end');
}

describe('ModelVad endpointing', () => {
  it('counts the detector’s hangover as silence already waited', () => {
    const speechFrames = 50; // 1 s of speech
    const vad = new ModelVad(new ScriptedDetector((n) => n < speechFrames, 100), {
      sampleRate: RATE,
      stopMs: 500,
      startMs: 100,
    });
    const { endAt, events } = runUntilEnd(vad, speechFrames);
    expect(events).toEqual(['speech_start', 'speech_end']);
    // The turn ends on the 25th silent frame: 500 ms after the words, not 500 after the flag.
    expect(endAt + 1).toBe(25);
    expect(vad.trailingSilenceMs).toBe(500);
    expect(vad.speechMs).toBe(1000);
  });

  it('waits the full endpointing silence after a detector with no hangover', () => {
    const speechFrames = 50;
    const vad = new ModelVad(new ScriptedDetector((n) => n < speechFrames), {
      sampleRate: RATE,
      stopMs: 500,
      startMs: 100,
    });
    const { endAt } = runUntilEnd(vad, speechFrames);
    expect(endAt + 1).toBe(25);
    expect(vad.trailingSilenceMs).toBe(500);
    expect(vad.speechMs).toBe(1000);
  });

  it('keeps a pause inside speech (shorter than the endpointing) in the same turn', () => {
    // 0.6 s speech, 0.3 s pause, 0.6 s speech.
    const vad = new ModelVad(new ScriptedDetector((n) => n < 30 || (n >= 45 && n < 75), 100), {
      sampleRate: RATE,
      stopMs: 500,
      startMs: 100,
    });
    const { endAt, events } = runUntilEnd(vad, 75);
    expect(events).toEqual(['speech_start', 'speech_end']);
    expect(endAt + 1).toBe(25);
    expect(vad.speechMs).toBe(1500);
  });
});
