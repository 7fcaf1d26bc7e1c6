import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import type { AudioChunk, TextToSpeech } from '../types.ts';
import { ProviderError } from '../types.ts';
import { cachedSentences } from './cache.ts';
import { parseWav, tempWavPath, type WavPcm } from './spawn-to-file.ts';
import { type SynthesizeSentence, speakSentences } from './speak-sentences.ts';

/**
 * Festival with the `kal_diphone` voice (festvox-kallpc16k, 16 kHz): slower than flite but
 * the most intelligible offline voice. Loading festival takes over a second, so one warm
 * process is shared by the whole process and fed sentences one at a time.
 *
 * The warm process runs in `--pipe` mode (Scheme commands on stdin) rather than `--server`:
 * festival's server listens on every interface with no way to bind it to 127.0.0.1, and it
 * evaluates any Scheme a client sends; a pipe exposes nothing. Each sentence is written to a
 * temp WAV file, then a marker line on stdout says it is done.
 */

const READY = 'sipai-festival-ready';
const DONE = 'sipai-festival-done';

/** A Scheme string literal for `text`: quotes and backslashes escaped, control bytes removed. */
export function schemeString(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control bytes is the point
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return `"${clean.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

interface Job {
  id: number;
  text: string;
  path: string;
  signal: AbortSignal;
  resolve: (audio: WavPcm | null) => void;
  reject: (err: unknown) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** One warm `festival --pipe` process, synthesising queued sentences in order. */
class FestivalProcess {
  private child: ChildProcessWithoutNullStreams | null = null;
  private starting: Promise<void> | null = null;
  private readonly queue: Job[] = [];
  private current: Job | null = null;
  private nextId = 1;
  private stdoutTail = '';

  constructor(
    private readonly voice: string,
    private readonly timeoutMs: number,
  ) {}

  /** Starts the process (once) and waits until the voice is loaded. */
  start(): Promise<void> {
    if (this.child && !this.starting) return Promise.resolve();
    if (this.starting) return this.starting;
    this.starting = new Promise<void>((resolve, reject) => {
      const child = spawn('festival', ['--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      let ready = false;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (data: string) => {
        this.stdoutTail += data;
        let nl = this.stdoutTail.indexOf('\n');
        while (nl >= 0) {
          const line = this.stdoutTail.slice(0, nl).trim();
          this.stdoutTail = this.stdoutTail.slice(nl + 1);
          if (line === READY && !ready) {
            ready = true;
            this.starting = null;
            resolve();
            this.pump();
          } else if (line.startsWith(`${DONE} `)) {
            void this.finish(Number(line.slice(DONE.length + 1)));
          }
          nl = this.stdoutTail.indexOf('\n');
        }
      });
      child.stderr.resume();
      child.stdin.on('error', () => {});
      child.on('error', (err) => {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        this.fail(
          child,
          new ProviderError(
            missing ? 'festival is not installed' : `festival failed: ${err.message}`,
            'festival',
            !missing,
            missing ? 'missing_dependency' : 'provider_error',
          ),
        );
        if (!ready) reject(err);
      });
      child.on('exit', (code, sig) => {
        const err = new ProviderError(`festival exited with ${code ?? sig}`, 'festival', true);
        this.fail(child, err);
        if (!ready) reject(err);
      });
      // A warm process must not keep the host process alive on its own.
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr]) {
        (stream as unknown as { unref?: () => void }).unref?.();
      }
      child.stdin.write(`(voice_${this.voice})\n(format t "${READY}\\n")\n(fflush nil)\n`);
    });
    this.starting.catch(() => {});
    return this.starting;
  }

  /** Synthesises one sentence; `null` when `signal` aborts first. */
  async synthesize(text: string, signal: AbortSignal): Promise<WavPcm | null> {
    if (signal.aborted) return null;
    await this.start();
    return new Promise<WavPcm | null>((resolve, reject) => {
      const job: Job = { id: this.nextId++, text, path: tempWavPath('festival'), signal, resolve, reject };
      const onAbort = () => {
        // A queued sentence is dropped; the one being made finishes in the shared process and
        // its file is deleted when it arrives (killing would cost every call a cold start).
        const at = this.queue.indexOf(job);
        if (at >= 0) this.queue.splice(at, 1);
        resolve(null);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      job.resolve = (audio) => {
        signal.removeEventListener('abort', onAbort);
        resolve(audio);
      };
      job.reject = (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      };
      this.queue.push(job);
      this.pump();
    });
  }

  /** Sends the next queued sentence when the process is idle. */
  private pump(): void {
    if (this.current || this.starting || !this.child) return;
    const job = this.queue.shift();
    if (!job) return;
    this.current = job;
    const child = this.child;
    job.timer = setTimeout(() => {
      this.fail(child, new ProviderError('festival timed out', 'festival', true, 'timeout'));
      child.kill('SIGKILL');
    }, this.timeoutMs);
    child.stdin.write(
      `(utt.save.wave (utt.synth (Utterance Text ${schemeString(job.text)})) ${schemeString(job.path)} 'riff)\n` +
        `(format t "${DONE} ${job.id}\\n")\n(fflush nil)\n`,
    );
  }

  private async finish(id: number): Promise<void> {
    const job = this.current;
    if (!job || job.id !== id) return;
    clearTimeout(job.timer);
    this.current = null;
    this.pump();
    try {
      if (job.signal.aborted) return job.resolve(null);
      const bytes = await readFile(job.path).catch(() => null);
      if (!bytes) {
        return job.reject(new ProviderError('festival wrote no audio', 'festival', false, 'bad_audio'));
      }
      job.resolve(parseWav(bytes, 'festival'));
    } catch (err) {
      job.reject(err);
    } finally {
      await rm(job.path, { force: true });
    }
  }

  /** The process died or hung: fails its work; the next sentence starts a fresh one. */
  private fail(child: ChildProcessWithoutNullStreams, err: ProviderError): void {
    if (this.child !== child) return;
    this.child = null;
    this.starting = null;
    this.stdoutTail = '';
    const jobs = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = null;
    for (const job of jobs) {
      clearTimeout(job.timer);
      void rm(job.path, { force: true });
      job.reject(err);
    }
  }

  /** Ends the process; pending sentences fail. */
  stop(): void {
    const child = this.child;
    if (!child) return;
    this.fail(child, new ProviderError('festival stopped', 'festival', true));
    child.kill('SIGKILL');
  }

  /** The running process id, if any (for diagnostics and tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }
}

const shared = new Map<string, FestivalProcess>();

function processFor(voice: string, timeoutMs: number): FestivalProcess {
  let proc = shared.get(voice);
  if (!proc) {
    proc = new FestivalProcess(voice, timeoutMs);
    shared.set(voice, proc);
  }
  return proc;
}

/** Stops every warm festival process (process shutdown, tests). */
export function stopFestival(): void {
  for (const proc of shared.values()) proc.stop();
}

