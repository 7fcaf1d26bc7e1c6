import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_AGENT_FIELDS,
  badAgentIssues,
  type ConsolePlatform,
  chromiumBinary,
  elsewhere,
  expectAgentAudioPlayed,
  expectFieldErrors,
  expectUnknownKeyRefused,
  openCallFromCalls,
  recordRequests,
  signIn,
  skippedLoudly,
  startConsolePlatform,
} from '../support/browser.ts';
import { synthesize, voicesAvailable } from '../support/voices.ts';

/**
 * The web console (control/console/) in headless Chromium, driven by playwright-core against
 * the platform as `npm start` runs it (local.ts in a child process). The microphone is
 * Chromium's fake capture device playing a WAV of a caller asking the demo agent a question.
 * `SCREENSHOTS=1` writes the README's screenshots to docs/.
 */

const executablePath = chromiumBinary();
if (!executablePath) {
  skippedLoudly(
    '!!! chromium not installed: the console browser test is SKIPPED. Install: apt-get install -y chromium',
  );
}
if (!voicesAvailable.flite) {
  skippedLoudly(
    '!!! flite or sox not installed: the console call test is SKIPPED. Install: apt-get install -y flite sox',
  );
}

const screenshots = process.env.SCREENSHOTS === '1';
const docsDir = new URL('../../docs/', import.meta.url).pathname;

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

describe.skipIf(!executablePath)('the web console in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-console-'));
  let platform: ConsolePlatform;
  let base: string;
  let adminKey: string;
  let browser: Browser;
  let context: BrowserContext;
  /** Every URL any page of the context asked for, WebSockets included. */
  let requested: string[] = [];

  beforeAll(async () => {
    platform = await startConsolePlatform();
    ({ base, adminKey } = platform);
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
    requested = recordRequests(context);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await platform?.stop();
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
    const alert = await expectUnknownKeyRefused(page);

    // A key that worked once, revoked before it is used here.
    const created = await platform.api('POST', '/keys', { name: 'console test, revoked' });
    expect(created.status).toBe(201);
    expect((await platform.api('DELETE', `/keys/${created.body.id}`)).status).toBe(200);
    await signIn(page, created.body.secret);
    await expect
      .poll(() => alert.textContent(), { timeout: 15_000 })
      .toMatch(/This key was not accepted: API key is invalid or revoked/);

    // Signed in, then revoked: the next request signs the console out, saying why.
    const second = await platform.api('POST', '/keys', { name: 'console test, revoked later' });
    await signIn(page, second.body.secret);
    await page.getByRole('heading', { name: 'Agents' }).waitFor({ timeout: 15_000 });
    await platform.api('DELETE', `/keys/${second.body.id}`);
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
    for (const [label, value] of Object.entries(BAD_AGENT_FIELDS)) await page.getByLabel(label).fill(value);
    await page.getByRole('button', { name: 'Create agent' }).click();
    // What the API itself says about the same body, next to each field.
    await expectFieldErrors(page, await badAgentIssues(platform, 'Bad fields'));
    // Nothing was created.
    const agents = await platform.api('GET', '/agents?limit=100');
    expect(agents.body.data.map((a: { name: string }) => a.name)).not.toContain('Bad fields');

    // Fixed, it saves.
    await page.getByLabel('Transfer to').fill('+14155550199');
    await page.getByLabel('End of turn: silence (ms)').fill('600');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('heading', { name: 'Agent: Bad fields' }).waitFor({ timeout: 15_000 });
    const saved = (await platform.api('GET', '/agents?limit=100')).body.data.find(
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
      await expectAgentAudioPlayed(talk);
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

      // Calls: the call shows up, and finishes, without a reload; then its timeline, transcript
      // and latency.
      const types = await openCallFromCalls(page, callId!, async () => {
        if (!screenshots) return;
        mkdirSync(docsDir, { recursive: true });
        await page.screenshot({ path: join(docsDir, 'console-calls.png') });
      });
      expect(types).toContain('transcript.final');
      expect(types).toContain('turn.latency');
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
    expect(requested.length).toBeGreaterThan(10);
    expect(elsewhere(requested, base)).toEqual([]);
    // The realtime socket was among them, same origin, with a token and never the API key.
    const sockets = requested.filter((url) => url.startsWith('ws'));
    if (voicesAvailable.flite) {
      expect(sockets).toHaveLength(1);
      expect(sockets[0]).toMatch(/\/v1\/realtime\/voice\?token=v1\./);
    }
    expect(requested.join('\n')).not.toContain(adminKey);
  });
});
