import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REALTIME_TTL_SEC } from '../../../control/modules/realtime/model.ts';
import { RealtimeService } from '../../../control/modules/realtime/service.ts';
import { mintToken, verifyToken } from '../../../core/auth/tokens.ts';
import { CallCapacity } from '../../../core/capacity/index.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { MediaServer } from '../../../core/realtime/index.ts';
import { callNamespace, nativeCallId } from '../../../core/realtime/native-call-id.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, MemoryStore } from '../../../core/store/index.ts';
import { type MediaClient, nativeClient } from '../../support/media-clients.ts';

const SECRET = 'tenancy-test-secret-0123456789';
const API_KEY = 'sk_test_tenancy';
const KEY_PROTOCOLS = ['sipai.v1', `sipai.key.${API_KEY}`];

async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** One core node's media server over a shared Store and capacity. */
function node(store: MemoryStore, capacity: CallCapacity) {
  const log = createLogger({ level: 'silent', service: 'test' });
  const media = new MediaServer({
    store,
    log,
    tokenSecrets: [SECRET],
    realtimeApiKey: API_KEY,
    maxBufferedBytes: 1 << 20,
    maxMessageBytes: 64 * 1024,
    idleTimeoutMs: 30_000,
    maxDurationMs: 60_000,
    capacity,
  });
  const http: RunningHttpServer = startHttpServer({
    port: 0,
    hostname: '127.0.0.1',
    log,
    plane: {
      fetch: (req, server) => media.upgrade(req, server, new URL(req.url)),
      websocket: media.websocket,
    },
  });
  return {
    media,
    wsBase: `ws://127.0.0.1:${http.server.port}`,
    async stop() {
      await media.drain(0);
      await http.stop(0);
    },
  };
}

type Outcome =
  | { started: string; client: MediaClient }
  | { closed: { code: number; reason: string }; error: unknown; client: MediaClient };

/** Opens a native call and waits until it started (its `call.started` event) or was refused. */
async function call(
  n: ReturnType<typeof node>,
  o: { callId: string; agentId: string; token?: string; key?: boolean },
): Promise<Outcome> {
  const before = new Set(n.media.sessions.values());
  const client = await nativeClient({
    baseWsUrl: n.wsBase,
    callId: o.callId,
    agentId: o.agentId,
    sampleRate: 16000,
    token: o.token,
    protocols: o.key ? KEY_PROTOCOLS : undefined,
  });
  let closed: { code: number; reason: string } | null = null;
  void client.closed.then((c) => {
    closed = c;
  });
  client.start();
  const startedEvent = () =>
    client.heard.other.find(
      (m) =>
        (m as { t?: string; name?: string }).t === 'event' &&
        (m as { name?: string }).name === 'call.started',
    ) as { data: { callId: string; clientCallId: string } } | undefined;
  // The session this client started, whether or not the server announced its id.
  const session = () =>
    [...n.media.sessions.values()].find((s) => !before.has(s) && s.providerCallId === o.callId);
  await until(
    () => startedEvent() !== undefined || session() !== undefined || closed !== null,
    `call ${o.callId} to start or close`,
  );
  await until(
    () => startedEvent() !== undefined || closed !== null || session() === undefined,
    'its announcement',
    2000,
  ).catch(() => {});
  const started = startedEvent();
  if (started) {
    expect(started.data.clientCallId).toBe(o.callId);
    return { started: started.data.callId, client };
  }
  const unannounced = session();
  if (unannounced) return { started: unannounced.callId, client };
  const error = client.heard.other.find((m) => (m as { t?: string }).t === 'error');
  return { closed: closed!, error, client };
}

const realtimeToken = (agentId: string, accountId?: string) =>
  mintToken(SECRET, { kind: 'realtime', agentId, ...(accountId ? { accountId } : {}) }, 60);

const endCall = async (wsBase: string, outcome: Outcome) => {
  outcome.client.stop();
  await outcome.client.closed;
  void wsBase;
};

