import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumBinary } from '../support/browser.ts';
import { type MediaClient, nativeClient, startedCallId } from '../support/media-clients.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';
import type { Json } from './support.ts';

/**
 * The console's Calls pages follow live calls over the API's call streams (server-sent events
 * read with `fetch()`), in headless Chromium against the platform as `npm start` runs it: a
 * call made while a page is open appears, changes and ends on it with no reload and not one
 * request more than the stream itself.
 */

const ci = process.env.CI === 'true' || process.env.CI === '1';
const executablePath = chromiumBinary();
if (!executablePath) {
  const line =
    '!!! chromium not installed: the console live calls test is SKIPPED. Install: apt-get install -y chromium';
  if (ci) throw new Error(`CI=true and ${line}`);
  console.warn(`\n${line}\n`);
}

const ADMIN_KEY = /Admin API key for account \S+ \(shown once, store it now\):\n\s+(\S+)/;

describe.skipIf(!executablePath)('live calls in the console, in headless Chromium', () => {
  let app: RunningEntry;
  let base: string;
  let adminKey: string;
  let agentId: string;
  let browser: Browser;

  const apiCall = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    app = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: 'memory://', LOG_LEVEL: 'warn' });
    [, base] = (await app.waitFor(/sipai is up on (http:\/\/\S+)/, 90_000)) as [string, string];
    [, adminKey] = (await app.waitFor(ADMIN_KEY, 30_000)) as [string, string];
    // An agent that needs no voice installed: it plays the caller's audio back.
    const agent = await apiCall('POST', '/agents', { name: 'Echo line', brain: 'echo' });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    agentId = agent.body.id;
    browser = await chromium.launch({
      executablePath: executablePath!,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (app && app.proc.exitCode === null) await app.stop('SIGTERM');
  });

  /** A browser-protocol call to the echo agent, made outside the page (as another user would). */
  const call = async (): Promise<{ client: MediaClient; id: string }> => {
    const callId = `live-${crypto.randomUUID()}`;
    const token = await apiCall('POST', '/realtime/tokens', { agentId, callId });
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const client = await nativeClient({
      baseWsUrl: `${base.replace('http', 'ws')}/v1`,
      callId,
      agentId,
      token: token.body.token,
    });
    client.start();
    return { client, id: await startedCallId(client, callId) };
  };

  /** A signed-in page at `hash`, and every API request it makes from then on. */
  const open = async (hash: string): Promise<{ page: Page; requests: string[]; problems: string[] }> => {
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.startsWith('/v1/')) requests.push(`${req.method()} ${url.pathname}${url.search}`);
    });
    // A CSP refusal or a script error shows up here.
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(`${base}/${hash}`);
    await page.getByLabel('API key').fill(adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    return { page, requests, problems };
  };

  /** Reloads replace the document: a mark set on it now is gone after one. */
  const markDocument = (page: Page) =>
    page.evaluate(() => {
      (window as unknown as { liveMark: number }).liveMark = 1;
    });
  const stillMarked = (page: Page) =>
    page.evaluate(() => (window as unknown as { liveMark?: number }).liveMark === 1);

  it('lists a call made while Calls is open, then shows it ended: no reload, no polling', async () => {
    const { page, requests, problems } = await open('#/calls');
    await page.getByRole('heading', { name: 'Calls' }).waitFor({ timeout: 15_000 });
    // Open once the stream is, and the list loaded after it.
    await expect
      .poll(() => requests.filter((r) => r === 'GET /v1/calls/events').length, { timeout: 15_000 })
      .toBe(1);
    await expect
      .poll(() => requests.some((r) => r.startsWith('GET /v1/calls?')), { timeout: 15_000 })
      .toBe(true);
    await page.locator('#calls-table tbody tr').first().waitFor({ timeout: 15_000 });
    await markDocument(page);
    const before = requests.length;

    const { client, id } = await call();
    const row = page.locator(`#calls-table tr[data-call-id="${id}"]`);
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('in-progress');
    expect(await row.textContent()).toContain('Echo line');
    expect(await page.locator('#calls-table tr').nth(1).getAttribute('data-call-id')).toBe(id);
    client.stop();
    await client.closed;
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('completed');
    expect(await row.textContent()).toContain('stream_stopped');

    expect(await stillMarked(page)).toBe(true);
    // Everything came over the one stream already open.
    expect(requests.slice(before)).toEqual([]);
    expect(problems).toEqual([]);
    // The key never went into a URL.
    expect(requests.join('\n')).not.toContain(adminKey);
    await page.close();
  }, 60_000);

  it('reconnects a dropped stream and lists again, so a call it missed is there', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.startsWith('/v1/calls')) requests.push(`${url.pathname}${url.search}`);
    });
    // The first stream ends at once, as a cut connection does; the next waits for the test.
    let attempts = 0;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/v1/calls/events', async (route) => {
      attempts++;
      if (attempts === 1) {
        await route.fulfill({ status: 200, contentType: 'text/event-stream', body: ': cut\n\n' });
        return;
      }
      await held;
      await route.continue();
    });
    await page.goto(`${base}/#/calls`);
    await page.getByLabel('API key').fill(adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const notice = page.locator('main .notice[role="alert"]');
    await expect.poll(() => notice.textContent(), { timeout: 15_000 }).toContain('Live updates paused');
    await expect.poll(() => attempts, { timeout: 15_000 }).toBe(2);
    await markDocument(page);

    // Made and ended while no stream is open.
    const { client, id } = await call();
    client.stop();
    await expect
      .poll(async () => (await apiCall('GET', `/calls/${id}`)).body.status, { timeout: 15_000 })
      .toBe('completed');
    const row = page.locator(`#calls-table tr[data-call-id="${id}"]`);
    expect(await row.count()).toBe(0);

    release();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('completed');
    await expect.poll(() => notice.textContent()).toBe('');
    expect(await stillMarked(page)).toBe(true);
    // Two streams, and the list loaded once after each opened: no polling in between.
    expect(requests.filter((r) => r === '/v1/calls/events')).toHaveLength(2);
    expect(requests.filter((r) => r.startsWith('/v1/calls?'))).toHaveLength(2);
    await page.close();
  }, 60_000);

  it('follows a live call’s page: its words as they are said, then its end', async () => {
    const { client, id } = await call();
    await expect
      .poll(async () => (await apiCall('GET', `/calls/${id}`)).status, { timeout: 15_000 })
      .toBe(200);
    const { page, requests, problems } = await open(`#/calls/${encodeURIComponent(id)}`);
    const timeline = page.locator('#timeline');
    await timeline.locator('li[data-type="call.started"]').waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('main').getAttribute('data-call-status')).toBe('in-progress');
    await markDocument(page);
    const before = requests.length;

    client.ws.send(JSON.stringify({ t: 'text', text: 'is anyone there' }));
    await timeline.locator('li[data-type="user.text"]').waitFor({ timeout: 15_000 });
    await expect
      .poll(() => page.locator('main .transcript li.user').allTextContents(), { timeout: 15_000 })
      .toEqual(['Caller:is anyone there']);
    expect(await timeline.locator('li[data-type="call.ended"]').count()).toBe(0);

    client.stop();
    await timeline.locator('li[data-type="call.ended"]').waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('main').getAttribute('data-call-status')).toBe('completed');
    // The page shows the timeline the API recorded, in its order.
    const recorded = await apiCall('GET', `/calls/${id}`);
    const shown = await timeline
      .locator('li')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-type')));
    expect(shown).toEqual(recorded.body.timeline.map((e: Json) => e.type));

    expect(await stillMarked(page)).toBe(true);
    expect(requests.slice(before)).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
