import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { PROVIDER_WEBHOOKS } from '../../core/telephony/webhooks/paths.ts';
import { voicesAvailable } from '../support/voices.ts';

/**
 * README's "Your first call", run as written: the section's shell commands are taken from its
 * fenced `sh` blocks and run in bash from the repository root. The first block starts the
 * platform (`npm start`) and keeps running; each later block runs to its end with what a reader
 * has by then in their environment: the admin key the start printed (`SIPAI_API_KEY`), and the
 * URL (`SIPAI_URL`, since the test asks for a free port rather than 3000).
 */

const root = join(import.meta.dirname, '..', '..');

/** The section of README.md under `## <title>`, up to the next `## `. */
function section(title: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The commands of each fenced `sh` block, in order (blank lines and comments dropped). */
function shellBlocks(text: string): string[][] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
}

interface Shell {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  output(): string;
  exited: Promise<number | null>;
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

/** Runs `command` in bash from the repository root, in its own process group, output captured. */
function shell(command: string, env: Record<string, string>): Shell {
  const proc = spawn('bash', ['-c', command], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  proc.stderr.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    async waitFor(re, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`"${command}" exited with ${proc.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} from "${command}":\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

const text = section('Your first call');
const blocks = shellBlocks(text);
const speech = voicesAvailable.flite || process.env.CI === 'true';
if (!speech)
  console.warn('first-call: flite is not installed; the spoken call is skipped (CI=true fails instead)');

describe('README\'s "Your first call", run as written', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sipai-first-call-'));
  let server: Shell | undefined;
  afterAll(async () => {
    // A test that failed midway leaves the group running: end all of it.
    if (server?.proc.pid) {
      try {
        process.kill(-server.proc.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('has a start block and a call block, and names every provider webhook core serves', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks[0]).toEqual(['npm start']);
    expect(
      blocks
        .slice(1)
        .flat()
        .some((c) => c.startsWith('npm run call')),
    ).toBe(true);
    const documented = [...text.matchAll(/<PUBLIC_BASE_URL>(\/telephony\/[a-z/]+)/g)].map((m) => m[1]).sort();
    expect(documented).toEqual(PROVIDER_WEBHOOKS.map((h) => h.path).sort());
  });

  it('starts, says what it is doing, prints the webhook URLs, serves the console, and the demo agent answers', async () => {
    const started = performance.now();
    // What the reader's shell has: a free port instead of 3000, a private data directory.
    server = shell(blocks[0].join('\n'), {
      PORT: '0',
      PGLITE_DATA_DIR: join(dataDir, 'pglite'),
      LOG_LEVEL: 'warn',
    });
    const [, base] = await server.waitFor(/sipai is up on (http:\/\/\S+)/, 90_000);
    const [, key] = await server.waitFor(
      /Admin API key for account \S+ \(shown once, store it now\):\n\s+(\S+)/,
      30_000,
    );
    console.info(`first-call: npm start up in ${Math.round(performance.now() - started)} ms`);

    // The embedded database's first start is announced before the wait, not after.
    const out = server.output();
    const announced = out.indexOf(
      `initialising the embedded database in ${join(dataDir, 'pglite')}, first start takes a few seconds`,
    );
    expect(announced, out).toBeGreaterThanOrEqual(0);
    expect(announced).toBeLessThan(out.indexOf('sipai is up on'));

    // The banner's webhook URLs are core's routes: unsigned, each is refused, never missing.
    for (const hook of PROVIDER_WEBHOOKS) {
      const url = `${base}${hook.path}`;
      expect(out, url).toContain(url);
      const res = await fetch(url, {
        method: hook.method,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'CallSid=CAfirstcall',
      });
      expect(res.status, url).not.toBe(404);
      expect(res.status, url).toBeGreaterThanOrEqual(400);
      expect(res.status, url).toBeLessThan(500);
    }

    // "Open the console at the printed URL."
    const consolePage = await fetch(`${base}/`);
    expect(consolePage.status).toBe(200);
    expect(consolePage.headers.get('content-type')).toContain('text/html');

    // The later blocks, each to its end, with the key and the URL in the environment.
    for (const block of blocks.slice(1)) {
      if (block.some((c) => c.startsWith('npm run call')) && !speech) continue;
      const run = shell(block.join('\n'), { SIPAI_API_KEY: key, SIPAI_URL: base });
      const code = await run.exited;
      expect(code, run.output()).toBe(0);
      const said = run.output();
      // What the README shows it printing: the greeting, what the agent heard, its answer.
      const greeting = /^agent: (Hello, thanks for calling Bella Pizza[^…]*)…/m.exec(text)?.[1];
      expect(greeting).toBeDefined();
      expect(said).toContain(`agent: ${greeting}`);
      expect(said).toContain('(agent heard: "what are your opening hours")');
      expect(said).toMatch(/\(end of your speech → agent audio: \d+ ms\)/);
      expect(said).toContain('agent: We are open every day from eleven in the morning until ten at night');
    }

    // Ctrl-C: SIGINT to the terminal's process group (npm, its shell, bun). npm exits on the
    // signal itself; the server drains and exits, leaving nothing of the group running.
    const group = -(server.proc.pid as number);
    process.kill(group, 'SIGINT');
    await server.exited;
    const alive = () => {
      try {
        process.kill(group, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (const deadline = Date.now() + 30_000; alive() && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(alive(), 'a process of npm start outlived Ctrl-C').toBe(false);
    expect(server.output()).not.toMatch(/"level":"(error|fatal)"/);
  }, 240_000);
});
