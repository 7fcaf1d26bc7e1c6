import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CALL_CHANGES_CHANNEL } from '../../control/modules/calls/changes.ts';
import { createLogger } from '../../core/observability/index.ts';
import { startHttpServer } from '../../core/server/index.ts';
import { SseParser } from '../../core/wire/sse.ts';
import {
  type Platform,
  reportJambonzStatus,
  browserCall as startBrowserCall,
  startPlatform,
} from './platform.ts';
import {
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

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

/** Heartbeats come this often here, so the tests see several. */
const HEARTBEAT_MS = 200;
const MAX_STREAMS_PER_KEY = 3;

interface SseEvent {
  event: string;
  id: string | null;
  data: Json;
}

/** A client of one event stream over real HTTP: `fetch()` and a reader, as the console reads it. */
interface SseClient {
  status: number;
  headers: Headers;
  /** The error body when the stream was refused. */
  body: Json;
  events: SseEvent[];
  comments: number;
  /** Resolves when the server ended the stream (or the client closed it). */
  ended: Promise<void>;
  isEnded(): boolean;
  /** `event: call` payloads for one call, in the order they came. */
  calls(callId: string): Json[];
  close(): void;
}

async function openStream(
  url: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<SseClient> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const events: SseEvent[] = [];
  const parser = new SseParser();
  let done = false;
  const client: SseClient = {
    status: res.status,
    headers: res.headers,
    body: null,
    events,
    get comments() {
      return parser.comments;
    },
    ended: Promise.resolve(),
    isEnded: () => done,
    calls: (callId) => events.filter((e) => e.event === 'call' && e.data.id === callId).map((e) => e.data),
    close: () => abort.abort(),
  };
  if (res.status !== 200) {
    client.body = await res.json();
    done = true;
    return client;
  }
  const reader = res.body!.getReader();
  client.ended = (async () => {
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        for (const e of parser.push(value))
          events.push({ event: e.event, id: e.id, data: JSON.parse(e.data) });
      }
    } catch {
      // Aborted by `close()`.
    } finally {
      done = true;
    }
  })();
  return client;
}

