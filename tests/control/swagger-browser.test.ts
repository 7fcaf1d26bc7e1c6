import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { chromiumBinary } from '../support/browser.ts';
import { type Backing, embedded, type Json, makeControl } from './support.ts';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const chromium = chromiumBinary();
if (!chromium) {
  const line =
    '!!! chromium not installed: the Swagger UI browser test is SKIPPED. Install: apt-get install -y chromium';
  if (ci) throw new Error(`CI=true and ${line}`);
  console.warn(`\n${line}\n`);
}

/**
 * Runs headless Chromium once against `url`, with every host but loopback unresolvable (the
 * network closed, as far as the page can tell). Returns what it printed on stdout and stderr.
 */
async function runChromium(args: string[], url: string): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'sipai-chromium-'));
  try {
    const proc = Bun.spawn(
      [
        chromium!,
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--enable-logging=stderr',
        '--v=0',
        '--virtual-time-budget=15000',
        ...args,
        url,
      ],
      { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' },
    );
    const timer = setTimeout(() => proc.kill('SIGKILL'), 45_000);
    const [stdout, stderr] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    await proc.exited;
    clearTimeout(timer);
    return { stdout, stderr };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

describe.skipIf(!chromium)('Swagger UI in headless Chromium', () => {
  let backing: Backing;
  let control: Control;
  let server: ReturnType<typeof Bun.serve>;
  let base: string;
  const outDir = mkdtempSync(join(tmpdir(), 'sipai-swagger-'));

  beforeAll(async () => {
    backing = await embedded();
    control = makeControl(backing);
    await control.start();
    server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (req) => control.fetch(req) });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterAll(async () => {
    await server?.stop(true);
    await control?.close();
    await backing?.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('renders every operation of the OpenAPI document, with no CSP violation', async () => {
    const spec: Json = await (await fetch(`${base}/v1/openapi.json`)).json();
    const { stdout: dom, stderr } = await runChromium(['--dump-dom'], `${base}/v1/swagger`);
    let operations = 0;
    for (const [path, item] of Object.entries(spec.paths as Record<string, Json>)) {
      for (const [method, op] of Object.entries(item as Record<string, Json>)) {
        // Swagger UI gives each operation block the id operations-<tag>-<operationId>.
        expect(dom, `${method.toUpperCase()} ${path}`).toContain(
          `id="operations-${op.tags[0]}-${op.operationId}"`,
        );
        operations++;
      }
    }
    expect(operations).toBeGreaterThanOrEqual(32);
    expect(dom).toContain('sipai control API');
    expect(stderr).not.toMatch(/Content Security Policy|Refused to/);
  }, 60_000);

  it('expands an operation with its example and resolves every schema', async () => {
    // Deep link: Swagger UI opens POST /v1/agents, resolving its request and response schemas.
    const { stdout: dom } = await runChromium(['--dump-dom'], `${base}/v1/swagger#/agents/postV1Agents`);
    expect(dom).toContain('Only <code>name</code> is required');
    expect(dom).toContain('Bella Pizza');
    expect(dom).not.toContain('Resolver error');
  }, 60_000);

  it('takes a full-page screenshot', async () => {
    const file = join(outDir, 'swagger.png');
    await runChromium([`--screenshot=${file}`, '--window-size=1280,2000'], `${base}/v1/swagger`);
    const png = readFileSync(file);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: width and height, big-endian, at bytes 16-23.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 2000]);
    // A blank 1280×2000 page compresses to a few KB; the rendered docs do not.
    expect(png.length).toBeGreaterThan(50_000);
  }, 60_000);
});
