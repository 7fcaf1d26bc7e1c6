import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { claimDue } from '../../control/modules/webhooks/delivery.ts';
import { enqueueAccountEvent } from '../../control/modules/webhooks/outbox.ts';
import { Dispatcher } from '../../control/workers/dispatcher.ts';
import { createLogger } from '../../core/observability/index.ts';
import { Timeline } from '../../core/session/timeline.ts';
import {
  type ApiClient,
  apiClient,
  type Backing,
  embedded,
  eventually,
  type Json,
  makeAccount,
  makeControl,
  postgresAndRedis,
} from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const log = createLogger({ level: 'silent', service: 'test' });

const FAST_RECORDER = { blockMs: 50, retryMinMs: 50, retryMaxMs: 300, claimIdleMs: 300, claimEveryMs: 100 };
/** Short retries, so a test sees every attempt: 3 attempts, 20 ms doubling to 100 ms. */
const POLICY = { timeoutMs: 400, maxAttempts: 3, retryBaseMs: 20, retryMaxMs: 100, disableAfterFailures: 3 };

interface Received {
  headers: Record<string, string>;
  body: string;
  json: Json;
}

/** A local webhook receiver: records every request, answers as `respond` says (200 by default). */
function startReceiver() {
  const received: Received[] = [];
  let respond: (r: Received) => Response | Promise<Response> = () => new Response('ok');
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = await req.text();
      const r: Received = { headers: Object.fromEntries(req.headers), body, json: JSON.parse(body) };
      received.push(r);
      return respond(r);
    },
  });
  return {
    url: (path = '/hook') => `http://127.0.0.1:${server.port}${path}`,
    received,
    setRespond(fn: typeof respond) {
      respond = fn;
    },
    stop: () => server.stop(true),
  };
}

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

