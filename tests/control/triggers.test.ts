import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isCorePath } from '../../core/app.ts';
import { keys } from '../../core/store/index.ts';
import { routeOf } from '../../infra/routes.ts';
import { type Platform, startPlatform } from './platform.ts';
import {
  type ApiClient,
  type Backing,
  embedded,
  type Json,
  makeAccount,
  postgresAndRedis,
} from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

/** Numbers unique to this run, so suites sharing a server do not collide. */
let numberSeq = Math.floor(Math.random() * 1e6);
const nextNumber = () => `+1555${String(numberSeq++ % 1e7).padStart(7, '0')}`;

interface Signed {
  body: string;
  headers: Record<string, string>;
}

/** Signs `payload` as a customer's CRM would: with the `standardwebhooks` package. */
function sign(secret: string, payload: unknown, opts: { id?: string; at?: Date } = {}): Signed {
  const body = JSON.stringify(payload);
  const id = opts.id ?? `msg_${randomUUID().replaceAll('-', '')}`;
  const at = opts.at ?? new Date();
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, body),
    },
  };
}

describe('inbound triggers are control’s', () => {
  it('on the ALB, in npm start and in the planes’ split', () => {
    expect(routeOf('/webhooks/triggers/trg_01j9x6k3m2q8w5r7t4v0y1z3ab')).toBe('control');
    expect(isCorePath('/webhooks/triggers/trg_01j9x6k3m2q8w5r7t4v0y1z3ab')).toBe(false);
  });
});

