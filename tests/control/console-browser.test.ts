import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumBinary } from '../support/browser.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';
import { synthesize, voicesAvailable } from '../support/voices.ts';
import type { Json } from './support.ts';

/**
 * The web console (control/console/) in headless Chromium, driven by playwright-core against
 * the platform as `npm start` runs it (local.ts in a child process). The microphone is
 * Chromium's fake capture device playing a WAV of a caller asking the demo agent a question.
 * `SCREENSHOTS=1` writes the README's screenshots to docs/.
 */

const ci = process.env.CI === 'true' || process.env.CI === '1';
const executablePath = chromiumBinary();
if (!executablePath) {
  const line =
    '!!! chromium not installed: the console browser test is SKIPPED. Install: apt-get install -y chromium';
  if (ci) throw new Error(`CI=true and ${line}`);
  console.warn(`\n${line}\n`);
}
if (!voicesAvailable.flite) {
  const line =
    '!!! flite or sox not installed: the console call test is SKIPPED. Install: apt-get install -y flite sox';
  if (ci) throw new Error(`CI=true and ${line}`);
  console.warn(`\n${line}\n`);
}

const screenshots = process.env.SCREENSHOTS === '1';
const docsDir = new URL('../../docs/', import.meta.url).pathname;

const DEMO_LINE = /demo agent\s+(agt_[0-9a-z]{26})/;
const ADMIN_KEY = /Admin API key for account \S+ \(shown once, store it now\):\n\s+(\S+)/;

/** A 16-bit PCM mono WAV file of `pcm` at `rate`. */
function wav(pcm: Int16Array, rate: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.byteLength, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.byteLength, 40);
  return Buffer.concat([header, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)]);
}

/**
 * The caller: silence while the agent greets, the question, then silence while it answers.
 * Chromium loops the file, so the question comes again every cycle.
 */
