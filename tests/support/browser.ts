import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, firefox, type Locator, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { Json } from '../control/support.ts';
import { type RunningEntry, startEntry } from './processes.ts';

/**
 * The browsers the console and Swagger UI tests drive (Debian's packages, found on PATH; nothing
 * is downloaded), the platform they drive them against, and the checks the Chromium and the
 * Firefox console tests share.
 */

const ci = process.env.CI === 'true' || process.env.CI === '1';

/** The first of `names` on PATH, or null. */
function onPath(names: string[]): string | null {
  for (const name of names) {
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return null;
}

/** Debian's `chromium`, or another Chromium/Chrome on PATH; null when none is installed. */
export function chromiumBinary(): string | null {
  return onPath(['chromium', 'chromium-browser', 'google-chrome']);
}

/** Debian's `firefox-esr`, or a Firefox on PATH; null when none is installed. */
export function firefoxBinary(): string | null {
  return onPath(['firefox-esr', 'firefox']);
}

/** A suite that cannot run here: one loud line, or a failure under `CI=true`. */
export function skippedLoudly(line: string): void {
  if (ci) throw new Error(`CI=true and ${line}`);
  console.warn(`\n${line}\n`);
}

/**
 * Firefox's preferences for the console tests: a fake microphone (a tone) granted without a
 * prompt, and every host but this machine behind a proxy that refuses connections, so a request
 * elsewhere fails (and is still recorded).
 */
const FIREFOX_PREFS: Record<string, string | number | boolean> = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'network.proxy.type': 1,
  'network.proxy.http': '127.0.0.1',
  'network.proxy.http_port': 9,
  'network.proxy.ssl': '127.0.0.1',
  'network.proxy.ssl_port': 9,
  'network.proxy.socks_remote_dns': true,
  'network.proxy.no_proxies_on': 'localhost, 127.0.0.1',
};

type BidiSend = (method: string, params: unknown) => Promise<unknown>;

/**
 * Headless Firefox over WebDriver BiDi (playwright-core's `moz-firefox` channel, which drives a
 * stock Firefox such as Debian's firefox-esr). playwright-core opens every BiDi context by
 * overriding `prefers-color-scheme` with `emulation.setMediaFeaturesOverride`, a command
 * Firefox ESR does not implement yet ("unknown command"), so `newContext` would fail: that one
 * command is taken as done. No test here emulates a colour scheme.
 */
export async function launchFirefox(
  executablePath: string,
  { soundOutput }: { soundOutput: 'mock' | 'none' } = { soundOutput: 'mock' },
): Promise<Browser> {
  const browser = await firefox.launch({
    channel: 'moz-firefox',
    executablePath,
    headless: true,
    firefoxUserPrefs: {
      ...FIREFOX_PREFS,
      // Firefox's mock sound device, whatever this machine has (Chromium's headless output is
      // fake too); or none at all, as on a machine without a sound card.
      [soundOutput === 'mock' ? 'media.cubeb.force_mock_context' : 'media.cubeb.force_null_context']: true,
    },
  });
  // The in-process server's browser object, which holds the BiDi session.
  const server = (
    browser as unknown as {
      _connection?: { toImpl?: (o: unknown) => { _browserSession?: { send: BidiSend } } };
    }
  )._connection?.toImpl?.(browser);
  const session = server?._browserSession;
  if (!session) {
    await browser.close();
    throw new Error('playwright-core no longer exposes its BiDi session: update launchFirefox');
  }
  const send = session.send.bind(session);
  session.send = async (method, params) => {
    try {
      return await send(method, params);
    } catch (err) {
      if (method === 'emulation.setMediaFeaturesOverride' && /unknown command/.test(String(err))) return {};
      throw err;
    }
  };
  return browser;
}

const DEMO_LINE = /demo agent\s+(agt_[0-9a-z]{26})/;
const ADMIN_KEY = /Admin API key for account \S+ \(shown once, store it now\):\n\s+(\S+)/;

/** The platform as `npm start` runs it (local.ts in a child process), for a browser to drive. */
export interface ConsolePlatform {
  app: RunningEntry;
  /** `http://localhost:<port>`. */
  base: string;
  /** The admin key the first start printed. */
  adminKey: string;
  /** One API request, with the admin key unless `key` says otherwise. */
  api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: Json }>;
  stop(): Promise<void>;
}

