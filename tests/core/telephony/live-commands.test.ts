import { randomUUID } from 'node:crypto';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../../core/app.ts';
import { parseConfig } from '../../../core/config/index.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, MemoryStore, type Unsubscribe } from '../../../core/store/index.ts';
import { twilioClient } from '../../support/media-clients.ts';

const PUBLIC = 'https://voice.example.com';
const TWILIO_TOKEN = 'twilio-auth-token-live-commands-0123';
const WS_SECRET = 'live-commands-test-ws-secret-0123456789';

/**
 * A Store whose subscriptions hang until the test lets them through (a slow Redis), or fail
 * (a Store outage), so the window between a session starting and its command channel being
 * subscribed can be held open.
 */
class GatedStore extends MemoryStore {
  subscribeCalls = 0;
  private gate = Promise.withResolvers<void>();
  private failing = false;

  open(): void {
    this.gate.resolve();
  }

  hold(): void {
    this.failing = false;
    this.gate = Promise.withResolvers<void>();
  }

  fail(): void {
    this.failing = true;
    this.gate.resolve();
  }

  override async subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    this.subscribeCalls++;
    await this.gate.promise;
    if (this.failing) throw new Error('store unavailable');
    return super.subscribe(channel, onMessage);
  }
}

/** Polls until `check` holds; a generous bound only turns a hang into a failure. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not reached`);
    await Bun.sleep(5);
  }
}

describe('live call commands', () => {
  const store = new GatedStore();
  let core: Core;
  let http: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: PUBLIC,
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      LOG_LEVEL: 'silent',
    });
    core = new Core({ config, store, log: createLogger({ level: 'silent', service: 'test' }) });
    http = startHttpServer({
      port: 0,
      hostname: '127.0.0.1',
      plane: core,
      log: createLogger({ level: 'silent', service: 'test' }),
    });
    base = http.url;
    await store.set(
      keys.numberRoute('+15005550006'),
      JSON.stringify({ agentId: 'echo', accountId: 'acc_1' }),
    );
  });
  afterAll(async () => {
    store.open();
    await core.drain(0);
    await http.stop(0);
    await store.close();
  });

  async function startCall() {
    const callSid = `CA${randomUUID().replaceAll('-', '')}`;
    const params = {
      CallSid: callSid,
      AccountSid: 'AC123',
      From: '+14155550100',
      To: '+15005550006',
      CallStatus: 'ringing',
      Direction: 'inbound',
    };
    const path = '/telephony/twilio/voice';
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${PUBLIC}${path}`, params),
      },
      body: new URLSearchParams(params).toString(),
    });
    const token = /name="token" value="([^"]+)"/.exec(await res.text())![1]!;
    const client = await twilioClient({ baseWsUrl: base.replace('http', 'ws'), callId: callSid, token });
    client.start();
    return { callSid, client };
  }

  const timelineTypes = async (callSid: string) =>
    (await store.range(keys.callTimeline(callSid))).map((e) => e.fields.type);

  it('does not list or announce a session before its command channel is subscribed', async () => {
    store.hold();
    const asked = store.subscribeCalls;
    const { callSid, client } = await startCall();
    await until(() => store.subscribeCalls > asked, 'subscription requested');
    // The window a slow Store holds open: nobody may see the call as live yet.
    expect(core.media.sessions.has(callSid)).toBe(false);
    expect(await timelineTypes(callSid)).not.toContain('call.started');

    store.open();
    await until(() => core.media.sessions.has(callSid), 'session listed');
    // Listed means reachable: the first command lands, with no wait in between.
    expect(
      await store.publish(keys.callCommands(callSid), JSON.stringify({ type: 'hangup', reason: 'operator' })),
    ).toBe(1);
    expect((await client.closed).code).toBe(1000);
    const types = await timelineTypes(callSid);
    expect(types[0]).toBe('call.started');
    expect(types.slice(-2)).toEqual(['command', 'call.ended']);
    await until(
      async () => (await store.publish(keys.callCommands(callSid), JSON.stringify({ type: 'hangup' }))) === 0,
      'channel unsubscribed after the call',
    );
  });

  it('still runs the call when the Store cannot subscribe, without live commands', async () => {
    store.hold();
    const { callSid, client } = await startCall();
    store.fail();
    await until(() => core.media.sessions.has(callSid), 'session listed');
    expect(await store.publish(keys.callCommands(callSid), JSON.stringify({ type: 'hangup' }))).toBe(0);
    expect(core.media.sessions.has(callSid)).toBe(true);
    client.stop();
    await client.closed;
    await until(() => !core.media.sessions.has(callSid), 'session ended');
    await until(async () => (await store.leaseCount('global')) === 0, 'leases released');
  });

  it('ends a session whose socket closed while it was being set up, and frees its slots', async () => {
    store.hold();
    const asked = store.subscribeCalls;
    const { callSid, client } = await startCall();
    await until(() => store.subscribeCalls > asked, 'subscription requested');
    client.ws.close();
    await client.closed;
    store.open();
    await until(async () => (await timelineTypes(callSid)).includes('call.ended'), 'call ended');
    const timeline = await store.range(keys.callTimeline(callSid));
    expect(timeline.map((e) => e.fields.type)).toEqual(['call.ended']);
    expect(JSON.parse(timeline[0]!.fields.data!)).toMatchObject({ reason: 'socket_closed' });
    expect(core.media.sessions.has(callSid)).toBe(false);
    await until(async () => (await store.leaseCount('global')) === 0, 'leases released');
    await until(
      async () => (await store.publish(keys.callCommands(callSid), JSON.stringify({ type: 'hangup' }))) === 0,
      'channel unsubscribed',
    );
  });
});