function callerWav(): Buffer {
  const rate = 16_000;
  const speech = synthesize('what are your opening hours', {
    engine: 'flite',
    voice: 'slt',
    sampleRate: rate,
  });
  const before = rate * 14;
  // Long enough that the question does not come again while the test types and keys.
  const after = rate * 45;
  const pcm = new Int16Array(before + speech.length + after);
  pcm.set(speech, before);
  return wav(pcm, rate);
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe.skipIf(!executablePath)('the web console in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-console-'));
  let app: RunningEntry;
  let base: string;
  let adminKey: string;
  let browser: Browser;
  let context: BrowserContext;
  /** Every URL any page of the context asked for, WebSockets included. */
  const requested: string[] = [];

  const apiCall = async (method: string, path: string, body?: unknown, key = adminKey) => {
    const res = await fetch(`${base}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    app = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: 'memory://', LOG_LEVEL: 'warn' });
    [, base] = (await app.waitFor(/sipai is up on (http:\/\/\S+)/, 90_000)) as [string, string];
    await app.waitFor(DEMO_LINE, 30_000);
    [, adminKey] = (await app.waitFor(ADMIN_KEY, 30_000)) as [string, string];
    const fakeMic = join(dir, 'caller.wav');
    if (voicesAvailable.flite) writeFileSync(fakeMic, callerWav());
    browser = await chromium.launch({
      executablePath: executablePath!,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        // Nothing but this machine resolves: a request elsewhere fails (and is still recorded).
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        ...(voicesAvailable.flite ? [`--use-file-for-fake-audio-capture=${fakeMic}`] : []),
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.on('request', (req) => requested.push(req.url()));
    context.on('page', (page) => page.on('websocket', (ws) => requested.push(ws.url())));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (app && app.proc.exitCode === null) await app.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page and its bundle under a strict Content-Security-Policy', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain(`connect-src 'self' ${base.replace('http:', 'ws:')}`);
    const html = await page.text();
    // No inline script: every <script> loads a file of this origin.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc="\/console\/)[^>]*>/);
    const bundle = await fetch(`${base}/console/app.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toContain('javascript');
    expect((await bundle.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${base}/console/no-such-file.js`)).status).toBe(404);
  });

  it('says clearly why a bad or a revoked key does not sign in, and signs out a key revoked mid-session', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await signIn(page, 'sk_live_not_a_key_of_this_deployment_000');
    const alert = page.locator('#sign-in [role="alert"]');
    await expect.poll(() => alert.textContent(), { timeout: 15_000 }).toContain('This key was not accepted');
    expect(await alert.textContent()).toContain('API key is invalid or revoked');
    await expect.poll(() => page.getByLabel('API key').getAttribute('aria-invalid')).toBe('true');

    // A key that worked once, revoked before it is used here.
    const created = await apiCall('POST', '/keys', { name: 'console test, revoked' });
    expect(created.status).toBe(201);
    expect((await apiCall('DELETE', `/keys/${created.body.id}`)).status).toBe(200);
    await signIn(page, created.body.secret);
    await expect
      .poll(() => alert.textContent(), { timeout: 15_000 })
      .toMatch(/This key was not accepted: API key is invalid or revoked/);

    // Signed in, then revoked: the next request signs the console out, saying why.
    const second = await apiCall('POST', '/keys', { name: 'console test, revoked later' });
    await signIn(page, second.body.secret);
    await page.getByRole('heading', { name: 'Agents' }).waitFor({ timeout: 15_000 });
    await apiCall('DELETE', `/keys/${second.body.id}`);
    await page.getByRole('link', { name: 'Calls' }).click();
    await expect
      .poll(() => alert.textContent(), { timeout: 15_000 })
      .toContain('Your API key is no longer accepted');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  }, 60_000);

  it('shows the API’s validation message next to each field it names', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/#/agents/new`);
    await signIn(page, adminKey);
    await page.getByLabel('Name', { exact: true }).fill('Bad fields');
    await page.getByLabel('Transfer to').fill('12345');
    await page.getByLabel('End of turn: silence (ms)').fill('50');
    await page.getByRole('button', { name: 'Create agent' }).click();

    // What the API itself says about the same body.
    const api = await apiCall('POST', '/agents', {
      name: 'Bad fields',
      brain: 'scripted',
      language: 'en-US',
      transferTo: '12345',
      bargeIn: true,
      endpointing: { minMs: 50, maxMs: 3000 },
      intents: [],
      tools: [],
    });
    expect(api.status).toBe(422);
    const issues = api.body.error.details as { field: string; message: string }[];
    expect(issues.map((i) => i.field).sort()).toEqual(['endpointing.minMs', 'transferTo']);
    for (const issue of issues) {
      const error = page.locator(`[data-field="${issue.field}"] .field-error`);
      await expect.poll(() => error.textContent(), { timeout: 15_000 }).toBe(issue.message);
      const control = page.locator(`[data-field="${issue.field}"] input`);
      expect(await control.getAttribute('aria-invalid')).toBe('true');
      // Screen readers hear the message with the field.
      const errorId = await error.getAttribute('id');
      expect(await control.getAttribute('aria-describedby')).toContain(errorId!);
    }
    await expect
      .poll(() => page.locator('main .notice[role="alert"]').first().textContent())
      .toContain('Not saved');
    // Nothing was created.
    const agents = await apiCall('GET', '/agents?limit=100');
    expect(agents.body.data.map((a: { name: string }) => a.name)).not.toContain('Bad fields');

    // Fixed, it saves.
    await page.getByLabel('Transfer to').fill('+14155550199');
    await page.getByLabel('End of turn: silence (ms)').fill('600');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('heading', { name: 'Agent: Bad fields' }).waitFor({ timeout: 15_000 });
    const saved = (await apiCall('GET', '/agents?limit=100')).body.data.find(
      (a: { name: string }) => a.name === 'Bad fields',
    );
    expect(saved).toMatchObject({ transferTo: '+14155550199', endpointing: { minMs: 600, maxMs: 3000 } });
    await page.close();
  }, 60_000);

  it.skipIf(!voicesAvailable.flite)(
    'talks to the demo agent: the caller’s words, the reply and its audio; then the call in Calls with its timeline',
    async () => {
      const page = await context.newPage();
      await page.goto(`${base}/#/talk`);
      await signIn(page, adminKey);
      await page.getByLabel('Agent', { exact: true }).selectOption({ label: 'Demo front desk' });
      await page.getByRole('button', { name: 'Start call' }).click();
      const talk = page.locator('#talk');

      const caller = page.locator('#talk .transcript li.user', { hasText: 'what are your opening hours' });
      await caller.first().waitFor({ timeout: 90_000 });
      const reply = page.locator('#talk .transcript li.agent[data-final="true"]', {
        hasText: 'eleven in the morning',
      });
      await reply.first().waitFor({ timeout: 60_000 });
      // The turn's latency, charted.
      await page.locator('#talk .chart .turn').first().waitFor({ timeout: 15_000 });
      // The agent's audio was played, not silent: measured at the page's AnalyserNode.
      await expect
        .poll(async () => Number(await talk.getAttribute('data-agent-peak-rms')), { timeout: 15_000 })
        .toBeGreaterThan(0.02);
      // More than two seconds of non-zero agent samples arrived.
      expect(Number(await talk.getAttribute('data-agent-samples'))).toBeGreaterThan(32_000);
      const callId = await talk.getAttribute('data-call-id');
      expect(callId).toMatch(/^web_[0-9a-f]{12}_console_/);

      // The text box and the keypad are turns too.
      await page.getByLabel('Type instead of speaking').fill('where are you located');
      await page.getByRole('button', { name: 'Send' }).click();
      await page
        .locator('#talk .transcript li.agent', { hasText: 'twelve Market Street' })
        .first()
        .waitFor({ timeout: 60_000 });
      await page.getByRole('button', { name: 'Key 3' }).click();
      await page
        .locator('#talk .transcript li.agent', { hasText: 'I can book a table for you' })
        .first()
        .waitFor({ timeout: 60_000 });
      expect(await page.locator('#talk .transcript li.user').allTextContents()).toEqual(
        expect.arrayContaining(['You:where are you located', 'You:pressed 3']),
      );
      if (screenshots) await page.screenshot({ path: join(docsDir, 'console-talk.png'), fullPage: true });

      await page.getByRole('button', { name: 'Hang up' }).click();
      await expect.poll(() => talk.getAttribute('data-state')).toBe('ended');

      // Calls: the call shows up, and finishes, without a reload.
      await page.getByRole('link', { name: 'Calls' }).click();
      const row = page.locator(`#calls-table tr[data-call-id="${callId}"]`);
      await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toBe('completed');
      expect(await row.textContent()).toContain('Demo front desk');
      if (screenshots) {
        mkdirSync(docsDir, { recursive: true });
        await page.screenshot({ path: join(docsDir, 'console-calls.png') });
      }

      // Its timeline, transcript and latency.
      await row.getByRole('link').click();
      const timeline = page.locator('#timeline');
      await timeline.locator('li[data-type="call.ended"]').waitFor({ timeout: 30_000 });
      const types = await timeline
        .locator('li')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-type')));
      expect(types[0]).toBe('call.started');
      expect(types).toContain('transcript.final');
      expect(types).toContain('turn.latency');
      expect(types).toContain('agent.said');
      expect(types.indexOf('transcript.final')).toBeLessThan(types.indexOf('turn.latency'));
      expect(types).toContain('dtmf');
      const recorded = await page.locator('main .transcript').textContent();
      expect(recorded).toContain('what are your opening hours');
      expect(recorded).toContain('where are you located');
      expect(recorded).toContain('pressed 3');
      expect(await page.locator('main .chart .turn').count()).toBeGreaterThanOrEqual(1);
      if (screenshots) await page.screenshot({ path: join(docsDir, 'console-timeline.png'), fullPage: true });
      await page.close();
    },
    240_000,
  );

  it('never asked any host but its own', () => {
    const origin = new URL(base).host;
    expect(requested.length).toBeGreaterThan(10);
    const elsewhere = requested.filter((url) => new URL(url).host !== origin);
    expect(elsewhere).toEqual([]);
    // The realtime socket was among them, same origin, with a token and never the API key.
    const sockets = requested.filter((url) => url.startsWith('ws'));
    if (voicesAvailable.flite) {
      expect(sockets).toHaveLength(1);
      expect(sockets[0]).toMatch(/\/v1\/realtime\/voice\?token=v1\./);
    }
    expect(requested.join('\n')).not.toContain(adminKey);
  });
});
