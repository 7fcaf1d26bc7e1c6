import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ttsAvailable } from '../../../../core/agent/providers/tts/availability.ts';
import { EspeakTts } from '../../../../core/agent/providers/tts/espeak.ts';
import { FestivalTts, festivalPid, stopFestival } from '../../../../core/agent/providers/tts/festival.ts';
import { FLITE_VOICES, FliteTts, type FliteVoice } from '../../../../core/agent/providers/tts/flite.ts';
import { parseWav, spawnToFile } from '../../../../core/agent/providers/tts/spawn-to-file.ts';
import { type AudioChunk, ProviderError, type TextToSpeech } from '../../../../core/agent/providers/types.ts';

afterAll(() => stopFestival());

const engines: Array<[string, () => TextToSpeech, boolean]> = [
  ['flite', () => new FliteTts(), ttsAvailable('flite').ok],
  ['festival', () => new FestivalTts(), ttsAvailable('festival').ok],
  ['espeak', () => new EspeakTts(), ttsAvailable('espeak').ok],
];

function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return pcm.length ? Math.sqrt(sum / pcm.length) : 0;
}

/** Pids and command names of this process's children (Linux /proc). */
function children(): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let list = '';
    try {
      list = readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const pid of list.trim().split(/\s+/).filter(Boolean).map(Number)) {
      try {
        out.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() });
      } catch {
        // exited meanwhile
      }
    }
  }
  return out;
}

const childrenNamed = (comm: string) => children().filter((c) => c.comm === comm);

