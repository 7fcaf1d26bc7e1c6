/**
 * The Dockerfile rules that matter, checked without a Docker engine (none here, and Debian
 * ships no hadolint): official Bun base pinned to package.json's Bun, multi-stage with
 * production dependencies only, a non-root user, a HEALTHCHECK on the service's health path,
 * no remote ADD, exec-form CMD, and a .dockerignore that keeps the context to what is copied.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, keywords upper-cased. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!buffer && (line === '' || line.startsWith('#'))) return;
    if (buffer && line.startsWith('#')) return;
    if (!buffer) start = i + 1;
    if (line.endsWith('\\')) {
      buffer += `${line.slice(0, -1)} `;
      return;
    }
    buffer += line;
    const [keyword = '', ...rest] = buffer.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: start });
    buffer = '';
  });
  return out;
}

/** Splits instructions into build stages at each FROM. */
function stages(instructions: Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') result.push([ins]);
    else result[result.length - 1]?.push(ins);
  }
  return result;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
const bunVersion = pkg.dependencies.bun?.replace(/^[\^~]/, '') ?? '';

const images = [
  { service: 'core', file: 'core/Dockerfile', port: '8081', health: '/health/live', entry: 'core/main.ts' },
  {
    service: 'control',
    file: 'control/Dockerfile',
    port: '8080',
    health: '/v1/health',
    entry: 'control/main.ts',
  },
];

describe.each(images)('$file', ({ file, port, health, entry }) => {
  const instructions = parseDockerfile(readFileSync(path.join(ROOT, file), 'utf8'));
  const all = stages(instructions);
  const final = all[all.length - 1] ?? [];
  const of = (stage: Instruction[], keyword: string) => stage.filter((i) => i.keyword === keyword);

  it('builds in stages and the final stage takes its dependencies from an earlier one', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    const fromOther = of(final, 'COPY').filter((c) => /--from=\S+/.test(c.args));
    expect(fromOther.map((c) => c.args)).toContainEqual(expect.stringContaining('node_modules'));
  });

  it(`pins every base image, the runtime to the official oven/bun ${bunVersion}`, () => {
    for (const stage of all) {
      const image = stage[0]?.args.split(/\s+/)[0] ?? '';
      expect(image, `line ${stage[0]?.line}`).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/);
      expect(image).not.toMatch(/:latest$/);
    }
    const runtime = final[0]?.args.split(/\s+/)[0] ?? '';
    expect(runtime.startsWith(`oven/bun:${bunVersion}`), runtime).toBe(true);
  });

  it('installs production dependencies only, from the lockfile', () => {
    const installs = instructions.filter(
      (i) => i.keyword === 'RUN' && /\b(bun install|npm ci)\b/.test(i.args),
    );
    expect(installs.length).toBeGreaterThan(0);
    for (const i of installs) {
      expect(i.args).toMatch(/--production|--omit=dev/);
      expect(i.args).toMatch(/--frozen-lockfile|npm ci/);
    }
    expect(of(final, 'RUN').some((i) => /\b(bun|npm) (install|ci)\b/.test(i.args))).toBe(false);
  });

  it('runs as a non-root user', () => {
    const users = of(final, 'USER').map((u) => u.args.trim());
    expect(users.length).toBeGreaterThan(0);
    const last = users[users.length - 1] ?? '';
    expect(['root', '0', '0:0', 'root:root']).not.toContain(last);
    const userLine = final.findIndex((i) => i.keyword === 'USER');
    const cmdLine = final.findIndex((i) => i.keyword === 'CMD');
    expect(userLine).toBeLessThan(cmdLine);
  });

  it(`checks its own health on ${health}`, () => {
    const checks = of(final, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    expect(checks[0]?.args).toContain(health);
    expect(checks[0]?.args).toMatch(/--interval=\d+s/);
    expect(checks[0]?.args).toMatch(/--timeout=\d+s/);
    expect(checks[0]?.args).not.toMatch(/^NONE\b/);
  });

  it(`listens on ${port} and starts ${entry} in exec form`, () => {
    expect(of(final, 'EXPOSE').map((e) => e.args)).toEqual([port]);
    const cmd = of(final, 'CMD');
    expect(cmd).toHaveLength(1);
    const argv = JSON.parse(cmd[0]?.args ?? '') as string[];
    expect(argv[0]).toBe('bun');
    expect(argv).toContain(entry);
    expect(existsSync(path.join(ROOT, entry))).toBe(true);
  });

  it('fetches nothing remote with ADD and copies only what .dockerignore lets in', () => {
    for (const add of instructions.filter((i) => i.keyword === 'ADD')) {
      expect(add.args, `ADD on line ${add.line}`).not.toMatch(/https?:\/\//);
    }
    const allowed = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))) {
      const parts = copy.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        expect(allowed, `COPY ${source} (line ${copy.line})`).toContain(source.replace(/\/$/, ''));
        expect(existsSync(path.join(ROOT, source)), source).toBe(true);
      }
    }
  });
});

describe('.dockerignore', () => {
  const lines = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('starts from nothing and lets in only the files the images copy', () => {
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!'));
    for (const a of allowed) expect(a).not.toMatch(/node_modules|\.git|\.sst|\.sipai|tests/);
  });

  it('names .sst on its own line, so SST does not append it on every deploy', () => {
    expect(lines).toContain('.sst');
  });
});

describe('parseDockerfile', () => {
  it('joins continuation lines and skips comments', () => {
    const parsed = parseDockerfile('# c\nFROM a:1 AS b\nRUN x \\\n  # inner\n  && y\nUSER bun\n');
    expect(parsed).toEqual([
      { keyword: 'FROM', args: 'a:1 AS b', line: 2 },
      { keyword: 'RUN', args: 'x && y', line: 3 },
      { keyword: 'USER', args: 'bun', line: 6 },
    ]);
  });
});
