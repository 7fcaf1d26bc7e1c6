import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_AGENT_FIELDS,
  badAgentIssues,
  type ConsolePlatform,
  elsewhere,
  expectAgentAudioPlayed,
  expectFieldErrors,
  expectUnknownKeyRefused,
  firefoxBinary,
  launchFirefox,
  openCallFromCalls,
  recordRequests,
  signIn,
  skippedLoudly,
  startConsolePlatform,
} from '../support/browser.ts';
import { voicesAvailable } from '../support/voices.ts';

/**
 * The web console (control/console/) in headless Firefox (Debian's firefox-esr, driven over
 * WebDriver BiDi by playwright-core), at a desktop and a phone width, against the platform as
 * `npm start` runs it. Firefox's fake microphone plays a tone, not speech, so the caller's side
 * of the call is typed here; tests/control/console-browser.test.ts has the spoken question.
 */

const executablePath = firefoxBinary();
if (!executablePath) {
  skippedLoudly(
    '!!! firefox-esr not installed: the console Firefox test is SKIPPED. Install: apt-get install -y firefox-esr',
  );
}
if (!voicesAvailable.flite) {
  skippedLoudly(
    '!!! flite or sox not installed: the console Firefox call test is SKIPPED. Install: apt-get install -y flite sox',
  );
}

const WIDTHS = [
  { name: 'desktop', viewport: { width: 1280, height: 900 } },
  { name: 'phone', viewport: { width: 390, height: 844 } },
];

/** The page scrolls down only: nothing is wider than the window (wide tables scroll in their box). */
async function expectFitsWidth(page: Page): Promise<void> {
  const [scrollWidth, innerWidth] = await page.evaluate(() => [
    document.documentElement.scrollWidth,
    window.innerWidth,
  ]);
  expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
}

