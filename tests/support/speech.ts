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

/** Pearson correlation of two equally long signals, at the best lag within ±`maxLag` samples. */
export function bestCorrelation(a: Int16Array, b: Int16Array, maxLag: number): { r: number; lag: number } {
  let best = { r: -1, lag: 0 };
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    let n = 0;
    for (let i = Math.max(0, -lag); i < a.length && i + lag < b.length; i++) {
      const x = a[i]!;
      const y = b[i + lag]!;
      sab += x * y;
      saa += x * x;
      sbb += y * y;
      n++;
    }
    if (n === 0 || saa === 0 || sbb === 0) continue;
    const r = sab / Math.sqrt(saa * sbb);
    if (r > best.r) best = { r, lag };
  }
  return best;
}