describe('native sessions inside tenancy', () => {
  const store = new MemoryStore();
  const capacity = new CallCapacity(store, { globalMax: 100, perCampaignMax: 10, ttlMs: 30_000 });
  let a: ReturnType<typeof node>;
  let b: ReturnType<typeof node>;

  beforeAll(async () => {
    await store.set(keys.agent('agt_a'), JSON.stringify({ brain: 'echo', accountId: 'acc_a' }));
    await store.set(keys.agent('agt_b'), JSON.stringify({ brain: 'echo', accountId: 'acc_b' }));
    a = node(store, capacity);
    b = node(store, capacity);
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await store.close();
  });

  it('a token opens only agents of its own account, and one without an account only built-ins', async () => {
    const foreign = await call(a, { callId: 'c1', agentId: 'agt_b', token: realtimeToken('agt_b', 'acc_a') });
    expect('closed' in foreign && foreign.closed.code).toBe(1008);
    // Refused exactly like an agent that does not exist: no probing of other accounts.
    expect('closed' in foreign && foreign.error).toMatchObject({
      code: 'forbidden',
      message: 'unknown agent agt_b',
    });

    const own = await call(a, { callId: 'c1', agentId: 'agt_a', token: realtimeToken('agt_a', 'acc_a') });
    expect('started' in own && own.started).toBe(nativeCallId(callNamespace({ accountId: 'acc_a' }), 'c1'));
    if ('started' in own) expect(a.media.sessions.get(own.started)?.call.accountId).toBe('acc_a');
    await endCall(a.wsBase, own);

    const noAccount = await call(a, { callId: 'c2', agentId: 'agt_a', token: realtimeToken('agt_a') });
    expect('closed' in noAccount && noAccount.closed.code).toBe(1008);
    const builtin = await call(a, { callId: 'c2', agentId: 'echo', token: realtimeToken('echo') });
    expect('started' in builtin).toBe(true);
    await endCall(a.wsBase, builtin);
  });

  it('the API key opens any agent; the call is its agent’s account’s, under the key’s namespace', async () => {
    const opened = await call(a, { callId: 'op-1', agentId: 'agt_b', key: true });
    expect('started' in opened && opened.started).toBe(
      nativeCallId(callNamespace({ apiKey: API_KEY }), 'op-1'),
    );
    if ('started' in opened) {
      expect(opened.started).toMatch(/^web_[0-9a-f]{12}_op-1$/);
      expect(opened.started).not.toContain(API_KEY);
      expect(a.media.sessions.get(opened.started)?.call.accountId).toBe('acc_b');
    }
    await endCall(a.wsBase, opened);
  });

  it('a client reusing another call’s id cannot touch that call', async () => {
    // A phone call that ended, and a campaign call's variables.
    const victim = 'CA0123456789abcdef0123456789abcdef';
    await store.append(keys.callTimeline(victim), {
      type: 'call.started',
      callId: victim,
      at: new Date().toISOString(),
    });
    await store.append(keys.callTimeline(victim), {
      type: 'call.ended',
      callId: victim,
      at: new Date().toISOString(),
      data: JSON.stringify({ reason: 'provider_hangup' }),
    });
    const campaignCall = 'cal_0123456789abcdefghijklmnop';
    await store.set(keys.callContext(campaignCall), JSON.stringify({ variables: { name: 'Ada' } }), 60_000);

    for (const [clientCallId, attacker] of [
      [victim, { key: true }],
      [victim, { token: realtimeToken('agt_a', 'acc_a') }],
      [campaignCall, { token: realtimeToken('agt_a', 'acc_a') }],
    ] as const) {
      const outcome = await call(a, { callId: clientCallId, agentId: 'agt_a', ...attacker });
      if (!('started' in outcome)) throw new Error(`not started: ${JSON.stringify(outcome.closed)}`);
      expect(outcome.started).not.toBe(clientCallId);
      expect(outcome.started.startsWith('web_')).toBe(true);
      // The campaign contact's variables stay with the campaign call.
      expect(a.media.sessions.get(outcome.started)?.call.variables).toEqual({});
      await endCall(a.wsBase, outcome);
      await until(async () => {
        const own = await store.range(keys.callTimeline(outcome.started));
        return own.at(-1)?.fields.type === 'call.ended';
      }, 'the session to end');
    }
    const timeline = await store.range(keys.callTimeline(victim));
    expect(timeline.map((e) => e.fields.type)).toEqual(['call.started', 'call.ended']);
    expect(JSON.parse(timeline[1]!.fields.data!)).toEqual({ reason: 'provider_hangup' });
    const global = (await store.range(keys.events)).filter((e) => e.fields.callId === victim);
    expect(global).toEqual([]);
  });

  it('a client reusing its own live call id is refused, on this node and on another', async () => {
    const first = await call(a, { callId: 'dup', agentId: 'agt_a', key: true });
    if (!('started' in first)) throw new Error('first call did not start');
    for (const n of [a, b]) {
      const again = await call(n, { callId: 'dup', agentId: 'agt_a', key: true });
      expect('closed' in again && again.closed).toEqual({
        code: 1008,
        reason: 'this call already has a live stream',
      });
    }
    expect(a.media.sessions.get(first.started)?.isClosed).toBe(false);
    await endCall(a.wsBase, first);
    // Once it ended, the client may use the id again (its own call, in its own namespace).
    await until(async () => (await capacity.counts()).global.count === 0, 'the leases to be released');
    const later = await call(b, { callId: 'dup', agentId: 'agt_a', key: true });
    expect('started' in later && later.started).toBe(first.started);
    await endCall(b.wsBase, later);
  });
});

