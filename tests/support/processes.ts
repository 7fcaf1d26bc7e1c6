import { type Subprocess, spawn } from 'bun';

/** A sipai entry point running as a child process, with its output captured. */
export interface RunningEntry {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `re` in the output, or rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Sends the signal and resolves with the exit code and how long exiting took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
}

const root = new URL('../../', import.meta.url).pathname;

/** Starts `bun run <entry>` from the repository root with `env` laid over a minimal environment. */
export function startEntry(entry: string, env: Record<string, string>): RunningEntry {
  const proc = spawn([process.execPath, 'run', entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  let out = '';
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  return {
    proc,
    output: () => out,
    async waitFor(re, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`${entry} exited with ${proc.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} from ${entry}:\n${out}`);
        await Bun.sleep(50);
      }
    },
    async stop(signal = 'SIGTERM') {
      const started = performance.now();
      proc.kill(signal);
      const code = await proc.exited;
      return { code, ms: performance.now() - started };
    },
  };
}
