import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderError } from '../types.ts';

/**
 * Running an offline synthesiser that writes a WAV file. Under Bun a child's stdin/stdout are
 * sockets, and tools that open `/dev/stdout` fail on them silently, so every engine writes to
 * a private temp file that is read back and deleted. Text always travels as an argument vector
 * element, never through a shell.
 */

/** Decoded audio: PCM16 mono at the rate the file's header declares. */
export interface WavPcm {
  pcm: Int16Array;
  sampleRate: number;
}

/**
 * Parses a RIFF/WAVE file holding 16-bit PCM mono (what flite, festival and espeak-ng write).
 * Walks the chunks rather than assuming a 44-byte header; the rate comes from the `fmt ` chunk.
 */
export function parseWav(bytes: Uint8Array, provider = 'wav'): WavPcm {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw new ProviderError('not a WAV file', provider, false, 'bad_audio');
  }
  let sampleRate = 0;
  let at = 12;
  while (at + 8 <= bytes.byteLength) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      const format = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const bits = view.getUint16(body + 14, true);
      if (format !== 1 || channels !== 1 || bits !== 16) {
        throw new ProviderError(
          `unsupported WAV format ${format}/${channels}ch/${bits}bit`,
          provider,
          false,
          'bad_audio',
        );
      }
      sampleRate = view.getUint32(body + 4, true);
    } else if (id === 'data') {
      if (!sampleRate) throw new ProviderError('WAV data before fmt', provider, false, 'bad_audio');
      // Some writers leave the size at 0 or too large when they cannot seek back: clamp.
      const end = Math.min(bytes.byteLength, size > 0 ? body + size : bytes.byteLength);
      const count = (end - body) >> 1;
      const pcm = new Int16Array(count);
      for (let i = 0; i < count; i++) pcm[i] = view.getInt16(body + 2 * i, true);
      return { pcm, sampleRate };
    }
    at = body + size + (size & 1);
  }
  throw new ProviderError('WAV file has no data', provider, false, 'bad_audio');
}

/** A fresh path in the temp directory for one synthesised file. */
export function tempWavPath(prefix: string): string {
  return join(tmpdir(), `sipai-${prefix}-${randomUUID()}.wav`);
}

export interface SpawnToFileOptions {
  /** The engine's name, for errors. */
  provider: string;
  /** Builds the argument vector (program first) given the file to write. */
  argv: (wavPath: string) => string[];
  /** Kills the child and resolves `null` when it aborts. */
  signal?: AbortSignal;
  /** Kills the child and throws a retryable `timeout` error past this. */
  timeoutMs?: number;
  env?: Record<string, string>;
}

/**
 * Runs one synthesis command that writes a WAV file, reads and deletes the file, and returns
 * its audio; `null` when `signal` aborted it (the child is killed, nothing is left behind).
 */
export async function spawnToFile(opts: SpawnToFileOptions): Promise<WavPcm | null> {
  if (opts.signal?.aborted) return null;
  const path = tempWavPath(opts.provider);
  const [program, ...args] = opts.argv(path);
  if (!program) throw new ProviderError('empty command', opts.provider, false);
  try {
    const outcome = await new Promise<'ok' | 'aborted'>((resolve, reject) => {
      const child = spawn(program, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
      });
      let stderr = '';
      let settled: 'aborted' | 'timeout' | null = null;
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => {
        if (stderr.length < 2000) stderr += d;
      });
      const kill = (why: 'aborted' | 'timeout') => {
        settled ??= why;
        child.kill('SIGKILL');
      };
      const onAbort = () => kill('aborted');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = opts.timeoutMs ? setTimeout(() => kill('timeout'), opts.timeoutMs) : undefined;
      const done = () => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
      };
      child.on('error', (err) => {
        done();
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new ProviderError(
            missing ? `${program} is not installed` : `${program} failed to start: ${err.message}`,
            opts.provider,
            false,
            missing ? 'missing_dependency' : 'provider_error',
          ),
        );
      });
      // `close` (not `exit`): the process is gone and its stderr is drained.
      child.on('close', (code, sig) => {
        done();
        if (settled === 'aborted') return resolve('aborted');
        if (settled === 'timeout') {
          return reject(new ProviderError(`${program} timed out`, opts.provider, true, 'timeout'));
        }
        if (code !== 0) {
          const why = stderr.trim().split('\n').slice(-3).join(' | ');
          return reject(
            new ProviderError(
              `${program} exited with ${code ?? sig}${why ? `: ${why}` : ''}`,
              opts.provider,
              false,
            ),
          );
        }
        resolve('ok');
      });
    });
    if (outcome === 'aborted') return null;
    const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      throw new ProviderError(`${program} wrote no audio`, opts.provider, false, 'bad_audio');
    });
    return parseWav(bytes, opts.provider);
  } finally {
    await rm(path, { force: true });
  }
}