describe.each(backings)('call streams (server-sent events) on %s', (_name, makeBacking) => {
  let backing: Backing;
  let p: Platform;
  let keyA: string;
  let keyB: string;
  let agentA: string;
  let agentB: string;
  const open: SseClient[] = [];

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    p = await startPlatform(backing, {
      control: {
        workers: { recorder: { blockMs: 50 } },
        callStreams: { heartbeatMs: HEARTBEAT_MS, maxPerKey: MAX_STREAMS_PER_KEY, stepsEveryMs: 100 },
      },
    });
    const a = await makeAccount(p.control, 'streams A');
    const b = await makeAccount(p.control, 'streams B');
    keyA = a.key;
    keyB = b.key;
    const agent = async (key: string, name: string) => {
      const res = await p.api('POST', '/v1/agents', { key, body: { name, brain: 'echo' } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    };
    agentA = await agent(keyA, 'A desk');
    agentB = await agent(keyB, 'B desk');
  });

  afterAll(async () => {
    if (!makeBacking) return;
    for (const s of open) s.close();
    await p?.close();
    await backing?.close();
  });

  const stream = async (path: string, key: string, headers?: Record<string, string>) => {
    const s = await openStream(`${p.url}/v1${path}`, key, headers);
    open.push(s);
    return s;
  };

  const closeAll = async () => {
    for (const s of open.splice(0)) {
      s.close();
      await s.ended;
    }
  };

  const browserCall = (key: string, agentId: string) => startBrowserCall(p, key, agentId);

  /** The call as `GET /v1/calls/{id}` has it, without what only the detail carries. */
  const listed = async (id: string, key = keyA) => {
    const res = await p.api('GET', `/v1/calls/${id}`, { key });
    expect(res.status).toBe(200);
    const { timeline: _t, transcript: _s, latency: _l, recordingUrl: _r, ...call } = res.body;
    return { call, timeline: res.body.timeline as Json[] };
  };

  it.skipIf(!makeBacking)(
    'streams each account’s calls as they start and end, in order, and nothing of another account’s',
    async () => {
      const a = await stream('/calls/events', keyA);
      const b = await stream('/calls/events', keyB);
      expect(a.status).toBe(200);
      expect(a.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(a.headers.get('cache-control')).toBe('no-store');

      const first = await browserCall(keyA, agentA);
      await eventually(() => a.calls(first.id).some((c) => c.status === 'in-progress'), 10_000, 'A live');
      first.client.stop();
      await first.client.closed;
      await eventually(() => a.calls(first.id).some((c) => c.status === 'completed'), 10_000, 'A ended');

      const other = await browserCall(keyB, agentB);
      await eventually(() => b.calls(other.id).some((c) => c.status === 'in-progress'), 10_000, 'B live');
      other.client.stop();
      await eventually(() => b.calls(other.id).some((c) => c.status === 'completed'), 10_000, 'B ended');

      // In order: live, then ended, and nothing after the end; the last is what the API says.
      const statuses = a.calls(first.id).map((c) => c.status);
      expect(statuses[0]).toBe('in-progress');
      expect(statuses.at(-1)).toBe('completed');
      expect(statuses.indexOf('completed')).toBe(statuses.length - 1);
      expect(a.calls(first.id).at(-1)).toEqual((await listed(first.id)).call);
      const ids = a.events.filter((e) => e.data.id === first.id).map((e) => BigInt(e.id!));
      expect(ids).toEqual([...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
      expect(new Set(ids).size).toBe(ids.length);

      // Tenancy: each stream carries its own account's calls only.
      expect(b.calls(first.id)).toEqual([]);
      expect(a.calls(other.id)).toEqual([]);
      expect(b.events.every((e) => e.event === 'call' && e.data.agentId === agentB)).toBe(true);
      expect(a.events.every((e) => e.event === 'call' && e.data.agentId === agentA)).toBe(true);
      // The heartbeat: comment lines, one after another.
      const comments = a.comments;
      await eventually(() => a.comments > comments + 1, 5_000, 'two more heartbeats');
      await closeAll();
    },
    30_000,
  );

  it.skipIf(!makeBacking)(
    'shows a call placed through the API as queued, then the provider’s outcome',
    async () => {
      const a = await stream('/calls/events', keyA);
      const placed = await p.api('POST', '/v1/calls', {
        key: keyA,
        body: { agentId: agentA, to: '+14155550123', from: '+14155550100', provider: 'jambonz' },
      });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      await eventually(() => a.calls(placed.body.id).length > 0, 10_000, 'placed call streamed');
      expect(a.calls(placed.body.id)[0]).toEqual(placed.body);
      await reportJambonzStatus(p.jambonz.calls.get(placed.body.providerCallId)!, 'no-answer');
      await eventually(
        () => a.calls(placed.body.id).some((c) => c.status === 'no-answer'),
        10_000,
        'outcome',
      );
      expect(a.calls(placed.body.id).map((c) => c.status)).toEqual(['queued', 'no-answer']);
      await closeAll();
    },
  );

  it.skipIf(!makeBacking)(
    'streams one call and its timeline as it grows, and only to its own account',
    async () => {
      const { client, id } = await browserCall(keyA, agentA);
      // On record (the stream, as `GET /v1/calls/{id}`, knows calls the recorder has written).
      await eventually(
        async () => (await p.api('GET', `/v1/calls/${id}`, { key: keyA })).status === 200,
        10_000,
        'call recorded',
      );
      const refused = await stream(`/calls/${id}/events`, keyB);
      expect(refused.status).toBe(404);
      expect(refused.body.error).toEqual({ code: 'not_found', message: `no call ${id}` });

      const s = await stream(`/calls/${id}/events`, keyA);
      expect(s.status).toBe(200);
      await eventually(() => s.events.length >= 2, 10_000, 'the call and its first step');
      expect(s.events[0]).toMatchObject({ event: 'call', data: { id, status: 'in-progress' } });
      const timeline = () => s.events.filter((e) => e.event === 'timeline').map((e) => e.data);
      expect(timeline()[0].type).toBe('call.started');

      // A step only the call's own stream carries arrives while the call lives.
      client.ws.send(JSON.stringify({ t: 'text', text: 'where are you located' }));
      const said = await eventually(
        () => timeline().find((e) => e.type === 'user.text'),
        10_000,
        'the caller’s words streamed',
      );
      expect(said.data).toEqual({ text: 'where are you located' });
      expect(timeline().some((e) => e.type === 'call.ended')).toBe(false);

      client.stop();
      await eventually(() => timeline().some((e) => e.type === 'call.ended'), 10_000, 'the end streamed');
      await eventually(() => s.calls(id).at(-1)?.status === 'completed', 10_000, 'the call ended');
      // Every recorded event, each once: the timeline `GET /v1/calls/{id}` has.
      const recorded = await eventually(
        async () => {
          const { timeline: all } = await listed(id);
          return all.length === timeline().length ? all : undefined;
        },
        10_000,
        'the recorded timeline complete',
      );
      const key = (e: Json) => `${e.at} ${String(e.tMs).padStart(9, '0')} ${e.type}`;
      expect([...timeline()].sort((x, y) => key(x).localeCompare(key(y)))).toEqual(
        [...recorded].sort((x, y) => key(x).localeCompare(key(y))),
      );
      const types = timeline().map((e) => e.type);
      expect(types.indexOf('user.text')).toBeLessThan(types.indexOf('call.ended'));
      expect(s.calls(id).at(-1)).toEqual((await listed(id)).call);
      await closeAll();
    },
    30_000,
  );

  it.skipIf(!makeBacking)(
    'streams from a second control node the calls the first one records',
    async () => {
      // Another node on the same database and Store, with no workers: it records nothing itself.
      const other = makeControl(backing, p.env, p.store, {
        workers: { recorder: false, campaigns: false, sweeper: false, dispatcher: false },
        callStreams: { heartbeatMs: HEARTBEAT_MS },
      });
      await other.start();
      const server = startHttpServer({
        port: 0,
        hostname: '127.0.0.1',
        log: createLogger({ level: 'silent', service: 'test' }),
        plane: other,
      });
      try {
        const s = await openStream(`${server.url}/v1/calls/events`, keyA);
        open.push(s);
        expect(s.status).toBe(200);
        const { client, id } = await browserCall(keyA, agentA);
        await eventually(() => s.calls(id).some((c) => c.status === 'in-progress'), 10_000, 'live elsewhere');
        client.stop();
        await eventually(() => s.calls(id).some((c) => c.status === 'completed'), 10_000, 'ended elsewhere');
        expect(s.calls(id).at(-1)).toEqual((await listed(id)).call);
        // Control closing ends its streams: the server need not wait for them.
        await other.close();
        await s.ended;
        expect(other.services.callStreams.open).toBe(0);
      } finally {
        await other.close();
        await server.stop(0);
      }
      await closeAll();
    },
    30_000,
  );

  it.skipIf(!makeBacking)('replays the calls changed since a Last-Event-ID', async () => {
    const a = await stream('/calls/events', keyA);
    const { client, id } = await browserCall(keyA, agentA);
    await eventually(() => a.calls(id).length > 0, 10_000, 'call streamed');
    const firstId = a.events.find((e) => e.data.id === id)!.id!;
    client.stop();
    await eventually(() => a.calls(id).some((c) => c.status === 'completed'), 10_000, 'ended');

    const resumed = await stream('/calls/events', keyA, { 'last-event-id': firstId });
    await eventually(() => resumed.calls(id).some((c) => c.status === 'completed'), 5_000, 'replayed');
    expect(resumed.calls(id)).toEqual([(await listed(id)).call]);
    expect(resumed.events.every((e) => e.data.agentId === agentA)).toBe(true);
    await closeAll();
  });

  it.skipIf(!makeBacking)(
    'bounds a key’s open streams, and frees the slot, the subscription and the timers of a closed one',
    async () => {
      const created = await p.api('POST', '/v1/keys', { key: keyA, body: { name: 'streams' } });
      expect(created.status).toBe(201);
      const key = created.body.secret;
      const slot = `event-streams:${created.body.id}`;
      const streams = [];
      for (let i = 0; i < MAX_STREAMS_PER_KEY; i++) streams.push(await stream('/calls/events', key));
      expect(streams.map((s) => s.status)).toEqual(Array(MAX_STREAMS_PER_KEY).fill(200));
      expect(await p.store.leaseCount(slot)).toBe(MAX_STREAMS_PER_KEY);

      const refused = await stream('/calls/events', key);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.body.error).toMatchObject({
        code: 'at_capacity',
        details: { scope: 'event_streams', count: MAX_STREAMS_PER_KEY, limit: MAX_STREAMS_PER_KEY },
      });
      // Another key of the account has slots of its own.
      expect((await stream('/calls/events', keyA)).status).toBe(200);

      // The client goes: its slot comes back.
      streams[0]!.close();
      await eventually(
        async () => (await p.store.leaseCount(slot)) === MAX_STREAMS_PER_KEY - 1,
        5_000,
        'freed',
      );
      expect((await stream('/calls/events', key)).status).toBe(200);
      const streamsHere = p.control.services.callStreams;
      expect(streamsHere.open).toBe(MAX_STREAMS_PER_KEY + 1);
      expect(streamsHere.subscribed).toBe(true);
      expect(await p.store.publish(CALL_CHANGES_CHANNEL, '[]')).toBe(1);

      // Every client goes: nothing is left behind.
      await closeAll();
      await eventually(() => streamsHere.open === 0, 5_000, 'every stream ended');
      expect(streamsHere.activeTimers).toBe(0);
      expect(streamsHere.subscribed).toBe(false);
      await eventually(
        async () => (await p.store.publish(CALL_CHANGES_CHANNEL, '[]')) === 0,
        5_000,
        'unsubscribed',
      );
      expect(await p.store.leaseCount(slot)).toBe(0);
    },
  );

  it.skipIf(!makeBacking)('ends the streams of a key revoked while they are open', async () => {
    const created = await p.api('POST', '/v1/keys', { key: keyA, body: { name: 'revoked later' } });
    const s = await stream('/calls/events', created.body.secret);
    const c = await stream(`/calls/events`, keyA);
    expect(s.status).toBe(200);
    expect((await p.api('DELETE', `/v1/keys/${created.body.id}`, { key: keyA })).status).toBe(200);
    await s.ended;
    expect(s.isEnded()).toBe(true);
    // The account's other key streams on.
    const comments = c.comments;
    await eventually(() => c.comments > comments + 1, 5_000, 'the other stream beats');
    expect(c.isEnded()).toBe(false);
    const again = await stream('/calls/events', created.body.secret);
    expect(again.status).toBe(401);
    await closeAll();
  });
});