export async function startConsolePlatform(): Promise<ConsolePlatform> {
  const app = startEntry('local.ts', { PORT: '0', PGLITE_DATA_DIR: 'memory://', LOG_LEVEL: 'warn' });
  const [, base] = (await app.waitFor(/sipai is up on (http:\/\/\S+)/, 90_000)) as [string, string];
  await app.waitFor(DEMO_LINE, 30_000);
  const [, adminKey] = (await app.waitFor(ADMIN_KEY, 30_000)) as [string, string];
  return {
    app,
    base,
    adminKey,
    async api(method, path, body, key = adminKey) {
      const res = await fetch(`${base}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Json };
    },
    async stop() {
      if (app.proc.exitCode === null) await app.stop('SIGTERM');
    },
  };
}

/** Every URL any page of `context` asks for, WebSockets included, added to `requested`. */
export function recordRequests(context: BrowserContext, requested: string[] = []): string[] {
  context.on('request', (req) => requested.push(req.url()));
  context.on('page', (page) => page.on('websocket', (ws) => requested.push(ws.url())));
  return requested;
}

/** The URLs among `requested` on any host but `base`'s. */
export function elsewhere(requested: string[], base: string): string[] {
  const origin = new URL(base).host;
  return requested.filter((url) => new URL(url).host !== origin);
}

export async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** A key of no account: the sign-in form says why, and marks the field. Returns its alert. */
export async function expectUnknownKeyRefused(page: Page): Promise<Locator> {
  await signIn(page, 'sk_live_not_a_key_of_this_deployment_000');
  const alert = page.locator('#sign-in [role="alert"]');
  await expect.poll(() => alert.textContent(), { timeout: 15_000 }).toContain('This key was not accepted');
  expect(await alert.textContent()).toContain('API key is invalid or revoked');
  await expect.poll(() => page.getByLabel('API key').getAttribute('aria-invalid')).toBe('true');
  return alert;
}

/** The agent form's fields that `POST /v1/agents` rejects below, as the console labels them. */
export const BAD_AGENT_FIELDS = { 'Transfer to': '12345', 'End of turn: silence (ms)': '50' };

/**
 * What the API says about the agent `BAD_AGENT_FIELDS` describes (422, one issue per field):
 * the messages the form must show.
 */
export async function badAgentIssues(platform: ConsolePlatform, name: string) {
  const api = await platform.api('POST', '/agents', {
    name,
    brain: 'scripted',
    language: 'en-US',
    transferTo: BAD_AGENT_FIELDS['Transfer to'],
    bargeIn: true,
    endpointing: { minMs: Number(BAD_AGENT_FIELDS['End of turn: silence (ms)']), maxMs: 3000 },
    intents: [],
    tools: [],
  });
  expect(api.status).toBe(422);
  const issues = api.body.error.details as { field: string; message: string }[];
  expect(issues.map((i) => i.field).sort()).toEqual(['endpointing.minMs', 'transferTo']);
  return issues;
}

/** Each issue's message next to its field, the control marked invalid and described by it. */
export async function expectFieldErrors(page: Page, issues: { field: string; message: string }[]) {
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
}

/**
 * The agent's audio was played, not silent: the loudest level the Talk page's AnalyserNode
 * measured, and more than two seconds of non-zero agent samples received.
 */
export async function expectAgentAudioPlayed(talk: Locator): Promise<void> {
  await expect
    .poll(async () => Number(await talk.getAttribute('data-agent-peak-rms')), { timeout: 15_000 })
    .toBeGreaterThan(0.02);
  expect(Number(await talk.getAttribute('data-agent-samples'))).toBeGreaterThan(32_000);
}

/**
 * From the Talk page after a call: Calls lists `callId` as completed (without a reload), then
 * (after `listed`, if given) its page shows the timeline to `call.ended`. Returns the timeline's
 * event types, in order.
 */
export async function openCallFromCalls(
  page: Page,
  callId: string,
  listed?: () => Promise<unknown>,
): Promise<(string | null)[]> {
  await page.getByRole('link', { name: 'Calls' }).click();
  const row = page.locator(`#calls-table tr[data-call-id="${callId}"]`);
  await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toBe('completed');
  expect(await row.textContent()).toContain('Demo front desk');
  await listed?.();
  await row.getByRole('link').click();
  const timeline = page.locator('#timeline');
  await timeline.locator('li[data-type="call.ended"]').waitFor({ timeout: 30_000 });
  const types = await timeline
    .locator('li')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-type')));
  expect(types[0]).toBe('call.started');
  expect(types).toContain('agent.said');
  return types;
}
