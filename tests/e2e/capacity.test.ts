import { randomUUID } from 'node:crypto';
import twilio from 'twilio';
import { describe, expect, inject, it } from 'vitest';
import { keys, RedisStore } from '../../core/store/index.ts';
import { type MediaClient, twilioClient } from '../support/media-clients.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';

const redisUrl = inject('redisUrl');
const PUBLIC = 'https://voice.example.com';
const TWILIO_TOKEN = 'capacity-e2e-twilio-token';
const CORE_KEY = 'capacity-e2e-core-key';
const TTL_SEC = 6;

interface Node {
  entry: RunningEntry;
  url: string;
}

async function startCore(prefix: string): Promise<Node> {
  const entry = startEntry('core/main.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl!,
    STORE_PREFIX: prefix,
    PUBLIC_BASE_URL: PUBLIC,
    REALTIME_WS_SECRET: 'capacity-e2e-ws-secret-0123456789',
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    TELEPHONY_GLOBAL_MAX_CONCURRENCY: '100',
    TELEPHONY_SEMAPHORE_TTL_SEC: String(TTL_SEC),
    SESSION_IDLE_TIMEOUT_SEC: '120',
    DEFAULT_AGENT_ID: 'echo',
    CORE_API_KEY: CORE_KEY,
    LOG_LEVEL: 'info',
  });
  const [, url] = await entry.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"core listening"/, 15_000);
  return { entry, url: url! };
}

function voiceWebhook(node: Node, callSid: string, query = ''): Promise<Response> {
  const path = `/telephony/twilio/voice${query}`;
  const params = { CallSid: callSid, From: '+14155550100', To: '+15005550006', CallStatus: 'ringing' };
  return fetch(`${node.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${PUBLIC}${path}`, params),
    },
    body: new URLSearchParams(params).toString(),
  });
}

async function statusCallback(node: Node, callSid: string): Promise<number> {
  const params = { CallSid: callSid, CallStatus: 'completed' };
  const res = await fetch(`${node.url}/telephony/twilio/status`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilio.getExpectedTwilioSignature(
        TWILIO_TOKEN,
        `${PUBLIC}/telephony/twilio/status`,
        params,
      ),
    },
    body: new URLSearchParams(params).toString(),
  });
  return res.status;
}

async function capacity(node: Node): Promise<{ global: { count: number }; activeSessionsHere: number }> {
  const res = await fetch(`${node.url}/telephony/capacity`, {
    headers: { authorization: `Bearer ${CORE_KEY}` },
  });
  return (await res.json()) as { global: { count: number }; activeSessionsHere: number };
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

const tokenOf = (twiml: string) => /name="token" value="([^"]+)"/.exec(twiml)![1]!;

describe.skipIf(!redisUrl)('call capacity across two core processes sharing one real Redis', () => {
  it('admits exactly 100 of 300, frees slots on every end path, and recovers a killed node’s slots after the TTL', async () => {
    const prefix = `cap${randomUUID().slice(0, 8)}:`;
    const seed = await RedisStore.connect(redisUrl!, { prefix });
    await seed.set(keys.agent('short'), JSON.stringify({ brain: 'echo', maxDurationSec: 1 }));
    const a = await startCore(prefix);
    const b = await startCore(prefix);
    const clients: { callSid: string; client: MediaClient; node: Node }[] = [];
    try {
      // 300 webhooks at once, alternating nodes, while a sampler watches the shared count.
      let sampling = true;
      let peak = 0;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, (await capacity(a)).global.count);
          await Bun.sleep(5);
        }
      })();
      const calls = Array.from({ length: 300 }, () => `CA${randomUUID().replaceAll('-', '')}`);
      const answers = await Promise.all(
        calls.map(async (sid, i) => {
          const res = await voiceWebhook(i % 2 ? b : a, sid);
          return { sid, status: res.status, body: await res.text() };
        }),
      );
      sampling = false;
      await sampler;
      const admitted = answers.filter((x) => x.body.includes('<Connect>'));
      const busy = answers.filter((x) => x.body.includes('<Reject reason="busy"/>'));
      expect(answers.every((x) => x.status === 200)).toBe(true);
      expect(admitted).toHaveLength(100);
      expect(busy).toHaveLength(200);
      expect(peak).toBeLessThanOrEqual(100);
      expect((await capacity(b)).global.count).toBe(100);

      // Every admitted call streams: half to each node (their keepers renew the leases).
      for (const [i, x] of admitted.entries()) {
        const node = i % 2 ? b : a;
        const client = await twilioClient({
          baseWsUrl: node.url.replace('http', 'ws'),
          callId: x.sid,
          token: tokenOf(x.body),
        });
        client.start();
        clients.push({ callSid: x.sid, client, node });
      }
      await until(
        '50 sessions on each node',
        async () =>
          (await capacity(a)).activeSessionsHere === 50 && (await capacity(b)).activeSessionsHere === 50,
        10_000,
      );
      const onA = clients.filter((c) => c.node === a);
      const onB = clients.filter((c) => c.node === b);
      const count = async () => (await capacity(a)).global.count;

      // End path 1: the provider's status callback, delivered to the OTHER node.
      for (const c of onA.slice(0, 10)) expect(await statusCallback(b, c.callSid)).toBe(204);
      expect(await count()).toBe(90);
      // End path 2: the stream's stop message.
      for (const c of onA.slice(10, 20)) c.client.stop();
      await until('stops to free 10 slots', async () => (await count()) === 80, 5000);
      // End path 3: the socket just closes.
      for (const c of onB.slice(0, 10)) c.client.ws.close();
      await until('socket closes to free 10 slots', async () => (await count()) === 70, 5000);
      // End path 4: a timeout (an agent whose calls last at most 1 s).
      const short = Array.from({ length: 10 }, () => `CA${randomUUID().replaceAll('-', '')}`);
      for (const sid of short) {
        const twiml = await (await voiceWebhook(a, sid, '?agentId=short')).text();
        const client = await twilioClient({
          baseWsUrl: a.url.replace('http', 'ws'),
          callId: sid,
          token: tokenOf(twiml),
        });
        client.start();
      }
      expect(await count()).toBe(80);
      await until('max-duration timeouts to free 10 slots', async () => (await count()) === 70, 6000);
      // The status-callback calls' sessions noticed their leases were gone and ended too.
      await until(
        'lost-lease sessions to end',
        async () => (await capacity(a)).activeSessionsHere === 30,
        5000,
      );
      expect((await capacity(b)).activeSessionsHere).toBe(40);
      expect(await count()).toBe(70);

      // A node dies without a word: its 40 calls' slots come back once their leases lapse.
      b.entry.proc.kill('SIGKILL');
      await b.entry.proc.exited;
      const killedAt = Date.now();
      await until(
        'the killed node’s slots to lapse',
        async () => (await count()) === 30,
        (TTL_SEC + 4) * 1000,
      );
      expect(Date.now() - killedAt).toBeLessThanOrEqual((TTL_SEC + 4) * 1000);
      // The live node kept its 30 calls throughout.
      expect((await capacity(a)).activeSessionsHere).toBe(30);
    } finally {
      for (const c of clients) c.client.ws.close();
      for (const n of [a, b]) if (n.entry.proc.exitCode === null) await n.entry.stop();
      await seed.close();
    }
  }, 60_000);
});