describe('native sessions inside capacity', () => {
  const store = new MemoryStore();
  const capacity = new CallCapacity(store, { globalMax: 2, perCampaignMax: 10, ttlMs: 30_000 });
  let n: ReturnType<typeof node>;

  beforeAll(async () => {
    await store.set(
      keys.agent('agt_one'),
      JSON.stringify({ brain: 'echo', accountId: 'acc_a', maxConcurrentCalls: 1 }),
    );
    n = node(store, capacity);
  });
  afterAll(async () => {
    await n.stop();
    await store.close();
  });

  it('take the global and agent leases, are refused with at_capacity and 1013, and release on end', async () => {
    const global = async () => (await capacity.counts()).global.count;
    const first = await call(n, { callId: 'cap-1', agentId: 'agt_one', key: true });
    if (!('started' in first)) throw new Error('first call did not start');
    expect(await global()).toBe(1);
    expect((await capacity.counts({ agents: ['agt_one'] })).agents.agt_one?.count).toBe(1);

    // The agent allows one call at a time.
    const sameAgent = await call(n, { callId: 'cap-2', agentId: 'agt_one', key: true });
    expect('closed' in sameAgent && sameAgent.closed.code).toBe(1013);
    expect('closed' in sameAgent && sameAgent.error).toMatchObject({ code: 'at_capacity' });

    // The deployment allows two.
    const second = await call(n, { callId: 'cap-3', agentId: 'echo', key: true });
    expect('started' in second).toBe(true);
    const third = await call(n, { callId: 'cap-4', agentId: 'echo', key: true });
    expect('closed' in third && third.closed.code).toBe(1013);
    expect('closed' in third && third.error).toMatchObject({ code: 'at_capacity' });
    expect(await global()).toBe(2);

    await endCall(n.wsBase, first);
    await endCall(n.wsBase, second);
    await until(async () => (await global()) === 0, 'the leases to be released');
    const again = await call(n, { callId: 'cap-4', agentId: 'agt_one', key: true });
    expect('started' in again).toBe(true);
    await endCall(n.wsBase, again);
    await until(async () => (await global()) === 0, 'the last lease to be released');
  });
});

describe('realtime tokens minted by control', () => {
  it('carry the account that minted them', async () => {
    const agents = { get: async () => ({}) } as never;
    const service = new RealtimeService(agents, {
      secret: SECRET,
      publicBaseUrl: 'https://api.example.test',
    });
    const { token } = await service.createToken('acc_minter', {
      agentId: 'agt_x',
      ttlSec: DEFAULT_REALTIME_TTL_SEC,
    });
    const verified = verifyToken(SECRET, token, { kind: 'realtime' });
    expect(verified.ok && verified.claims).toMatchObject({ agentId: 'agt_x', accountId: 'acc_minter' });
  });
});
