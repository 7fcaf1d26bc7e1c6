/**
 * DTMF tones (ITU-T Q.23): each key is the sum of one low and one high frequency. Played
 * in-band, they reach any phone system on every protocol, which is how an agent "presses" keys
 * (an IVR menu on the other end, a conference PIN).
 */
const LOW: Record<string, number> = {};
const HIGH: Record<string, number> = {};
const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const KEYS = ['123A', '456B', '789C', '*0#D'];
KEYS.forEach((row, r) => {
  [...row].forEach((key, c) => {
    LOW[key] = ROWS[r]!;
    HIGH[key] = COLS[c]!;
  });
});

/** Whether every character of `digits` is a DTMF key (0-9, *, #, A-D). */
export function isDtmf(digits: string): boolean {
  return digits.length > 0 && [...digits].every((d) => d in LOW);
}

/** PCM16 of `digits` at `sampleRate`: `toneMs` of each key, `gapMs` of silence after each. */
export function dtmfTones(digits: string, sampleRate: number, toneMs = 100, gapMs = 80): Int16Array {
  const tone = Math.round((toneMs * sampleRate) / 1000);
  const gap = Math.round((gapMs * sampleRate) / 1000);
  const out = new Int16Array((tone + gap) * digits.length);
  let at = 0;
  for (const d of digits.toUpperCase()) {
    const lo = LOW[d];
    const hi = HIGH[d];
    if (lo === undefined || hi === undefined) throw new RangeError(`not a DTMF key: ${d}`);
    for (let i = 0; i < tone; i++) {
      const t = i / sampleRate;
      out[at + i] = Math.round(8000 * (Math.sin(2 * Math.PI * lo * t) + Math.sin(2 * Math.PI * hi * t)));
    }
    at += tone + gap;
  }
  return out;
}
