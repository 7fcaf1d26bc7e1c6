import { randomUUID } from 'node:crypto';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Core } from '../../../core/app.ts';
import { parseConfig } from '../../../core/config/index.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, RedisStore } from '../../../core/store/index.ts';
import { StoreUnavailableError } from '../../../core/store/redis-store.ts';
import { signJambonz } from '../../../core/telephony/signatures/jambonz.ts';
import { eventually } from '../../control/support.ts';
import { startTcpProxy, type TcpProxy } from '../../control/tcp-proxy.ts';

const redisUrl = inject('redisUrl');

const PUBLIC = 'https://voice.example.com';
const TWILIO_TOKEN = 'outage-twilio-auth-token-0123456789';
const JAMBONZ_SECRET = 'outage-jambonz-webhook-secret';
const WS_SECRET = 'outage-test-ws-secret-0123456789abc';
const NUMBER = '+15005550006';

/**
 * Behaviour bound, not a speed target: an answer during an outage must come back well inside a
 * provider's webhook timeout (Twilio waits 15 s) so it can fail over, not after it.
 */
const PROMPT_MS = 1_500;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

/**
 * A relay that can go silent: `freeze()` keeps every connection open but forwards nothing more
 * either way, as a network partition does (no RST, no FIN), so only timeouts can notice it.
 */