/** Polls `cond` on the event loop until it holds (the test timeout bounds the wait). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

async function* pieces(parts: string[]): AsyncGenerator<string> {
  for (const p of parts) {
    await Promise.resolve();
    yield p;
  }
}

async function collect(it: AsyncIterable<AudioChunk>): Promise<AudioChunk[]> {
  const out: AudioChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe.each(engines)('%s', (name, make, installed) => {
  it.skipIf(!installed)('speaks a sentence as non-silent audio at its declared rate', async () => {
    const tts = make();
    await tts.warm?.();
    const chunks = await collect(
      tts.synthesize('The quick brown fox jumps over the lazy dog.', new AbortController().signal),
    );
    expect(chunks).toHaveLength(1);
    const [chunk] = chunks;
    expect(chunk!.sampleRate).toBe(tts.sampleRate);
    expect(chunk!.text).toBe('The quick brown fox jumps over the lazy dog.');
    const seconds = chunk!.pcm.length / chunk!.sampleRate;
    expect(seconds).toBeGreaterThan(1);
    expect(seconds).toBeLessThan(8);
    expect(rms(chunk!.pcm)).toBeGreaterThan(300);
  });

  it.skipIf(!installed)('turns streamed text pieces into per-sentence chunks, in order', async () => {
    const tts = make();
    const chunks = await collect(
      tts.synthesize(
        pieces(['Hel', 'lo the', 're. How ', 'are you', '? Goodbye', ' now']),
        new AbortController().signal,
      ),
    );
    expect(chunks.map((c) => c.text)).toEqual(['Hello there.', 'How are you?', 'Goodbye now']);
    for (const c of chunks) expect(rms(c.pcm)).toBeGreaterThan(300);
  });

  it.skipIf(!installed)(
    'speaks quotes, $(...), backticks and semicolons instead of running them',
    async () => {
      const marker = join(tmpdir(), `sipai-tts-injection-${process.pid}-${name}`);
      rmSync(marker, { force: true });
      const text =
        `He said "hi"; $(touch ${marker}); \`touch ${marker}\` -o ${marker} ` +
        `") (system "touch ${marker}") (" \\" done`;
      const chunks = await collect(make().synthesize(text, new AbortController().signal));
      expect(chunks.length).toBeGreaterThan(0);
      expect(rms(chunks[0]!.pcm)).toBeGreaterThan(300);
      expect(existsSync(marker)).toBe(false);
    },
  );

  it.skipIf(!installed)('yields nothing once the signal has aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    expect(await collect(make().synthesize('Never spoken.', ac.signal))).toEqual([]);
  });
});

describe('flite', () => {
  const installed = ttsAvailable('flite').ok;

  it.skipIf(!installed)('writes each voice at the rate it declares', async () => {
    for (const voice of Object.keys(FLITE_VOICES) as FliteVoice[]) {
      const tts = new FliteTts({ voice });
      const [chunk] = await collect(tts.synthesize('Hello.', new AbortController().signal));
      expect({ voice, rate: chunk!.sampleRate }).toEqual({ voice, rate: FLITE_VOICES[voice] });
      expect(tts.sampleRate).toBe(FLITE_VOICES[voice]);
    }
  });

  it.skipIf(!installed)('abort stops the stream early and kills the running flite', async () => {
    // Distinct sentences: a repeated one would come from the speech cache, with no process.
    const long = (i: number) =>
      `This is fairly long sentence ${i} of ${Date.now()}, keeping flite busy for a while, on purpose. `;
    const ac = new AbortController();
    const got: AudioChunk[] = [];
    let killed: number[] = [];
    const before = new Set(childrenNamed('flite').map((c) => c.pid));
    for await (const chunk of new FliteTts().synthesize([0, 1, 2, 3, 4, 5].map(long).join(''), ac.signal)) {
      got.push(chunk);
      // The next sentence is already being made while this one plays.
      await until(() => childrenNamed('flite').some((c) => !before.has(c.pid)));
      killed = childrenNamed('flite')
        .map((c) => c.pid)
        .filter((pid) => !before.has(pid));
      ac.abort();
    }
    expect(got).toHaveLength(1);
    expect(killed.length).toBeGreaterThan(0);
    // The stream ended only after the child was gone.
    for (const pid of killed) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it.skipIf(!installed)('a consumer that stops iterating leaves no flite running', async () => {
    const long = (i: number) =>
      `Another long sentence, number ${i} of ${Date.now()}, so that synthesis still runs when we leave. `;
    const before = new Set(childrenNamed('flite').map((c) => c.pid));
    let seen: number[] = [];
    for await (const _chunk of new FliteTts().synthesize(
      [0, 1, 2, 3].map(long).join(''),
      new AbortController().signal,
    )) {
      await until(() => childrenNamed('flite').some((c) => !before.has(c.pid)));
      seen = childrenNamed('flite')
        .map((c) => c.pid)
        .filter((pid) => !before.has(pid));
      break;
    }
    expect(seen.length).toBeGreaterThan(0);
    for (const pid of seen) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});

describe('festival', () => {
  const installed = ttsAvailable('festival').ok;

  it.skipIf(!installed)('keeps one warm process for every call and survives an aborted stream', async () => {
    const a = new FestivalTts();
    await a.warm();
    const pid = festivalPid();
    expect(pid).toBeGreaterThan(0);
    const ac = new AbortController();
    const got: AudioChunk[] = [];
    for await (const chunk of a.synthesize('First sentence here. Second sentence. Third one.', ac.signal)) {
      got.push(chunk);
      ac.abort();
    }
    expect(got).toHaveLength(1);
    const [chunk] = await collect(new FestivalTts().synthesize('Still here.', new AbortController().signal));
    expect(rms(chunk!.pcm)).toBeGreaterThan(300);
    expect(festivalPid()).toBe(pid);
  });

  it.skipIf(!installed)('restarts the process after it dies', async () => {
    const tts = new FestivalTts();
    await tts.warm();
    const pid = festivalPid()!;
    process.kill(pid, 'SIGKILL');
    await until(() => festivalPid() !== pid);
    const [chunk] = await collect(tts.synthesize('Back again.', new AbortController().signal));
    expect(rms(chunk!.pcm)).toBeGreaterThan(300);
    expect(festivalPid()).not.toBe(pid);
  });
});

describe('ttsAvailable', () => {
  it('names what is missing for an unknown engine or flite voice', () => {
    expect(ttsAvailable('nosuch')).toEqual({ ok: false, missing: 'offline text-to-speech engine nosuch' });
    if (ttsAvailable('flite').ok) {
      expect(ttsAvailable('flite', 'rms')).toEqual({ ok: true });
      expect(ttsAvailable('flite', 'nosuchvoice')).toEqual({ ok: false, missing: 'flite voice nosuchvoice' });
    } else {
      expect(ttsAvailable('flite')).toEqual({ ok: false, missing: 'flite' });
    }
  });
});

describe('spawnToFile', () => {
  it('kills a running child on abort and resolves null', async () => {
    const ac = new AbortController();
    const before = new Set(childrenNamed('sleep').map((c) => c.pid));
    // A child that would never finish on its own: only the kill ends it.
    const run = spawnToFile({ provider: 'test', argv: () => ['sleep', '1000'], signal: ac.signal });
    await until(() => childrenNamed('sleep').some((c) => !before.has(c.pid)));
    const [child] = childrenNamed('sleep').filter((c) => !before.has(c.pid));
    ac.abort();
    expect(await run).toBeNull();
    expect(existsSync(`/proc/${child!.pid}`)).toBe(false);
  });

  it('kills a child past its timeout with a retryable timeout error', async () => {
    const err = await spawnToFile({ provider: 'test', argv: () => ['sleep', '1000'], timeoutMs: 50 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'timeout', retryable: true, provider: 'test' });
  });

  it('reports a missing program, a failing one, and one that wrote nothing', async () => {
    const missing = await spawnToFile({ provider: 'test', argv: () => ['sipai-no-such-binary'] }).catch(
      (e) => e,
    );
    expect(missing).toMatchObject({ code: 'missing_dependency', retryable: false });
    const failing = await spawnToFile({ provider: 'test', argv: () => ['false'] }).catch((e) => e);
    expect(failing).toBeInstanceOf(ProviderError);
    expect(String(failing.message)).toMatch(/exited with 1/);
    const silent = await spawnToFile({ provider: 'test', argv: () => ['true'] }).catch((e) => e);
    expect(silent).toMatchObject({ code: 'bad_audio' });
  });
});

describe('parseWav', () => {
  it('reads the rate from the header and rejects what is not PCM16 mono', () => {
    const header = (rate: number, channels: number, bits: number, samples: number[]) => {
      const data = new Uint8Array(44 + samples.length * 2);
      const v = new DataView(data.buffer);
      data.set(new TextEncoder().encode('RIFF'), 0);
      v.setUint32(4, 36 + samples.length * 2, true);
      data.set(new TextEncoder().encode('WAVEfmt '), 8);
      v.setUint32(16, 16, true);
      v.setUint16(20, 1, true);
      v.setUint16(22, channels, true);
      v.setUint32(24, rate, true);
      v.setUint16(34, bits, true);
      data.set(new TextEncoder().encode('data'), 36);
      v.setUint32(40, samples.length * 2, true);
      for (const [i, s] of samples.entries()) v.setInt16(44 + 2 * i, s, true);
      return data;
    };
    const wav = parseWav(header(11025, 1, 16, [1, -2, 300]));
    expect(wav.sampleRate).toBe(11025);
    expect([...wav.pcm]).toEqual([1, -2, 300]);
    expect(() => parseWav(header(8000, 2, 16, [0, 0]))).toThrow(/unsupported/);
    expect(() => parseWav(new TextEncoder().encode('not a wav at all'))).toThrow(/not a WAV/);
  });
});