describe.each(backings)('webhooks on %s', (_name, makeBacking) => {
  let backing: Backing;
  let control: Control;
  /** The same database, as a production deployment sees it: private destinations refused. */
  let strict: Control;
  let api: ApiClient;
  let strictApi: ApiClient;
  let key: string;
  let accountId: string;
  let receiver: ReturnType<typeof startReceiver>;
  /** What `rebind.example` resolves to: public when saved, then loopback at delivery. */
  let rebindTo = ['93.184.216.34'];

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    receiver = startReceiver();
    control = makeControl(backing, { WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }, backing.store, {
      workers: { recorder: FAST_RECORDER, dispatcher: { pollMs: 20 }, campaigns: false, sweeper: false },
      webhookPolicy: POLICY,
    });
    await control.start();
    strict = makeControl(backing, {}, backing.store, {
      workers: { recorder: false, dispatcher: false, campaigns: false, sweeper: false },
      webhookPolicy: {
        ...POLICY,
        resolve: async (host) =>
          host === 'rebind.example' ? rebindTo : host === 'public.example' ? ['93.184.216.34'] : [],
      },
    });
    api = apiClient(control);
    strictApi = apiClient(strict);
    ({ accountId, key } = await makeAccount(control, 'hooked'));
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await control?.close();
    receiver?.stop();
    await backing?.close();
  });

  beforeEach(async () => {
    if (!makeBacking) return;
    receiver.received.length = 0;
    receiver.setRespond(() => new Response('ok'));
    // Each test starts from no endpoints, so only its own receive events.
    await backing.sql`delete from webhook_endpoints`;
  });

  const create = async (body: Json, client = api) => {
    const res = await client('POST', '/v1/webhooks', { key, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };

  it.skipIf(!makeBacking)(
    'creates, lists, updates and deletes endpoints; the secret is shown once',
    async () => {
      const created = await create({ url: receiver.url(), events: ['call.ended'], description: 'CRM' });
      expect(created.id).toMatch(/^whk_[0-9a-z]{26}$/);
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(created).toMatchObject({
        url: receiver.url(),
        events: ['call.ended'],
        description: 'CRM',
        enabled: true,
      });
      const got = await api('GET', `/v1/webhooks/${created.id}`, { key });
      expect(got.status).toBe(200);
      expect(got.body.secret).toBeUndefined();
      expect(JSON.stringify(got.body)).not.toContain(created.secret.slice(6));
      const list = await api('GET', '/v1/webhooks', { key });
      expect(list.body.data.map((e: Json) => e.id)).toEqual([created.id]);
      const patched = await api('PATCH', `/v1/webhooks/${created.id}`, {
        key,
        body: { events: [], description: 'all events', enabled: false },
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ events: [], description: 'all events', enabled: false });
      // Another account sees none of it.
      const other = await makeAccount(control, 'other');
      expect((await api('GET', `/v1/webhooks/${created.id}`, { key: other.key })).status).toBe(404);
      expect((await api('DELETE', `/v1/webhooks/${created.id}`, { key: other.key })).status).toBe(404);
      expect((await api('DELETE', `/v1/webhooks/${created.id}`, { key })).body).toEqual({
        id: created.id,
        deleted: true,
      });
      expect((await api('GET', `/v1/webhooks/${created.id}`, { key })).status).toBe(404);
    },
  );

  it.skipIf(!makeBacking)('refuses unknown event types and fields, naming the field', async () => {
    const bad = await api('POST', '/v1/webhooks', {
      key,
      body: { url: receiver.url(), events: ['call.exploded'] },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details.map((d: Json) => d.field).join()).toMatch(/^events/);
    const extra = await api('POST', '/v1/webhooks', { key, body: { url: receiver.url(), secret: 'mine' } });
    expect(extra.status).toBe(422);
    const scheme = await api('POST', '/v1/webhooks', { key, body: { url: 'file:///etc/passwd' } });
    expect(scheme.status).toBe(422);
    expect(scheme.body.error.details[0].field).toBe('url');
  });

  it.skipIf(!makeBacking)(
    'refuses private, loopback and link-local destinations unless allowed',
    async () => {
      for (const url of [
        'http://127.0.0.1:6379/',
        'http://169.254.169.254/latest/meta-data/',
        'http://[::1]/',
        'http://10.0.0.5/',
        'http://localhost/',
        'http://2130706433/',
      ]) {
        const res = await strictApi('POST', '/v1/webhooks', { key, body: { url } });
        expect(res.status, url).toBe(422);
        expect(res.body.error.details[0].field).toBe('url');
      }
      const ok = await create({ url: 'https://public.example/hook' }, strictApi);
      const patched = await strictApi('PATCH', `/v1/webhooks/${ok.id}`, {
        key,
        body: { url: 'http://192.168.0.10/' },
      });
      expect(patched.status).toBe(422);
      // Checked again at delivery: a name re-pointed at loopback after it was saved gets nothing.
      rebindTo = ['93.184.216.34'];
      const rebound = await create(
        { url: `http://rebind.example:${new URL(receiver.url()).port}/hook` },
        strictApi,
      );
      rebindTo = ['127.0.0.1'];
      const test = await strictApi('POST', `/v1/webhooks/${rebound.id}/test`, { key });
      expect(test.status).toBe(200);
      expect(test.body).toMatchObject({ status: 'failed', lastStatus: null, attempts: 1 });
      expect(test.body.lastError).toMatch(/127\.0\.0\.1.*private/);
      expect(receiver.received).toHaveLength(0);
    },
  );

  it.skipIf(!makeBacking)(
    'signs with Standard Webhooks: the standardwebhooks package verifies, tampering fails',
    async () => {
      const created = await create({ url: receiver.url() });
      const test = await api('POST', `/v1/webhooks/${created.id}/test`, { key });
      expect(test.status).toBe(200);
      expect(test.body).toMatchObject({
        status: 'delivered',
        lastStatus: 200,
        attempts: 1,
        eventType: 'webhook.test',
      });
      expect(receiver.received).toHaveLength(1);
      const [r] = receiver.received;
      expect(r!.headers['webhook-id']).toBe(test.body.eventId);
      const payload = new Webhook(created.secret).verify(r!.body, r!.headers) as Json;
      expect(payload).toMatchObject({
        id: test.body.eventId,
        type: 'webhook.test',
        version: 1,
        accountId,
        callId: null,
      });
      expect(() => new Webhook(created.secret).verify(r!.body.replace('test', 'TEST'), r!.headers)).toThrow();
      expect(() =>
        new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(r!.body, r!.headers),
      ).toThrow();
      const old = { ...r!.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 600) };
      expect(() => new Webhook(created.secret).verify(r!.body, old)).toThrow();
      // The delivery log shows it.
      const log = await api('GET', `/v1/webhooks/${created.id}/deliveries`, { key });
      expect(log.body.data.map((d: Json) => d.id)).toEqual([test.body.id]);
    },
  );

  it.skipIf(!makeBacking)(
    'rotates the secret: both sign during the overlap, then only the new one',
    async () => {
      const created = await create({ url: receiver.url() });
      const rotated = await api('POST', `/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        body: { overlapSec: 3600 },
      });
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).not.toBe(created.secret);
      expect(rotated.body.secretRotatedUntil).not.toBeNull();
      await api('POST', `/v1/webhooks/${created.id}/test`, { key });
      const during = receiver.received.at(-1)!;
      expect(during.headers['webhook-signature']!.split(' ')).toHaveLength(2);
      expect(() => new Webhook(created.secret).verify(during.body, during.headers)).not.toThrow();
      expect(() => new Webhook(rotated.body.secret).verify(during.body, during.headers)).not.toThrow();
      const again = await api('POST', `/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        body: { overlapSec: 0 },
      });
      await api('POST', `/v1/webhooks/${created.id}/test`, { key });
      const after = receiver.received.at(-1)!;
      expect(() => new Webhook(again.body.secret).verify(after.body, after.headers)).not.toThrow();
      expect(() => new Webhook(rotated.body.secret).verify(after.body, after.headers)).toThrow();
    },
  );

  it.skipIf(!makeBacking)(
    'delivers a recorded call’s events, each once, to the endpoints that want them',
    async () => {
      // The agent first: its own `agent.created` event goes out before any endpoint exists.
      const agent = await control.services.agents.create(accountId, { name: 'Hooked' });
      const all = await create({ url: receiver.url('/all') });
      const endsOnly = await create({ url: receiver.url('/ends'), events: ['call.ended'] });
      const callId = `hook-${crypto.randomUUID()}`;
      const timeline = new Timeline(backing.store, log, { callId, agentId: agent.id, protocol: 'twilio' });
      timeline.append('call.started', { protocol: 'twilio', direction: 'inbound' });
      timeline.append('transcript.partial', { text: 'boo' });
      timeline.append('transcript.final', { text: 'book a table' });
      timeline.append('agent.said', { text: 'For how many?', interrupted: false, playedMs: 800 });
      timeline.append('mark', { name: 'm1', status: 'played' });
      timeline.append('call.ended', { reason: 'hangup', durationMs: 4000, turns: 1 });
      expect(await timeline.flush()).toBe(true);
      await eventually(
        () => receiver.received.filter((r) => r.json.callId === callId).length >= 5 || undefined,
        15_000,
        'deliveries',
      );
      const got = receiver.received.filter((r) => r.json.callId === callId);
      const types = got.map((r) => r.json.type).sort();
      // The opt-in partial transcript is not sent to an endpoint without a filter; the mark is internal.
      expect(types).toEqual(['agent.reply', 'call.answered', 'call.ended', 'call.ended', 'transcript.final']);
      const ended = got.find((r) => r.json.type === 'call.ended')!.json;
      expect(ended).toMatchObject({
        accountId,
        callId,
        version: 1,
        data: { reason: 'hangup', durationMs: 4000, turns: 1 },
      });
      expect(ended.data.transcript).toEqual([
        { role: 'caller', text: 'book a table' },
        { role: 'agent', text: 'For how many?' },
      ]);
      for (const r of got) expect(r.headers['webhook-id']).toBe(r.json.id);
      const ids = got.map((r) => `${r.json.id}`);
      // Two endpoints got call.ended: the same event id, once each.
      expect(new Set(ids).size).toBe(4);
      const deliveries = async (id: string) =>
        (await api('GET', `/v1/webhooks/${id}/deliveries`, { key })).body.data as Json[];
      await eventually(
        async () => (await deliveries(all.id)).every((d) => d.status === 'delivered') || undefined,
        10_000,
        'outcomes recorded',
      );
      expect((await deliveries(all.id)).map((d) => d.status)).toEqual([
        'delivered',
        'delivered',
        'delivered',
        'delivered',
      ]);
      expect((await deliveries(endsOnly.id)).map((d) => d.eventType)).toEqual(['call.ended']);
      // The recorder writing the batch again (another consumer claimed it) adds no delivery.
      const [{ n }] = await backing.sql<{ n: number }[]>`select count(*)::int as n from webhook_deliveries`;
      expect(n).toBe(5);
    },
  );

  it.skipIf(!makeBacking)(
    'retries 5xx, 429 and timeouts with backoff, honouring Retry-After, then delivers',
    async () => {
      const created = await create({ url: receiver.url() });
      let n = 0;
      receiver.setRespond(async () => {
        n++;
        if (n === 1) return new Response('busy', { status: 503, headers: { 'retry-after': '0' } });
        if (n === 2) {
          await Bun.sleep(POLICY.timeoutMs + 200); // no answer in time
          return new Response('late');
        }
        return new Response('ok', { status: 204 });
      });
      await enqueueAccountEvent(backing.sql, {
        id: `evt_${crypto.randomUUID().replaceAll('-', '')}`,
        accountId,
        type: 'agent.created',
        data: { agentId: 'agt_x' },
      });
      const delivered = await eventually(
        async () => {
          const [d] = (await api('GET', `/v1/webhooks/${created.id}/deliveries`, { key })).body.data;
          return d?.status === 'delivered' ? d : undefined;
        },
        10_000,
        'delivered after retries',
      );
      expect(delivered).toMatchObject({ attempts: 3, lastStatus: 204, lastError: null });
      expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    },
  );

  it.skipIf(!makeBacking)(
    'marks a delivery failed after the attempt limit, disables an endpoint that keeps failing, replays',
    async () => {
      const created = await create({ url: receiver.url() });
      receiver.setRespond(() => new Response('down', { status: 500 }));
      for (let i = 0; i < POLICY.disableAfterFailures; i++)
        await enqueueAccountEvent(backing.sql, {
          id: `evt_fail${i}${crypto.randomUUID().replaceAll('-', '')}`,
          accountId,
          type: 'agent.deleted',
          data: { agentId: `agt_${i}` },
        });
      const disabled = await eventually(
        async () => {
          const e = (await api('GET', `/v1/webhooks/${created.id}`, { key })).body;
          return e.enabled === false ? e : undefined;
        },
        10_000,
        'endpoint disabled',
      );
      expect(disabled.disabledReason).toMatch(/3 deliveries in a row failed; last: receiver answered 500/);
      const failed = (await api('GET', `/v1/webhooks/${created.id}/deliveries?status=failed`, { key })).body
        .data;
      expect(failed).toHaveLength(POLICY.disableAfterFailures);
      for (const d of failed)
        expect(d).toMatchObject({ status: 'failed', attempts: POLICY.maxAttempts, lastStatus: 500 });
      // No delivery was attempted more often than the limit.
      const perId = new Map<string, number>();
      for (const r of receiver.received)
        perId.set(r.headers['webhook-id']!, (perId.get(r.headers['webhook-id']!) ?? 0) + 1);
      expect([...perId.values()]).toEqual([3, 3, 3]);
      // The receiver is fixed: replay one, then the rest, and re-enable the endpoint.
      receiver.setRespond(() => new Response('ok'));
      const one = await api('POST', `/v1/webhooks/${created.id}/deliveries/${failed[0].id}/replay`, { key });
      expect(one.body).toMatchObject({ status: 'pending', attempts: 0 });
      expect((await api('POST', `/v1/webhooks/${created.id}/replay-failed`, { key })).body).toEqual({
        replayed: 2,
      });
      const enabled = await api('PATCH', `/v1/webhooks/${created.id}`, { key, body: { enabled: true } });
      expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null });
      await eventually(
        async () => {
          const all = (await api('GET', `/v1/webhooks/${created.id}/deliveries?status=delivered`, { key }))
            .body.data;
          return all.length === 3 || undefined;
        },
        10_000,
        'replayed deliveries delivered',
      );
    },
  );

  it.skipIf(!makeBacking)('gives up at once on a refusal that retrying cannot fix (4xx)', async () => {
    const created = await create({ url: receiver.url() });
    receiver.setRespond(() => new Response('gone', { status: 410 }));
    const test = await api('POST', `/v1/webhooks/${created.id}/test`, { key });
    expect(test.body).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 410 });
    expect(receiver.received).toHaveLength(1);
  });

  it.skipIf(!makeBacking)(
    'resends the deliveries of a dispatcher that died mid-attempt, counting its attempt',
    async () => {
      const created = await create({ url: receiver.url() });
      await control.dispatcher!.stop();
      try {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const id = `evt_dead${i}${crypto.randomUUID().replaceAll('-', '')}`.slice(0, 40);
          ids.push(id);
          await enqueueAccountEvent(backing.sql, {
            id,
            accountId,
            type: 'agent.updated',
            data: { agentId: 'agt_1' },
          });
        }
        // A dispatcher claims them and dies before sending or recording anything.
        const claimed = await claimDue(backing.sql, {
          limit: 100,
          leaseMs: 200,
          maxAttempts: 3,
          // A second ahead: a row inserted in this very millisecond is due at a microsecond
          // past Date.now()'s whole millisecond.
          nowMs: Date.now() + 1000,
        });
        expect(claimed).toHaveLength(5);
        const survivor = new Dispatcher(
          { sql: backing.sql, log },
          { ...POLICY, allowPrivate: true },
          { pollMs: 20 },
        );
        survivor.start();
        try {
          await eventually(
            async () => {
              const rows = await backing.sql<{ status: string; attempts: number }[]>`
            select status, attempts from webhook_deliveries where endpoint_id = ${created.id}`;
              return rows.every((r) => r.status === 'delivered') || undefined;
            },
            10_000,
            'taken over and delivered',
          );
        } finally {
          await survivor.stop();
        }
        const rows = await backing.sql<{ attempts: number }[]>`
        select attempts from webhook_deliveries where endpoint_id = ${created.id}`;
        expect(rows.map((r) => r.attempts)).toEqual([2, 2, 2, 2, 2]);
        expect(receiver.received.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());
      } finally {
        control.dispatcher!.start();
      }
    },
  );

  it.skipIf(!makeBacking)(
    'shares the outbox between dispatchers without sending any delivery twice',
    async () => {
      const created = await create({ url: receiver.url() });
      await control.dispatcher!.stop();
      const count = 200;
      try {
        for (let i = 0; i < count; i++)
          await enqueueAccountEvent(backing.sql, {
            id: `evt_many${i}_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`,
            accountId,
            type: 'agent.updated',
            data: { agentId: 'agt_1', version: i },
          });
        const workers = [1, 2, 3].map(
          () =>
            new Dispatcher(
              { sql: backing.sql, log },
              { ...POLICY, allowPrivate: true },
              { pollMs: 10, concurrency: 8 },
            ),
        );
        for (const w of workers) w.start();
        try {
          await eventually(() => receiver.received.length >= count || undefined, 20_000, 'all delivered');
          await eventually(
            async () => {
              const [{ n }] = await backing.sql<{ n: number }[]>`
            select count(*)::int as n from webhook_deliveries where endpoint_id = ${created.id} and status = 'delivered'`;
              return n === count || undefined;
            },
            10_000,
            'all recorded',
          );
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
        }
        const ids = receiver.received.map((r) => r.headers['webhook-id']);
        expect(ids).toHaveLength(count);
        expect(new Set(ids).size).toBe(count);
        expect(workers.filter((w) => w.counts.delivered > 0).length).toBeGreaterThan(1);
      } finally {
        control.dispatcher!.start();
      }
    },
  );
});
