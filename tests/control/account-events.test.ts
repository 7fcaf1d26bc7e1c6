import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { driveJambonzCalls, type Platform, startPlatform } from './platform.ts';
import { type Backing, embedded, eventually, type Json, makeAccount, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

interface Received {
  headers: Record<string, string>;
  body: string;
  json: Json;
}

/** A local webhook receiver that records every request and answers 204. */
function startReceiver() {
  const received: Received[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = await req.text();
      received.push({ headers: Object.fromEntries(req.headers), body, json: JSON.parse(body) });
      return new Response(null, { status: 204 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/hook`, received, stop: () => server.stop(true) };
}

/**
 * Control's own events on customer webhooks: `agent.*` written by the agents service in the
 * transaction of the change, `campaign.completed` by the campaign runner as it marks a campaign
 * complete; delivered by the dispatcher, signed, to the endpoints that ask for them.
 */
describe.each(backings)('control’s own events on %s', (_name, makeBacking) => {
  let backing: Backing;
  let p: Platform;
  let receiver: ReturnType<typeof startReceiver>;
  let key: string;
  let accountId: string;
  let secret: string;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    receiver = startReceiver();
    p = await startPlatform(backing, {
      env: { WEBHOOK_ALLOW_PRIVATE_URLS: 'true' },
      control: {
        workers: {
          recorder: { blockMs: 50 },
          campaigns: { tickMs: 10, refreshMs: 100 },
          sweeper: false,
          dispatcher: { pollMs: 20 },
        },
        webhookPolicy: { timeoutMs: 2_000, maxAttempts: 3, retryBaseMs: 20, retryMaxMs: 100 },
      },
    });
    ({ key, accountId } = await makeAccount(p.control, 'evented'));
    const endpoint = await p.api('POST', '/v1/webhooks', {
      key,
      body: {
        url: receiver.url,
        events: ['agent.created', 'agent.updated', 'agent.deleted', 'campaign.completed'],
      },
    });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
    secret = endpoint.body.secret;
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await p?.close();
    receiver?.stop();
    await backing?.close();
  });

  /** The verified events of `type` about `subject` (an agent or a campaign id). */
  const eventsOf = (type: string, subject: string) =>
    receiver.received
      .filter((r) => r.json.type === type && (r.json.data.agentId ?? r.json.data.campaignId) === subject)
      .map((r) => new Webhook(secret).verify(r.body, r.headers) as Json);

  const waitFor = (type: string, subject: string) =>
    eventually(() => eventsOf(type, subject)[0], 10_000, `${type} of ${subject}`);

  it.skipIf(!makeBacking)('sends agent.created, agent.updated and agent.deleted, signed', async () => {
    const created = await p.api('POST', '/v1/agents', { key, body: { name: 'Front desk', brain: 'echo' } });
    expect(created.status).toBe(201);
    const agentId = created.body.id;
    expect(await waitFor('agent.created', agentId)).toMatchObject({
      type: 'agent.created',
      version: 1,
      accountId,
      callId: null,
      data: { agentId, name: 'Front desk', version: 1 },
    });

    // A refused change writes nothing; an accepted one is a new version and one event.
    const refused = await p.api('PATCH', `/v1/agents/${agentId}`, {
      key,
      body: { endpointing: { minMs: 900, maxMs: 300 } },
    });
    expect(refused.status).toBe(422);
    const updated = await p.api('PATCH', `/v1/agents/${agentId}`, { key, body: { name: 'Reception' } });
    expect(updated.status).toBe(200);
    expect(await waitFor('agent.updated', agentId)).toMatchObject({
      data: { agentId, name: 'Reception', version: 2 },
    });

    expect((await p.api('DELETE', `/v1/agents/${agentId}`, { key })).status).toBe(200);
    const deleted = await waitFor('agent.deleted', agentId);
    expect(deleted).toMatchObject({ accountId, data: { agentId, name: 'Reception' } });

    // Each change once, each request carrying its event id as webhook-id; nothing for the refusal.
    const mine = receiver.received.filter((r) => r.json.data.agentId === agentId);
    expect(mine.map((r) => r.json.type)).toEqual(['agent.created', 'agent.updated', 'agent.deleted']);
    for (const r of mine) expect(r.headers['webhook-id']).toBe(r.json.id);
    const [{ n }] = await backing.sql<{ n: number }[]>`
      select count(*)::int as n from webhook_events where data->>'agentId' = ${agentId}`;
    expect(n).toBe(3);

    // Another account's agents reach none of this account's endpoints.
    const other = await makeAccount(p.control, 'quiet');
    const theirs = await p.api('POST', '/v1/agents', {
      key: other.key,
      body: { name: 'Theirs', brain: 'echo' },
    });
    const [{ m }] = await backing.sql<{ m: number }[]>`
      select count(*)::int as m from webhook_events where data->>'agentId' = ${theirs.body.id}`;
    expect(m).toBe(0);
  });

  it.skipIf(!makeBacking)('sends campaign.completed once, with the contacts’ final counts', async () => {
    const agent = await p.api('POST', '/v1/agents', { key, body: { name: 'Dialler', brain: 'echo' } });
    const answered = '+12025550111';
    const driver = driveJambonzCalls(p.jambonz, {
      ringMs: () => 20,
      talkMs: () => 50,
      outcome: (call) =>
        (call.request.to as { number: string }).number === answered ? 'completed' : 'failed',
    });
    try {
      const campaign = await p.api('POST', '/v1/campaigns', {
        key,
        body: {
          name: 'Renewals',
          agentId: agent.body.id,
          provider: 'jambonz',
          callerId: '+12025550100',
          timeZone: 'UTC',
          callsPerSecond: 20,
          maxConcurrentCalls: 2,
          contacts: [{ phoneNumber: answered }, { phoneNumber: '+12025550112' }],
        },
      });
      expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
      const campaignId = campaign.body.id;
      expect(eventsOf('campaign.completed', campaignId)).toEqual([]);
      expect((await p.api('POST', `/v1/campaigns/${campaignId}/start`, { key })).status).toBe(200);
      const event = await eventually(
        () => eventsOf('campaign.completed', campaignId)[0],
        30_000,
        'completed',
      );
      expect(event).toMatchObject({
        type: 'campaign.completed',
        accountId,
        callId: null,
        data: {
          campaignId,
          name: 'Renewals',
          contacts: { total: 2, completed: 1, failed: 1, unknown: 0, canceled: 0 },
        },
      });
      const got = (await p.api('GET', `/v1/campaigns/${campaignId}`, { key })).body;
      expect(got.status).toBe('completed');
      expect(new Date(event.at).toISOString()).toBe(got.endedAt);
      // The runner keeps refreshing (and a restarted control refreshes again): still one event.
      await p.restartControl();
      await eventually(
        async () => {
          const [{ n }] = await backing.sql<{ n: number }[]>`
            select count(*)::int as n from webhook_deliveries d join webhook_events v on v.id = d.event_id
            where v.type = 'campaign.completed' and v.data->>'campaignId' = ${campaignId}
              and d.status = 'delivered'`;
          return n === 1 || undefined;
        },
        10_000,
        'the delivery recorded',
      );
      expect(eventsOf('campaign.completed', campaignId)).toHaveLength(1);
      expect(driver.errors).toEqual([]);
    } finally {
      await driver.stop();
    }
  });
});
