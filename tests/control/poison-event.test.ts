/**
 * No poison event: a browser that ends its call with a NUL in the stop reason must not stop
 * recording for every account. Over real sockets, against core and control on PostgreSQL and
 * Redis: the NUL stop is recorded clean, and the next ordinary call reaches Postgres promptly.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { keys } from '../../core/store/index.ts';
import type { MediaClient } from '../support/media-clients.ts';
import { type Platform, browserCall as startBrowserCall, startPlatform } from './platform.ts';
import { type Backing, eventually, type Json, makeAccount, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

/** How long the next call may take to reach Postgres after a poisoned one. */
const RECORDED_WITHIN_MS = 5_000;

describe.skipIf(!redisUrl || !postgresUrl)('a NUL in a native stop reason on PostgreSQL and Redis', () => {
  let backing: Backing;
  let p: Platform;
  let key: string;
  let agentId: string;

  beforeAll(async () => {
    backing = await postgresAndRedis(postgresUrl!, redisUrl!);
    p = await startPlatform(backing);
    ({ key } = await makeAccount(p.control, 'poisoned'));
    const agent = await p.api('POST', '/v1/agents', { key, body: { name: 'Browser', brain: 'echo' } });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    agentId = agent.body.id;
  });

  afterAll(async () => {
    await p?.close();
    await backing?.close();
  });

  /** A browser call on /v1/realtime/voice with a realtime token, started and ready. */
  const browserCall = async (callId: string): Promise<{ client: MediaClient; id: string }> => {
    const { client, id } = await startBrowserCall(p, key, agentId, callId);
    // The session is live once its timeline has its first step.
    await eventually(
      async () => (await p.store.range(keys.callTimeline(id))).length > 0,
      5_000,
      `call ${id} started`,
    );
    return { client, id };
  };

  const ended = (callId: string, withinMs: number) =>
    eventually(
      async () => {
        const res = await p.api('GET', `/v1/calls/${callId}`, { key });
        return res.status === 200 && res.body.status === 'completed' ? (res.body as Json) : undefined;
      },
      withinMs,
      `call ${callId} recorded as completed`,
    );

  it('records the poisoned call clean and the next call within 5 s; nothing is left pending', async () => {
    const { client: first, id: poisoned } = await browserCall(`web-nul-${crypto.randomUUID()}`);
    first.ws.send('{"t":"stop","reason":"bye\\u0000"}');
    await first.closed;

    const { client: second, id: next } = await browserCall(`web-next-${crypto.randomUUID()}`);
    const stoppedAt = performance.now();
    second.stop();
    await second.closed;
    const call = await ended(next, RECORDED_WITHIN_MS);
    console.log(`next call recorded ${Math.round(performance.now() - stoppedAt)} ms after its stop`);
    expect(call.timeline.map((e: Json) => e.type)).toContain('call.ended');

    const bad = await ended(poisoned, RECORDED_WITHIN_MS);
    const end = bad.timeline.find((e: Json) => e.type === 'call.ended');
    expect(end.data.detail).toBe('bye');
    expect(end.data.reason).toBe('stream_stopped');

    // Nothing refused, nothing stuck: the recorder's group has no pending entries.
    const [{ n }] = await backing.sql<{ n: number }[]>`select count(*)::int as n from dead_letters`;
    expect(n).toBe(0);
    expect(await p.store.claimIdle(keys.events, 'recorder', 'probe', { minIdleMs: 0, count: 100 })).toEqual(
      [],
    );
  });
});