/** The pid of the warm festival process for `voice`, if one is running. */
export function festivalPid(voice = 'kal_diphone'): number | undefined {
  return shared.get(voice)?.pid;
}

export interface FestivalOptions {
  /** A festival voice name; `kal_diphone` (festvox-kallpc16k) is the one packaged here. */
  voice?: string;
  /** Longest one sentence may take before the process is restarted. */
  timeoutMs?: number;
}

/** The opt-in better offline voice: festival `kal_diphone` over a warm shared process. */
export class FestivalTts implements TextToSpeech {
  readonly name = 'festival';
  readonly sampleRate = 16000;
  private readonly proc: FestivalProcess;
  private readonly sentence: SynthesizeSentence;

  constructor(opts: FestivalOptions = {}) {
    const voice = opts.voice ?? 'kal_diphone';
    if (!/^[a-z0-9_]+$/i.test(voice)) throw new Error(`invalid festival voice ${voice}`);
    const proc = processFor(voice, opts.timeoutMs ?? 20_000);
    this.proc = proc;
    this.sentence = cachedSentences(this.name, `festival/${voice}`, (sentence, stop) =>
      proc.synthesize(sentence, stop),
    );
  }

  warm(): Promise<void> {
    return this.proc.start();
  }

  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    return speakSentences(text, signal, this.sentence);
  }
}
