import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function has(bin: string): boolean {
  try {
    execFileSync('which', [bin], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether espeak-ng and sox are installed (Debian packages), so tests can make real speech. */
export const canSpeak = has('espeak-ng') && has('sox');

/**
 * Real synthetic speech for media tests: espeak-ng speaks `text`, sox converts it to mono
 * signed 16-bit PCM at `sampleRate`. Returns the samples.
 */
export function speak(text: string, sampleRate: number): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-speech-'));
  try {
    const wav = join(dir, 'speech.wav');
    const raw = join(dir, 'speech.raw');
    execFileSync('espeak-ng', ['-w', wav, text]);
    execFileSync('sox', [
      wav,
      '-t',
      'raw',
      '-r',
      String(sampleRate),
      '-e',
      'signed',
      '-b',
      '16',
      '-c',
      '1',
      raw,
    ]);
    const bytes = readFileSync(raw);
    return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + (bytes.length & ~1)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pearson correlation of `a` with `b` shifted by `lag` samples. */
function correlationAt(a: Int16Array, b: Int16Array, lag: number): number {
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = Math.max(0, -lag); i < a.length && i + lag < b.length; i++) {
    const x = a[i]!;
    const y = b[i + lag]!;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa === 0 || sbb === 0 ? -1 : sab / Math.sqrt(saa * sbb);
}

/**
 * Pearson correlation of two equally long signals, at the best lag within ±`maxLag` samples:
 * lags `step` apart first, then every lag around the best of those. It yields to the event loop
 * as it goes: the media tests run the server in the same process, and a search over every lag
 * of 24 kHz speech held the loop for over a second.
 */
export async function bestCorrelation(
  a: Int16Array,
  b: Int16Array,
  maxLag: number,
  step = 1,
): Promise<{ r: number; lag: number }> {
  let best = { r: -1, lag: 0 };
  let sinceYield = 0;
  const consider = async (lag: number) => {
    const r = correlationAt(a, b, lag);
    if (r > best.r) best = { r, lag };
    sinceYield += a.length;
    if (sinceYield > 1_000_000) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  for (let lag = -maxLag; lag <= maxLag; lag += step) await consider(lag);
  const around = best.lag;
  for (let lag = Math.max(-maxLag, around - step + 1); lag <= Math.min(maxLag, around + step - 1); lag++) {
    if (lag !== around) await consider(lag);
  }
  return best;
}