async function startFreezableProxy(targetUrl: string) {
  const target = new URL(targetUrl);
  let frozen = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.on('data', (d) => {
      if (!frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!frozen) client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    freeze() {
      frozen = true;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!redisUrl)('a Redis outage under core', () => {
  let proxy: TcpProxy;
  let store: RedisStore;
  let core: Core;
  let http: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    proxy = await startTcpProxy(redisUrl!);
    store = await RedisStore.connect(proxy.url, { prefix: `t:${randomUUID()}:` });
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: PUBLIC,
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
      LOG_LEVEL: 'silent',
    });
    const log = createLogger({
      level: (process.env.TEST_LOG_LEVEL as 'silent') ?? 'silent',
      service: 'test',
    });
    core = new Core({ config, store, log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    base = http.url;
    await store.set(keys.numberRoute(NUMBER), JSON.stringify({ agentId: 'echo', accountId: 'acc_1' }));
  });

  afterAll(async () => {
    await core?.drain(0);
    await http?.stop(0);
    await proxy?.restore();
    await store?.close();
    await proxy?.stop();
  });

  const health = () => fetch(`${base}/health`);

  function postTwilio(path: string, params: Record<string, string>): Promise<Response> {
    const signature = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${PUBLIC}${path}`, params);
    return fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
      body: new URLSearchParams(params).toString(),
    });
  }

  function postJambonz(path: string, body: unknown): Promise<Response> {
    const text = JSON.stringify(body);
    return fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'jambonz-signature': signJambonz(JAMBONZ_SECRET, text, Math.floor(Date.now() / 1000)),
      },
      body: text,
    });
  }

  const twilioCall = (callSid: string, extra: Record<string, string> = {}) => ({
    CallSid: callSid,
    AccountSid: 'AC123',
    From: '+14155550100',
    To: NUMBER,
    CallStatus: 'ringing',
    Direction: 'inbound',
    ...extra,
  });

  const statusEvents = async (callId: string) =>
    (await store.range(keys.events)).filter(
      (e) => e.fields.type === 'call.status' && e.fields.callId === callId,
    );

  it('answers health from its last probe, refuses new calls politely and keeps status callbacks', async () => {
    expect((await health()).status).toBe(200);
    // A call admitted before the outage: it holds a slot until its final status arrives.
    const live = `CA${randomUUID().replaceAll('-', '')}`;
    const admitted = await postTwilio('/telephony/twilio/voice', twilioCall(live));
    expect(await admitted.text()).toContain('<Connect>');
    expect(await store.leaseCount('global')).toBe(1);

    await proxy.cut();
    const cutAt = performance.now();

    // Health: 503 once the probe has seen the outage; no answer ever waits on Redis.
    const down = await eventually(
      async () => {
        const { value, ms } = await timed(health);
        expect(ms).toBeLessThan(PROMPT_MS);
        return value.status === 503 ? value : undefined;
      },
      10_000,
      'health 503',
    );
    const body = await down.json();
    expect(body).toMatchObject({ status: 'degraded', dependencies: { store: { ok: false, kind: 'redis' } } });
    const noticedMs = performance.now() - cutAt;
    const again = await timed(health);
    expect(again.value.status).toBe(503);
    expect(again.ms).toBeLessThan(PROMPT_MS);
    // Liveness (what the load balancer checks) stays up: tasks carrying live calls are not replaced.
    expect((await fetch(`${base}/health/live`)).status).toBe(200);

    // New calls: each provider's polite refusal, fast, so the provider can fail over.
    const refusedTwilio = await timed(() =>
      postTwilio('/telephony/twilio/voice', twilioCall(`CA${randomUUID().replaceAll('-', '')}`)),
    );
    expect(refusedTwilio.value.status).toBe(200);
    expect(await refusedTwilio.value.text()).toContain('<Reject reason="busy"/>');
    expect(refusedTwilio.ms).toBeLessThan(PROMPT_MS);

    const refusedJambonz = await timed(() =>
      postJambonz('/telephony/jambonz/call', {
        call_sid: randomUUID(),
        direction: 'inbound',
        from: '+14155550100',
        to: NUMBER,
      }),
    );
    expect(refusedJambonz.value.status).toBe(200);
    expect(await refusedJambonz.value.json()).toEqual([
      { verb: 'sip:decline', status: 503, reason: 'Service Unavailable' },
    ]);
    expect(refusedJambonz.ms).toBeLessThan(PROMPT_MS);

    // The live call's final status: acknowledged now, reported once Redis is back.
    const ack = await timed(() =>
      postTwilio('/telephony/twilio/status', twilioCall(live, { CallStatus: 'completed' })),
    );
    expect(ack.value.status).toBe(204);
    expect(ack.ms).toBeLessThan(PROMPT_MS);

    const restoredAt = Date.now();
    await proxy.restore();
    const events = await eventually(
      async () => {
        const found = await statusEvents(live);
        return found.length > 0 ? found : undefined;
      },
      15_000,
      'buffered call.status event',
    );
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.fields.data!)).toMatchObject({ status: 'completed', providerCallId: live });
    // Reported as it happened: stamped when the provider told us, not when Redis came back.
    expect(Date.parse(events[0]!.fields.at!)).toBeLessThanOrEqual(restoredAt);
    // The final status did all it would have done: the call's slot is free again.
    await eventually(async () => (await store.leaseCount('global')) === 0, 10_000, 'slot released');
    await eventually(async () => (await health()).status === 200, 10_000, 'health 200');
    // A retry of the same status changes nothing.
    await postTwilio('/telephony/twilio/status', twilioCall(live, { CallStatus: 'completed' }));
    expect(await statusEvents(live)).toHaveLength(1);
    console.info(
      `redis outage: health noticed it after ${Math.round(noticedMs)} ms; health answered in ${Math.round(again.ms)} ms; twilio refusal ${Math.round(refusedTwilio.ms)} ms; jambonz refusal ${Math.round(refusedJambonz.ms)} ms; status ack ${Math.round(ack.ms)} ms`,
    );
  }, 60_000);
});

describe.skipIf(!redisUrl)('a Redis that stops answering', () => {
  it('does not fail a reply that came while the event loop was busy past the timeout', async () => {
    const store = await RedisStore.connect(redisUrl!, {
      prefix: `t:${randomUUID()}:`,
      commandTimeoutMs: 100,
    });
    try {
      await store.set('k', 'v');
      const outcomes: unknown[] = [];
      for (let i = 0; i < 10; i++) {
        const reply = store.get('k').then(
          (v) => v,
          (err: unknown) => err,
        );
        // The process is busy (a loaded machine, a long synchronous task) for longer than the
        // command timeout; Redis answered long ago, the reply waits unread in the socket.
        const busyUntil = performance.now() + 250;
        while (performance.now() < busyUntil) {}
        outcomes.push(await reply);
      }
      expect(outcomes.map((o) => (o instanceof Error ? o.message : o))).toEqual(Array(10).fill('v'));
    } finally {
      await store.close();
    }
  });

  it('fails every Store call within its command timeout and refuses calls promptly', async () => {
    const relay = await startFreezableProxy(redisUrl!);
    const store = await RedisStore.connect(relay.url, {
      prefix: `t:${randomUUID()}:`,
      commandTimeoutMs: 300,
    });
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: PUBLIC,
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      LOG_LEVEL: 'silent',
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    const core = new Core({ config, store, log });
    const http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    try {
      await store.set(keys.numberRoute(NUMBER), JSON.stringify({ agentId: 'echo', accountId: 'acc_1' }));
      expect((await fetch(`${http.url}/health`)).status).toBe(200);
      relay.freeze();
      const failed = await timed(() =>
        store.get('anything').then(
          () => null,
          (err: unknown) => err,
        ),
      );
      expect(failed.value).toBeInstanceOf(StoreUnavailableError);
      expect(failed.ms).toBeLessThan(PROMPT_MS);
      // Before the probe notices, a call webhook still ends in the refusal, within the bound.
      const params = twilioCall(`CA${randomUUID().replaceAll('-', '')}`);
      const signature = twilio.getExpectedTwilioSignature(
        TWILIO_TOKEN,
        `${PUBLIC}/telephony/twilio/voice`,
        params,
      );
      const refused = await timed(() =>
        fetch(`${http.url}/telephony/twilio/voice`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
          body: new URLSearchParams(params).toString(),
        }),
      );
      expect(await refused.value.text()).toContain('<Reject reason="busy"/>');
      expect(refused.ms).toBeLessThan(PROMPT_MS);
      console.info(
        `redis that stops answering: a Store call failed after ${Math.round(failed.ms)} ms (timeout 300 ms); twilio refusal ${Math.round(refused.ms)} ms`,
      );
      await eventually(
        async () => {
          const res = await timed(() => fetch(`${http.url}/health`));
          expect(res.ms).toBeLessThan(PROMPT_MS);
          return res.value.status === 503;
        },
        10_000,
        'health 503',
      );
    } finally {
      await core.drain(0);
      await http.stop(0);
      await relay.stop();
      await store.close();
    }
  }, 30_000);

  function twilioCall(callSid: string) {
    return { CallSid: callSid, AccountSid: 'AC123', From: '+14155550100', To: NUMBER, CallStatus: 'ringing' };
  }
});