describe.skipIf(!executablePath)('the web console in headless Firefox', () => {
  let platform: ConsolePlatform;
  let browser: Browser;
  /** Every URL any page asked for, WebSockets included, at every width. */
  const requested: string[] = [];
  let calls = 0;

  beforeAll(async () => {
    platform = await startConsolePlatform();
    browser = await launchFirefox(executablePath!);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await platform?.stop();
  });

  describe.each(WIDTHS)('at $name width ($viewport.width px)', ({ name, viewport }) => {
    let context: BrowserContext;
    let page: Page;
    /** Uncaught errors and CSP violations the page reported. */
    const pageErrors: string[] = [];

    beforeAll(async () => {
      context = await browser.newContext({ viewport });
      recordRequests(context, requested);
      page = await context.newPage();
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(`${platform.base}/`);
      // The width is the page's, not only the window's.
      expect(await page.evaluate(() => window.innerWidth)).toBe(viewport.width);
    }, 60_000);

    afterAll(async () => {
      await context?.close();
    });

    it('refuses an unknown key with a clear message, then signs in and lists the agents', async () => {
      await expectUnknownKeyRefused(page);
      await signIn(page, platform.adminKey);
      await page.getByRole('heading', { name: 'Agents' }).waitFor({ timeout: 15_000 });
      const demo = page.locator('main table tr', { hasText: 'Demo front desk' });
      await demo.waitFor({ timeout: 15_000 });
      expect(await demo.textContent()).toContain('ready');
      expect(await demo.getByRole('link', { name: 'Talk to Demo front desk' }).isVisible()).toBe(true);
      await expectFitsWidth(page);
    }, 60_000);

    it('shows the API’s validation message next to each field it names, and saves once fixed', async () => {
      const agentName = `Firefox ${name}`;
      await page.getByRole('link', { name: 'New agent' }).click();
      await page.getByLabel('Name', { exact: true }).fill(agentName);
      for (const [label, value] of Object.entries(BAD_AGENT_FIELDS)) await page.getByLabel(label).fill(value);
      await page.getByRole('button', { name: 'Create agent' }).click();
      await expectFieldErrors(page, await badAgentIssues(platform, agentName));
      await expectFitsWidth(page);

      await page.getByLabel('Transfer to').fill('+14155550199');
      await page.getByLabel('End of turn: silence (ms)').fill('600');
      await page.getByRole('button', { name: 'Create agent' }).click();
      await page.getByRole('heading', { name: `Agent: ${agentName}` }).waitFor({ timeout: 15_000 });
      const saved = (await platform.api('GET', '/agents?limit=100')).body.data.find(
        (a: { name: string }) => a.name === agentName,
      );
      expect(saved).toMatchObject({ transferTo: '+14155550199', endpointing: { minMs: 600, maxMs: 3000 } });
    }, 60_000);

    it.skipIf(!voicesAvailable.flite)(
      'talks to the demo agent: its greeting, heard; a typed question and the reply; then Calls and the timeline',
      async () => {
        await page.getByRole('link', { name: 'Talk', exact: true }).click();
        await page.getByLabel('Agent', { exact: true }).selectOption({ label: 'Demo front desk' });
        await page.getByRole('button', { name: 'Start call' }).click();
        const talk = page.locator('#talk');
        await expect.poll(() => talk.getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
        calls++;

        const greeting = page.locator('#talk .transcript li.agent[data-final="true"]', {
          hasText: 'thanks for calling Bella Pizza',
        });
        await greeting.first().waitFor({ timeout: 60_000 });
        await expectFitsWidth(page);
        await expectAgentAudioPlayed(talk);
        // The fake microphone's frames went out on the socket.
        await expect.poll(async () => Number(await talk.getAttribute('data-mic-frames'))).toBeGreaterThan(0);
        const callId = await talk.getAttribute('data-call-id');
        expect(callId).toMatch(/^web_[0-9a-f]{12}_console_/);

        await page.getByLabel('Type instead of speaking').fill('what are your opening hours');
        await page.getByRole('button', { name: 'Send' }).click();
        await page
          .locator('#talk .transcript li.agent', { hasText: 'eleven in the morning' })
          .first()
          .waitFor({ timeout: 60_000 });
        expect(await page.locator('#talk .transcript li.user').allTextContents()).toContain(
          'You:what are your opening hours',
        );

        await page.getByRole('button', { name: 'Hang up' }).click();
        await expect.poll(() => talk.getAttribute('data-state')).toBe('ended');

        const types = await openCallFromCalls(page, callId!);
        expect(types).toContain('call.ended');
        const recorded = await page.locator('main .transcript').textContent();
        expect(recorded).toContain('thanks for calling Bella Pizza');
        expect(recorded).toContain('what are your opening hours');
        expect(recorded).toContain('eleven in the morning');
        await expectFitsWidth(page);
      },
      180_000,
    );

    it('threw no error and broke no rule of the Content-Security-Policy', () => {
      expect(pageErrors).toEqual([]);
    });
  });

  it.skipIf(!voicesAvailable.flite)(
    'on a machine with no sound output device, says so and goes on with the call in text',
    async () => {
      const silent = await launchFirefox(executablePath!, { soundOutput: 'none' });
      try {
        const context = await silent.newContext({ viewport: WIDTHS[0].viewport });
        recordRequests(context, requested);
        const page = await context.newPage();
        await page.goto(`${platform.base}/#/talk`);
        await signIn(page, platform.adminKey);
        await page.getByLabel('Agent', { exact: true }).selectOption({ label: 'Demo front desk' });
        await page.getByRole('button', { name: 'Start call' }).click();
        const talk = page.locator('#talk');
        await expect.poll(() => talk.getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
        calls++;
        expect(await page.locator('#talk [role="status"]').textContent()).toContain(
          'This browser’s audio did not start (is there a sound output device?)',
        );
        await page
          .locator('#talk .transcript li.agent', { hasText: 'thanks for calling Bella Pizza' })
          .first()
          .waitFor({ timeout: 60_000 });
        await page.getByLabel('Type instead of speaking').fill('where are you located');
        await page.getByRole('button', { name: 'Send' }).click();
        await page
          .locator('#talk .transcript li.agent', { hasText: 'twelve Market Street' })
          .first()
          .waitFor({ timeout: 60_000 });
        // Nothing played.
        expect(await talk.getAttribute('data-agent-peak-rms')).toBeNull();
        await page.getByRole('button', { name: 'Hang up' }).click();
        await expect.poll(() => talk.getAttribute('data-state')).toBe('ended');
      } finally {
        await silent.close();
      }
    },
    120_000,
  );

  it('never asked any host but its own', () => {
    expect(requested.length).toBeGreaterThan(10 * WIDTHS.length);
    expect(elsewhere(requested, platform.base)).toEqual([]);
    // The realtime socket was among them, same origin, with a token and never the API key
    // (Firefox reports its handshake as the http:// request it starts as).
    const sockets = requested.filter((url) => new URL(url).pathname === '/v1/realtime/voice');
    expect(sockets).toHaveLength(calls);
    for (const socket of sockets) expect(socket).toMatch(/\/v1\/realtime\/voice\?token=v1\./);
    expect(requested.join('\n')).not.toContain(platform.adminKey);
  });
});
