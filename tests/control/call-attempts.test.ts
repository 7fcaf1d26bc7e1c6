import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../core/observability/index.ts';
import { Timeline } from '../../core/session/timeline.ts';
import { keys } from '../../core/store/index.ts';
import { type Platform, postJambonz, startPlatform } from './platform.ts';
import { type Backing, embedded, eventually, type Json, makeAccount, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const silent = createLogger({ level: 'silent', service: 'test' });

/** The deployment's admin key: the bootstrap account's, made on the first start. */
const ADMIN_KEY = `sk_live_${'attempts'.repeat(4)}`;

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

let numberSeq = Math.floor(Math.random() * 1e6);
const nextNumber = () => `+1666${String(numberSeq++ % 1e7).padStart(7, '0')}`;
const nextSid = () => `in-${crypto.randomUUID()}`;

/**
 * Every call a provider offers core leaves a call record, whatever became of it: refused (full,
 * unrouted, an agent core does not know, a replay of an ended call), admitted but never
 * streamed, or run by a built-in agent. Each is owned by its number's or agent's account, or
 * else by the deployment's admin (bootstrap) account, and says why it ended.
 */
describe.each(backings)('every call attempt on record, on %s', (_name, makeBacking) => {
  let backing: Backing;
  let p: Platform;
  let keyA: string;
  let accountA: string;
  let agentA: Json;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    p = await startPlatform(backing, {
      env: { ADMIN_API_KEY: ADMIN_KEY },
      control: { workers: { recorder: { blockMs: 50 }, campaigns: false, sweeper: false } },
    });
    const a = await makeAccount(p.control, 'A');
    keyA = a.key;
    accountA = a.accountId;
    const res = await p.api('POST', '/v1/agents', {
      key: keyA,
      body: { name: 'A desk', brain: 'echo', maxConcurrentCalls: 1 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    agentA = res.body;
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await p?.close();
    await backing?.close();
  });

  /** Jambonz offering core an inbound call (signed, as Jambonz sends it); returns core's verbs. */
  const offer = async (callSid: string, to: string, extra: Record<string, unknown> = {}) => {
    const res = await postJambonz(`${p.url}/telephony/jambonz/call`, {
      call_sid: callSid,
      direction: 'inbound',
      from: '+15550001234',
      to,
      call_status: 'trying',
      account_sid: 'fake',
      ...extra,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Json[];
  };

  const reportStatus = async (callSid: string, status: string) => {
    const res = await postJambonz(`${p.url}/telephony/jambonz/status`, {
      call_sid: callSid,
      call_status: status,
      direction: 'inbound',
      account_sid: 'fake',
    });
    expect(res.status).toBe(204);
  };

  const call = (id: string, key: string) => p.api('GET', `/v1/calls/${id}`, { key });

  const recorded = (id: string, key: string, done: (c: Json) => boolean, what: string) =>
    eventually(
      async () => {
        const res = await call(id, key);
        return res.status === 200 && done(res.body) ? res.body : undefined;
      },
      15_000,
      what,
    );

  const refusal = (c: Json) => c.timeline.find((e: Json) => e.type === 'call.refused')?.data;

  it.skipIf(!makeBacking)(
    'records an unrouted call as refused, for the deployment’s admin account',
    async () => {
      const sid = nextSid();
      const to = nextNumber();
      const verbs = await offer(sid, to);
      expect(verbs[0]).toMatchObject({ verb: 'sip:decline', status: 404 });
      const c = await recorded(sid, ADMIN_KEY, (x) => x.status === 'refused', 'unrouted call recorded');
      expect(c).toMatchObject({
        id: sid,
        provider: 'jambonz',
        agentId: null,
        direction: 'inbound',
        from: '+15550001234',
        to,
        status: 'refused',
        endReason: 'no_route',
      });
      expect(c.endedAt).toBeTypeOf('string');
      expect(refusal(c)).toMatchObject({ reason: 'no_route', from: '+15550001234', to });
      expect((await call(sid, keyA)).status).toBe(404);
    },
  );

  it.skipIf(!makeBacking)(
    'records a call refused at capacity for its number’s account, with the limit that was full; an admitted call that never streamed is closed as such',
    async () => {
      const to = nextNumber();
      const number = await p.api('POST', '/v1/numbers', {
        key: keyA,
        body: { phoneNumber: to, provider: 'jambonz', agentId: agentA.id },
      });
      expect(number.status, JSON.stringify(number.body)).toBe(201);
      const first = nextSid();
      expect((await offer(first, to))[0]).toMatchObject({ verb: 'listen' });
      const second = nextSid();
      expect((await offer(second, to))[0]).toMatchObject({ verb: 'sip:decline', status: 503 });

      const refused = await recorded(second, keyA, (x) => x.status === 'refused', 'refused call recorded');
      expect(refused).toMatchObject({
        agentId: agentA.id,
        direction: 'inbound',
        to,
        status: 'refused',
        endReason: 'at_capacity',
      });
      expect(refusal(refused)).toMatchObject({
        reason: 'at_capacity',
        scope: 'agent',
        count: 1,
        limit: 1,
        accountId: accountA,
      });
      expect((await call(second, ADMIN_KEY)).status).toBe(404);

      // The first call was admitted, but its media stream never came; then the provider ends it.
      await reportStatus(first, 'completed');
      const closedCall = await recorded(
        first,
        keyA,
        (x) => x.status !== 'queued',
        'never-streamed call closed',
      );
      expect(closedCall).toMatchObject({
        agentId: agentA.id,
        direction: 'inbound',
        from: '+15550001234',
        to,
        status: 'failed',
        endReason: 'never_streamed',
      });
      expect(closedCall.timeline.map((e: Json) => e.type)).toEqual(['call.admitted', 'call.status']);

      // A replay of its call webhook is refused and noted; the record keeps its verdict.
      expect((await offer(first, to))[0]).toMatchObject({ verb: 'sip:decline', status: 486 });
      const replayed = await recorded(
        first,
        keyA,
        (x) => x.timeline.some((e: Json) => e.type === 'call.refused'),
        'replay noted',
      );
      expect(refusal(replayed)).toMatchObject({ reason: 'ended' });
      expect(replayed).toMatchObject({ status: 'failed', endReason: 'never_streamed' });
    },
  );

  it.skipIf(!makeBacking)(
    'records a call whose route names an agent core does not know, for the number’s account',
    async () => {
      const to = nextNumber();
      await p.store.set(
        keys.numberRoute(to),
        JSON.stringify({
          agentId: 'agt_0000000000000000000000gone',
          accountId: accountA,
          provider: 'jambonz',
        }),
      );
      const sid = nextSid();
      expect((await offer(sid, to))[0]).toMatchObject({ verb: 'sip:decline', status: 404 });
      const c = await recorded(sid, keyA, (x) => x.status === 'refused', 'unknown-agent call recorded');
      expect(c).toMatchObject({
        agentId: 'agt_0000000000000000000000gone',
        direction: 'inbound',
        status: 'refused',
        endReason: 'unknown_agent',
      });
    },
  );

  it.skipIf(!makeBacking)('records calls of built-in agents for the deployment’s admin account', async () => {
    // A session of the built-in echo agent, as core's timeline writes it.
    const session = `echo-${crypto.randomUUID()}`;
    const timeline = new Timeline(p.store, silent, { callId: session, agentId: 'echo', protocol: 'native' });
    timeline.append('call.started', { protocol: 'native', direction: 'inbound' });
    timeline.append('call.ended', { reason: 'client_closed', durationMs: 10, turns: 0 });
    expect(await timeline.flush()).toBe(true);
    const ran = await recorded(session, ADMIN_KEY, (x) => x.status === 'completed', 'echo session recorded');
    expect(ran).toMatchObject({ agentId: 'echo', provider: 'native', direction: 'inbound' });

    // A provider call a webhook names the built-in agent for, admitted, never streamed.
    const sid = nextSid();
    expect((await offer(sid, nextNumber(), { customerData: { agentId: 'echo' } }))[0]).toMatchObject({
      verb: 'listen',
    });
    await reportStatus(sid, 'completed');
    const closed = await recorded(sid, ADMIN_KEY, (x) => x.status !== 'queued', 'echo call closed');
    expect(closed).toMatchObject({ agentId: 'echo', status: 'failed', endReason: 'never_streamed' });
    expect((await call(sid, keyA)).status).toBe(404);
  });
});