describe.each(backings)('inbound triggers on %s', (_name, makeBacking) => {
  let backing: Backing;
  let p: Platform;
  let api: ApiClient;
  let key: string;
  let accountId: string;
  let agentId: string;
  /** Added to the control plane's clock: where time is the subject, the test moves it. */
  let skewMs = 0;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    p = await startPlatform(backing, {
      control: {
        workers: { recorder: false, campaigns: false, sweeper: false, dispatcher: false },
        now: () => Date.now() + skewMs,
      },
    });
    api = p.api;
    ({ key, accountId } = await makeAccount(p.control, 'triggered'));
    const agent = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Callback', brain: 'echo', greeting: 'Hello {{firstName}}' },
    });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    agentId = agent.body.id;
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await p?.close();
    await backing?.close();
  });

  /** POSTs to the trigger's URL over HTTP, as a CRM would. */
  const fire = async (url: string, signed: Partial<Signed> & { body?: string }) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: signed.headers ?? { 'content-type': 'application/json' },
      body: signed.body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined };
  };

  const createCallTrigger = async (extra: Json = {}) => {
    const res = await api('POST', '/v1/triggers', {
      key,
      body: {
        name: 'Website form',
        action: 'call',
        agentId,
        from: '+14155550100',
        provider: 'jambonz',
        ...extra,
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    // The URL is under the deployment's public base URL: here, the platform's own server.
    expect(res.body.url).toBe(`${p.url}/webhooks/triggers/${res.body.id}`);
    return res.body as Json;
  };

  /** Calls placed at the fake provider, and calls on record: what "started nothing" is held to. */
  const started = async () => {
    const [{ n }] = await backing.sql<{ n: number }[]>`
      select count(*)::int as n from calls where account_id = ${accountId}`;
    return { atProvider: p.jambonz.calls.size, onRecord: n };
  };

  it.skipIf(!makeBacking)(
    'a correctly signed request starts the call at the provider, with its variables',
    async () => {
      const trigger = await createCallTrigger();
      expect(trigger).toMatchObject({
        id: expect.stringMatching(/^trg_[0-9a-z]{26}$/),
        action: 'call',
        agentId,
        from: '+14155550100',
        provider: 'jambonz',
        campaignId: null,
        enabled: true,
        lastFiredAt: null,
      });
      expect(trigger.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      const to = nextNumber();
      const res = await fire(trigger.url, sign(trigger.secret, { to, variables: { firstName: 'Ada' } }));
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({
        triggerId: trigger.id,
        action: 'call',
        contact: null,
        call: {
          direction: 'outbound',
          agentId,
          from: '+14155550100',
          to,
          status: 'queued',
          provider: 'jambonz',
        },
      });
      const call = res.body.call;
      const placed = p.jambonz.calls.get(call.providerCallId)!;
      expect(placed.request).toMatchObject({
        from: '+14155550100',
        to: { type: 'phone', number: to },
        tag: { callId: call.id, agentId },
      });
      // The agent gets the variables the way a campaign contact's reach it.
      expect(JSON.parse((await p.store.get(keys.callContext(call.id)))!)).toEqual({
        variables: { firstName: 'Ada' },
      });
      const listed = await api('GET', `/v1/calls/${call.id}`, { key });
      expect(listed.status).toBe(200);
      expect(listed.body).toMatchObject({ id: call.id, to, direction: 'outbound' });
      const got = await api('GET', `/v1/triggers/${trigger.id}`, { key });
      expect(got.body.secret).toBeUndefined();
      expect(got.body.lastFiredAt).not.toBeNull();
      // Its leases go back: no live session will ever release them in this test.
      await p.core.capacity.release(call.id);
    },
  );

  it.skipIf(!makeBacking)(
    'unsigned, stale, wrongly signed, tampered and replayed requests get 401 and start nothing',
    async () => {
      const trigger = await createCallTrigger();
      const payload = { to: nextNumber() };
      const before = await started();

      const unsigned = await fire(trigger.url, { body: JSON.stringify(payload) });
      expect(unsigned.status).toBe(401);
      expect(unsigned.body.error).toMatchObject({ code: 'signature_missing' });
      expect(unsigned.body.error.message).toMatch(/webhook-id, webhook-timestamp and webhook-signature/);

      const stale = await fire(
        trigger.url,
        sign(trigger.secret, payload, { at: new Date(Date.now() - 6 * 60_000) }),
      );
      expect(stale.status).toBe(401);
      expect(stale.body.error.code).toBe('signature_stale');
      const early = await fire(
        trigger.url,
        sign(trigger.secret, payload, { at: new Date(Date.now() + 6 * 60_000) }),
      );
      expect(early.body.error.code).toBe('signature_stale');

      const otherSecret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
      const wrong = await fire(trigger.url, sign(otherSecret, payload));
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('signature_invalid');

      const good = sign(trigger.secret, payload);
      const tampered = await fire(trigger.url, {
        headers: good.headers,
        body: good.body.replace(payload.to, nextNumber()),
      });
      expect(tampered.status).toBe(401);
      expect(tampered.body.error.code).toBe('signature_invalid');
      expect(await started()).toEqual(before);

      const first = await fire(trigger.url, good);
      expect(first.status, JSON.stringify(first.body)).toBe(201);
      const afterFirst = await started();
      expect(afterFirst).toEqual({ atProvider: before.atProvider + 1, onRecord: before.onRecord + 1 });
      const replayed = await fire(trigger.url, good);
      expect(replayed.status).toBe(401);
      expect(replayed.body.error.code).toBe('replayed');
      // Re-signed with a fresh timestamp, the same webhook-id is still a replay.
      const resigned = await fire(
        trigger.url,
        sign(trigger.secret, payload, { id: good.headers['webhook-id'] }),
      );
      expect(resigned.body.error.code).toBe('replayed');
      expect(await started()).toEqual(afterFirst);
      // The replay is refused by another control node on the same database too.
      expect(await p.restartControl()).toBeDefined();
      expect((await fire(trigger.url, good)).body.error.code).toBe('replayed');
      expect(await started()).toEqual(afterFirst);
      await p.core.capacity.release(first.body.call.id);
    },
  );

  it.skipIf(!makeBacking)('checks timestamps against the control plane’s clock', async () => {
    const trigger = await createCallTrigger();
    const signed = sign(trigger.secret, { to: nextNumber() });
    const before = await started();
    skewMs = 301_000;
    try {
      const late = await fire(trigger.url, signed);
      expect(late.status).toBe(401);
      expect(late.body.error.code).toBe('signature_stale');
      expect(await started()).toEqual(before);
    } finally {
      skewMs = 0;
    }
    // Refused, it was not spent: on time, the same request is accepted.
    const onTime = await fire(trigger.url, signed);
    expect(onTime.status, JSON.stringify(onTime.body)).toBe(201);
    await p.core.capacity.release(onTime.body.call.id);
  });

  it.skipIf(!makeBacking)(
    'a provider refusal starts nothing and leaves the webhook-id for the sender’s retry',
    async () => {
      const trigger = await createCallTrigger();
      const id = `msg_${randomUUID()}`;
      const payload = { to: nextNumber() };
      p.jambonz.fault({ status: 500, body: { msg: 'feature server down' } });
      try {
        const refused = await fire(trigger.url, sign(trigger.secret, payload, { id }));
        expect(refused.status).toBe(502);
        expect(refused.body.error.code).toBe('provider_error');
      } finally {
        p.jambonz.fault(null);
      }
      const retried = await fire(trigger.url, sign(trigger.secret, payload, { id }));
      expect(retried.status, JSON.stringify(retried.body)).toBe(201);
      await p.core.capacity.release(retried.body.call.id);
    },
  );

  it.skipIf(!makeBacking)(
    'rotates the secret: the previous one is accepted during the overlap, then refused',
    async () => {
      const trigger = await createCallTrigger();
      const rotated = await api('POST', `/v1/triggers/${trigger.id}/rotate-secret`, {
        key,
        body: { overlapSec: 3600 },
      });
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).not.toBe(trigger.secret);
      expect(rotated.body.secretRotatedUntil).not.toBeNull();
      for (const secret of [trigger.secret, rotated.body.secret]) {
        const res = await fire(trigger.url, sign(secret, { to: nextNumber() }));
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        await p.core.capacity.release(res.body.call.id);
      }
      const again = await api('POST', `/v1/triggers/${trigger.id}/rotate-secret`, {
        key,
        body: { overlapSec: 0 },
      });
      const old = await fire(trigger.url, sign(rotated.body.secret, { to: nextNumber() }));
      expect(old.status).toBe(401);
      expect(old.body.error.code).toBe('signature_invalid');
      const fresh = await fire(trigger.url, sign(again.body.secret, { to: nextNumber() }));
      expect(fresh.status).toBe(201);
      await p.core.capacity.release(fresh.body.call.id);
    },
  );

  it.skipIf(!makeBacking)('a disabled or deleted trigger starts nothing', async () => {
    const trigger = await createCallTrigger({ enabled: false });
    const before = await started();
    const signed = sign(trigger.secret, { to: nextNumber() });
    const disabled = await fire(trigger.url, signed);
    expect(disabled.status).toBe(403);
    expect(disabled.body.error.code).toBe('trigger_disabled');
    expect(await started()).toEqual(before);
    await api('PATCH', `/v1/triggers/${trigger.id}`, { key, body: { enabled: true } });
    const enabled = await fire(trigger.url, signed);
    expect(enabled.status).toBe(201);
    await p.core.capacity.release(enabled.body.call.id);
    expect((await api('DELETE', `/v1/triggers/${trigger.id}`, { key })).body).toEqual({
      id: trigger.id,
      deleted: true,
    });
    const gone = await fire(trigger.url, sign(trigger.secret, { to: nextNumber() }));
    expect(gone.status).toBe(404);
  });

  it.skipIf(!makeBacking)('refuses a signed body that breaks the schema, naming the field', async () => {
    const trigger = await createCallTrigger();
    const before = await started();
    for (const [payload, field] of [
      [{ to: '555-0100' }, 'to'],
      [{}, 'to'],
      [{ to: nextNumber(), agentId }, 'agentId'],
      [{ to: nextNumber(), variables: { firstName: 7 } }, 'variables.firstName'],
    ] as const) {
      const res = await fire(trigger.url, sign(trigger.secret, payload));
      expect(res.status, JSON.stringify(payload)).toBe(422);
      expect(res.body.error.details.map((d: Json) => d.field)).toContain(field);
    }
    const text = sign(trigger.secret, 'hello');
    const notJson = await fire(trigger.url, {
      headers: { ...text.headers, 'content-type': 'text/plain' },
      body: text.body,
    });
    expect(notJson.status).toBe(415);
    expect(await started()).toEqual(before);
  });

  it.skipIf(!makeBacking)(
    'a campaign_contact trigger adds the callee to the campaign with its variables',
    async () => {
      const campaign = await api('POST', '/v1/campaigns', {
        key,
        body: {
          name: 'Leads',
          agentId,
          provider: 'jambonz',
          callerId: '+14155550100',
          timeZone: 'UTC',
          callsPerSecond: 1,
          maxConcurrentCalls: 1,
        },
      });
      expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
      const created = await api('POST', '/v1/triggers', {
        key,
        body: { name: 'CRM lead', action: 'campaign_contact', campaignId: campaign.body.id },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const trigger = created.body;
      const to = nextNumber();
      const res = await fire(trigger.url, sign(trigger.secret, { to, variables: { firstName: 'Grace' } }));
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({
        action: 'campaign_contact',
        call: null,
        contact: { campaignId: campaign.body.id, seq: 1, phoneNumber: to },
      });
      const contacts = await api('GET', `/v1/campaigns/${campaign.body.id}/contacts`, { key });
      expect(contacts.body.data).toMatchObject([
        { seq: 1, phoneNumber: to, variables: { firstName: 'Grace' }, status: 'pending' },
      ]);
      const twice = await fire(trigger.url, sign(trigger.secret, { to }));
      expect(twice.status).toBe(422);
      expect(twice.body.error.details).toEqual([
        { field: 'to', message: `${to} is already a contact of campaign ${campaign.body.id}` },
      ]);
    },
  );

  // Last: it spends this address's budget of failed authentications for the current minute.
  it.skipIf(!makeBacking)('limits failed signatures per client address, like failed API keys', async () => {
    const trigger = await createCallTrigger();
    const otherSecret = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
    let refusals = 0;
    let res = await fire(trigger.url, sign(otherSecret, { to: nextNumber() }));
    while (res.status === 401 && refusals < 50) {
      refusals++;
      res = await fire(trigger.url, sign(otherSecret, { to: nextNumber() }));
    }
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('too_many_failed_authentications');
    const before = await started();
    const good = await fire(trigger.url, sign(trigger.secret, { to: nextNumber() }));
    expect(good.status).toBe(429);
    expect(await started()).toEqual(before);
    // The next minute (the control plane's clock moved), the address may try again.
    skewMs = 60_000;
    try {
      const later = await fire(
        trigger.url,
        sign(trigger.secret, { to: nextNumber() }, { at: new Date(Date.now() + skewMs) }),
      );
      expect(later.status, JSON.stringify(later.body)).toBe(201);
      await p.core.capacity.release(later.body.call.id);
    } finally {
      skewMs = 0;
    }
  });

  it.skipIf(!makeBacking)('validates the CRUD bodies, naming the field', async () => {
    const bad = async (body: Json, field: string, method = 'POST', path = '/v1/triggers') => {
      const res = await api(method, path, { key, body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(
        res.body.error.details.map((d: Json) => d.field),
        JSON.stringify(res.body),
      ).toContain(field);
    };
    const call = { name: 'x', action: 'call', agentId, from: '+14155550100', provider: 'jambonz' };
    await bad({ ...call, action: 'sms' }, 'action');
    await bad({ ...call, from: undefined }, 'from');
    await bad({ ...call, provider: undefined }, 'provider');
    await bad({ ...call, from: '4155550100' }, 'from');
    await bad({ ...call, campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab' }, 'campaignId');
    await bad({ ...call, secret: 'whsec_mine' }, 'secret');
    await bad({ ...call, provider: 'twilio' }, 'provider'); // not configured on this deployment
    await bad({ name: 'x', action: 'campaign_contact' }, 'campaignId');
    await bad(
      { name: 'x', action: 'campaign_contact', campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab' },
      'campaignId',
    );
    await bad(
      { name: 'x', action: 'campaign_contact', campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab', agentId },
      'agentId',
    );
    const other = await makeAccount(p.control, 'someone else');
    const theirs = await api('POST', '/v1/agents', {
      key: other.key,
      body: { name: 'Theirs', brain: 'echo' },
    });
    await bad({ ...call, agentId: theirs.body.id }, 'agentId');

    const trigger = await createCallTrigger();
    await bad(
      { campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab' },
      'campaignId',
      'PATCH',
      `/v1/triggers/${trigger.id}`,
    );
    await bad({ action: 'campaign_contact' }, 'action', 'PATCH', `/v1/triggers/${trigger.id}`);
    await bad({}, '(body)', 'PATCH', `/v1/triggers/${trigger.id}`);
    const renamed = await api('PATCH', `/v1/triggers/${trigger.id}`, { key, body: { name: 'Renamed' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Renamed', agentId, action: 'call' });

    // Tenancy: another account neither sees nor changes it; the list shows only one's own.
    expect((await api('GET', `/v1/triggers/${trigger.id}`, { key: other.key })).status).toBe(404);
    expect((await api('DELETE', `/v1/triggers/${trigger.id}`, { key: other.key })).status).toBe(404);
    const list = await api('GET', '/v1/triggers?limit=100', { key });
    expect(list.status).toBe(200);
    expect(list.body.data.map((t: Json) => t.id)).toContain(trigger.id);
    for (const t of list.body.data) expect(t.secret).toBeUndefined();
    expect((await api('GET', '/v1/triggers', { key: other.key })).body.data).toEqual([]);
    expect((await api('GET', '/v1/triggers', {})).status).toBe(401);
  });
});
