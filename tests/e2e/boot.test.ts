import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCall } from '../../scripts/call.ts';
import { createTestDatabase } from '../support/databases.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';
import { voicesAvailable } from '../support/voices.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const DEMO_LINE = /demo agent\s+(agt_[0-9a-z]{26})\s+\(answers unrouted calls and \/realtime\/voice\)/;
const ADMIN_KEY = /Admin API key for account \S+ \(shown once, store it now\):\n\s+(\S+)/;

describe('npm start (local.ts) on embedded defaults', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sipai-boot-'));
  let app: RunningEntry | undefined;
  /** From the first boot, for the restart over the same data directory. */
  let firstBoot: { demoAgentId: string; adminKey: string } | undefined;
  afterAll(async () => {
    if (app?.proc.exitCode === null) await app.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves /health, /v1/health and /metrics, answers a caller with its demo agent, and exits 0 on SIGTERM', async () => {
    const started = performance.now();
    app = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: join(dataDir, 'pg'), LOG_LEVEL: 'warn' });
    const [, base] = await app.waitFor(/sipai is up on (http:\/\/\S+)/, 60_000);
    const core = await getJson(`${base}/health`);
    const control = await getJson(`${base}/v1/health`);
    const metrics = await fetch(`${base}/metrics`);
    const bootMs = performance.now() - started;

    expect(core.status).toBe(200);
    expect(core.body).toMatchObject({
      status: 'ok',
      service: 'core',
      dependencies: { store: { ok: true, kind: 'memory' } },
    });
    expect(control.status).toBe(200);
    expect(control.body).toMatchObject({
      status: 'ok',
      service: 'control',
      dependencies: { postgres: { ok: true, kind: 'embedded' }, store: { ok: true }, migrations: 'done' },
    });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toMatch(/^process_resident_memory_bytes \d+/m);
    // Measured, not asserted (the machine may be loaded): the README quotes it.
    console.info(`npm start: up in ${Math.round(bootMs)} ms`);

    // The seeded demo agent: named in the banner, readable with the printed admin key.
    const [, demoAgentId] = await app.waitFor(DEMO_LINE, 30_000);
    const [, adminKey] = await app.waitFor(ADMIN_KEY, 30_000);
    const agent = await fetch(`${base}/v1/agents/${demoAgentId}`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(agent.status).toBe(200);
    expect(await agent.json()).toMatchObject({ id: demoAgentId, name: 'Demo front desk', brain: 'scripted' });
    firstBoot = { demoAgentId: demoAgentId!, adminKey: adminKey! };

    // A caller talks to it, as the README shows: `npm run call -- --key … "what are your opening hours"`.
    if (voicesAvailable.flite || process.env.CI === 'true') {
      const lines: string[] = [];
      const call = await runCall({
        url: base!,
        key: adminKey!,
        lines: ['what are your opening hours'],
        typed: false,
        print: (l) => lines.push(l),
      });
      expect(call.heard).toEqual(['what are your opening hours']);
      expect(call.said[1]).toContain('eleven in the morning');
      expect(call.turnMs).toHaveLength(1);
      expect(lines.some((l) => l.startsWith('agent: Hello, thanks for calling Bella Pizza'))).toBe(true);
    }

    // Exit 0 means shutdown finished within its own hard limit; how fast is measured, not asserted.
    const { code, ms } = await app.stop('SIGTERM');
    expect(code).toBe(0);
    console.info(`npm start: stopped on SIGTERM in ${Math.round(ms)} ms`);
  }, 180_000);

  it('keeps the same demo agent when restarted over the same database', async () => {
    if (!firstBoot) throw new Error('the first boot did not complete');
    app = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: join(dataDir, 'pg'), LOG_LEVEL: 'warn' });
    const [, base] = await app.waitFor(/sipai is up on (http:\/\/\S+)/, 60_000);
    const [, demoAgentId] = await app.waitFor(DEMO_LINE, 30_000);
    expect(demoAgentId).toBe(firstBoot.demoAgentId);
    expect(app.output()).not.toMatch(ADMIN_KEY);
    const list = await fetch(`${base}/v1/agents?limit=100`, {
      headers: { authorization: `Bearer ${firstBoot.adminKey}` },
    });
    const { data } = (await list.json()) as { data: { name: string }[] };
    expect(data.filter((a) => a.name === 'Demo front desk')).toHaveLength(1);
    expect((await app.stop('SIGTERM')).code).toBe(0);
  }, 120_000);

  it('exits 0 on SIGINT as Ctrl-C sends it, even when the signal arrives twice', async () => {
    const second = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: 'memory://', LOG_LEVEL: 'warn' });
    await second.waitFor(/sipai is up on/, 60_000);
    second.proc.kill('SIGINT');
    const { code, ms } = await second.stop('SIGINT');
    expect(code).toBe(0);
    console.info(`npm start: stopped on SIGINT in ${Math.round(ms)} ms`);
  }, 120_000);

  it('refuses to boot on an invalid variable, naming it', async () => {
    const bad = startEntry('local.ts', { PORT: 'abc', PGLITE_DATA_DIR: 'memory://' });
    const code = await bad.proc.exited;
    expect(code).toBe(2);
    expect(bad.output()).toContain('PORT must be a whole number, got "abc"');
  });
});

describe.skipIf(!redisUrl || !postgresUrl)('core/main.ts and control/main.ts on Redis and PostgreSQL', () => {
  it('each starts alone, reports its real dependencies, and drains on SIGTERM', async () => {
    const db = await createTestDatabase(postgresUrl!);
    // The media-token secret both planes share (core refuses to start without it).
    const secret = 'boot-test-realtime-secret-0123456789';
    const core = startEntry('core/main.ts', {
      PORT: '0',
      REDIS_URL: redisUrl!,
      LOG_LEVEL: 'info',
      REALTIME_WS_SECRET: secret,
    });
    const control = startEntry('control/main.ts', {
      PORT: '0',
      REDIS_URL: redisUrl!,
      DATABASE_URL: db.url,
      LOG_LEVEL: 'info',
      REALTIME_WS_SECRET: secret,
    });
    try {
      const [, coreUrl] = await core.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"core listening"/, 60_000);
      const [, controlUrl] = await control.waitFor(
        /"url":"(http:\/\/[^"]+)".*"msg":"control listening"/,
        15_000,
      );
      await control.waitFor(/"msg":"migrations done"/, 60_000);

      const coreHealth = await getJson(`${coreUrl}/health`);
      expect(coreHealth.body).toMatchObject({
        status: 'ok',
        dependencies: { store: { ok: true, kind: 'redis' } },
      });
      const controlHealth = await getJson(`${controlUrl}/v1/health`);
      expect(controlHealth.status).toBe(200);
      expect(controlHealth.body).toMatchObject({
        dependencies: { postgres: { ok: true, kind: 'postgres' }, store: { ok: true, kind: 'redis' } },
      });
      expect((await fetch(`${controlUrl}/metrics`)).status).toBe(200);

      expect((await core.stop()).code).toBe(0);
      expect((await control.stop()).code).toBe(0);
    } finally {
      if (core.proc.exitCode === null) core.proc.kill('SIGKILL');
      if (control.proc.exitCode === null) control.proc.kill('SIGKILL');
      await db.drop();
    }
  }, 40_000);
});
