/**
 * Bundles `sst.config.ts` with SST's platform the way the SST CLI does (esbuild, SST's shim
 * injected, `@pulumi/*` left to resolve from `.sst/platform/node_modules`), runs it under
 * Pulumi's mocks in a Node.js child process (`sst-harness.ts`), and returns what it registered.
 * Runs `sst install` first when `.sst/platform` is missing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CapturedResource, HarnessResult } from './sst-harness.ts';

export type { CapturedResource, HarnessResult };

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
const PLATFORM = path.join(REPO_ROOT, '.sst', 'platform');

/** The values the harness gives `sst.Secret`s (SST reads `SST_SECRET_<Name>`). */
export function fakeSecretValue(name: string): string {
  return `test-${name}-value-0123456789`;
}

export interface RunOptions {
  stage: string;
  secrets: readonly string[];
  domainRoot: string;
  /** Replaces sst.config.ts with this file (the break-one-rule checks use a patched copy). */
  configFile?: string;
}

/** `sst install --stage ci` offline, as `npm run check:sst` does; a no-op when already installed. */
export function ensureSstInstalled(): void {
  if (existsSync(path.join(PLATFORM, 'src', 'shim', 'run.js'))) return;
  execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'sst'), ['install', '--stage', 'ci'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      SST_TELEMETRY_DISABLED: '1',
      SST_SKIP_DEPENDENCY_CHECK: '1',
      SST_BUN_PATH: path.join(REPO_ROOT, 'node_modules', '.bin', 'bun'),
    },
    stdio: 'pipe',
  });
}

/**
 * A real Node.js binary. Under `bun --bun`, `node` on PATH is Bun itself; Pulumi's dynamic
 * providers serialize closures through V8's inspector, so the program runs where SST runs it.
 */
export function findNode(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    if (!existsSync(candidate)) continue;
    if (path.basename(realpathSync(candidate)).startsWith('bun')) continue;
    try {
      const out = execFileSync(candidate, ['-p', 'typeof Bun === "undefined" && process.release.name'], {
        encoding: 'utf8',
      });
      if (out.trim() === 'node') return candidate;
    } catch {}
  }
  throw new Error('no Node.js binary on PATH (SST runs its program on Node.js)');
}

/**
 * The config's `app({ stage })`, as the CLI evaluates it before the program: SST's `$config`
 * is the identity function (`.sst/platform/src/config.ts`).
 */
export async function evaluateApp(configFile: string, stage: string): Promise<Record<string, unknown>> {
  const globals = globalThis as Record<string, unknown>;
  globals.$config ??= (config: unknown) => config;
  const mod = (await import(configFile)) as {
    default: { app(input: { stage: string }): Promise<Record<string, unknown>> };
  };
  return mod.default.app({ stage });
}

export async function runSstConfig(opts: RunOptions): Promise<HarnessResult> {
  ensureSstInstalled();
  const platformRequire = createRequire(path.join(PLATFORM, 'package.json'));
  const esbuild = platformRequire('esbuild') as {
    build(options: Record<string, unknown>): Promise<unknown>;
  };
  const tag = `${opts.stage}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const bundle = path.join(PLATFORM, `sipai-harness-${tag}.mjs`);
  const work = await mkdtemp(path.join(tmpdir(), 'sipai-harness-'));
  const resultFile = path.join(work, 'result.json');
  const configFile = opts.configFile ?? path.join(REPO_ROOT, 'sst.config.ts');
  const p = (file: string) => JSON.stringify(path.join(PLATFORM, 'src', file));
  const app = await evaluateApp(configFile, opts.stage);
  // What the SST CLI defines when it bundles the program (`$app`, `$cli`, `$dev`).
  const define = {
    $app: JSON.stringify({
      name: app.name,
      stage: opts.stage,
      removal: app.removal ?? 'retain',
      protect: app.protect ?? false,
      providers: app.providers ?? {},
    }),
    $cli: JSON.stringify({
      command: 'deploy',
      rpc: '',
      paths: { home: work, root: REPO_ROOT, work, platform: PLATFORM },
      home: 'aws',
      state: { version: {} },
    }),
    $dev: 'false',
  };

  const entry = [
    `import * as pulumi from '@pulumi/pulumi';`,
    `import { waitForRPCs } from '@pulumi/pulumi/runtime/settings.js';`,
    `import * as aws from '@pulumi/aws';`,
    `import { build } from 'esbuild';`,
    `import * as sst from ${p('components/index.ts')};`,
    `import { run } from ${p('auto/run.ts')};`,
    `import config from ${JSON.stringify(configFile)};`,
    `import { runHarness } from ${JSON.stringify(path.join(import.meta.dirname, 'sst-harness.ts'))};`,
    `await runHarness({ pulumi, waitForRPCs, aws, sst, run, config, build });`,
    `process.exit(0);`,
  ].join('\n');

  try {
    await esbuild.build({
      stdin: { contents: entry, resolveDir: PLATFORM, loader: 'ts', sourcefile: 'harness-entry.ts' },
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'esnext',
      packages: 'external',
      inject: [path.join(PLATFORM, 'src', 'shim', 'run.js')],
      define,
      banner: {
        js: `import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);`,
      },
      logLevel: 'silent',
    });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      SIPAI_DOMAIN: opts.domainRoot,
      SIPAI_HARNESS_STAGE: opts.stage,
      SIPAI_HARNESS_ROOT: REPO_ROOT,
      SIPAI_HARNESS_PLATFORM: PLATFORM,
      SIPAI_HARNESS_RESULT: resultFile,
      SIPAI_HARNESS_APP: JSON.stringify(app),
      PULUMI_CONFIG: JSON.stringify({ 'aws:region': 'us-east-1' }),
    };
    for (const name of opts.secrets) env[`SST_SECRET_${name}`] = fakeSecretValue(name);
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(findNode(), [bundle], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => {
        output += d;
      });
      child.stderr.on('data', (d) => {
        output += d;
      });
      child.on('close', (c) => resolve({ code: c, output }));
    });
    if (code !== 0 || !existsSync(resultFile)) {
      throw new Error(`the mocked SST run exited ${code}:\n${output.slice(-4000)}`);
    }
    return JSON.parse(readFileSync(resultFile, 'utf8')) as HarnessResult;
  } finally {
    rmSync(bundle, { force: true });
    rmSync(work, { recursive: true, force: true });
  }
}
