import { Control, type ControlOptions } from '../../control/app.ts';
import { Core, isCorePath } from '../../core/app.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../core/server/index.ts';
import type { Store } from '../../core/store/index.ts';
import { signJambonz } from '../../core/telephony/signatures/index.ts';
import { type FakeJambonz, type FakeJambonzCall, startFakeJambonz } from '../support/fakes/jambonz-rest.ts';
import { type MediaClient, nativeClient, startedCallId } from '../support/media-clients.ts';
import { freePort } from '../support/services.ts';
import { type ApiClient, apiClient, type Backing } from './support.ts';

export const REALTIME_SECRET = 'test-realtime-secret-0123456789';
export const JAMBONZ_SECRET = 'jambonz-webhook-secret-for-tests';

/**
 * core and control in one process on one port, as `npm start` runs them, over a test backing,
 * with a local fake Jambonz REST server as the provider. Provider webhooks reach core's real
 * routes at `url` (PUBLIC_BASE_URL), so outbound calls go the whole way round.
 */
export interface Platform {
  url: string;
  core: Core;
  /** The control plane now serving (replaced by `restartControl`). */
  control: Control;
  api: ApiClient;
  jambonz: FakeJambonz;
  env: Record<string, string>;
  store: Store;
  /** Closes control (its workers stop) and starts a new one on the same database and Store. */
  restartControl(): Promise<Control>;
  close(): Promise<void>;
}

export interface PlatformOptions {
  env?: Record<string, string>;
  store?: Store;
  control?: Partial<ControlOptions>;
}

export async function startPlatform(backing: Backing, opts: PlatformOptions = {}): Promise<Platform> {
  const jambonz = startFakeJambonz();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    REALTIME_WS_SECRET: REALTIME_SECRET,
    PUBLIC_BASE_URL: url,
    JAMBONZ_API_BASE_URL: jambonz.url,
    JAMBONZ_ACCOUNT_SID: jambonz.accountSid,
    JAMBONZ_API_KEY: jambonz.apiKey,
    JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
    API_RATE_LIMIT_PER_MIN: '1000000',
    ...opts.env,
  };
  const config = parseConfig(env);
  const store = opts.store ?? backing.store;
  // TEST_LOG_LEVEL=debug shows what core and control log while a test runs.
  const log = createLogger({ level: (process.env.TEST_LOG_LEVEL as 'silent') ?? 'silent', service: 'test' });
  const core = new Core({ config, store, log });
  const makeControl = () =>
    new Control({
      config,
      log,
      sql: backing.sql,
      store,
      databaseKind: backing.databaseKind,
      ...opts.control,
    });
  let control = makeControl();
  await control.start();
  const http: RunningHttpServer = startHttpServer({
    port,
    hostname: '127.0.0.1',
    log,
    plane: {
      fetch: (req, server) =>
        isCorePath(new URL(req.url).pathname) ? core.fetch(req, server) : control.fetch(req, server),
      websocket: core.websocket,
    },
  });
  const platform: Platform = {
    url,
    core,
    control,
    api: apiClient(control),
    jambonz,
    env,
    store,
    async restartControl() {
      await control.close();
      control = makeControl();
      await control.start();
      platform.control = control;
      platform.api = apiClient(control);
      return control;
    },
    async close() {
      await control.close();
      await core.drain(0);
      await http.stop(0);
      jambonz.stop();
    },
  };
  return platform;
}

/** POSTs a JSON webhook to core as Jambonz does: signed with Jambonz-Signature. */
export async function postJambonz(url: string, body: unknown): Promise<Response> {
  const text = JSON.stringify(body);
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'jambonz-signature': signJambonz(JAMBONZ_SECRET, text, Math.floor(Date.now() / 1000)),
    },
    body: text,
  });
}

type HookName = 'call_hook' | 'call_status_hook';

function hookUrl(call: FakeJambonzCall, name: HookName): string {
  const hook = call.request[name] as { url: string } | string;
  return typeof hook === 'string' ? hook : hook.url;
}

/** The payload of a Jambonz webhook for a call the fake placed (docs.jambonz.org, webhooks). */
export function jambonzPayload(call: FakeJambonzCall, fields: Record<string, unknown>) {
  return {
    call_sid: call.sid,
    direction: 'outbound',
    from: call.request.from,
    to: (call.request.to as { number: string }).number,
    account_sid: 'fake',
    customerData: call.request.tag,
    ...fields,
  };
}

/** Answers a placed call: Jambonz asks the call hook for verbs. Returns core's verbs. */
export async function answerJambonzCall(call: FakeJambonzCall): Promise<Record<string, unknown>[]> {
  const res = await postJambonz(
    hookUrl(call, 'call_hook'),
    jambonzPayload(call, { call_status: 'in-progress' }),
  );
  if (res.status !== 200) throw new Error(`call hook answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>[];
}

/** Reports a call's status to its status hook, as Jambonz does. */
export async function reportJambonzStatus(call: FakeJambonzCall, status: string): Promise<void> {
  if (status === 'completed' || status === 'busy' || status === 'no-answer' || status === 'failed') {
    call.status = 'completed';
  }
  const res = await postJambonz(
    hookUrl(call, 'call_status_hook'),
    jambonzPayload(call, { call_status: status }),
  );
  if (res.status !== 204) throw new Error(`status hook answered ${res.status}`);
}

export type JambonzOutcome = 'completed' | 'busy' | 'no-answer' | 'failed';

export interface JambonzDriverOptions {
  /** What happens to the n-th call placed (0-based). */
  outcome(call: FakeJambonzCall, index: number): JambonzOutcome;
  /** Ring time before the call is answered or refused. */
  ringMs(): number;
  /** How long an answered call lasts. */
  talkMs(): number;
}

/**
 * Plays the Jambonz side of every call the fake accepts: after a short ring, either answers
 * (call hook to core, then `completed` to the status hook after the talk time) or reports
 * busy / no-answer / failed. Errors are collected, not thrown.
 */
export function driveJambonzCalls(fake: FakeJambonz, opts: JambonzDriverOptions) {
  // Calls placed before the driver started belong to other tests.
  const seen = new Set<string>(fake.calls.keys());
  const pending = new Set<Promise<void>>();
  const errors: string[] = [];
  let placed = 0;
  let stopped = false;
  const play = async (call: FakeJambonzCall, index: number) => {
    const outcome = opts.outcome(call, index);
    await Bun.sleep(opts.ringMs());
    if (outcome === 'completed') {
      const verbs = await answerJambonzCall(call);
      if (verbs[0]?.verb !== 'listen')
        throw new Error(`call ${call.sid} was not admitted: ${JSON.stringify(verbs)}`);
      await reportJambonzStatus(call, 'in-progress');
      await Bun.sleep(opts.talkMs());
    }
    await reportJambonzStatus(call, outcome);
  };
  const timer = setInterval(() => {
    if (stopped) return;
    for (const call of fake.calls.values()) {
      if (seen.has(call.sid)) continue;
      seen.add(call.sid);
      const p = play(call, placed++).catch((err: unknown) => {
        errors.push((err as Error).message);
      });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  }, 5);
  return {
    errors,
    get placed() {
      return placed;
    },
    /** Calls placed and not yet ended by a final status. */
    live(): number {
      let n = 0;
      for (const call of fake.calls.values()) if (call.status !== 'completed') n++;
      return n;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await Promise.allSettled([...pending]);
    },
  };
}

/**
 * A browser call on `/v1/realtime/voice` with a realtime token minted for `key`, started: the
 * client and the id the server gave the call (its own namespace, said in `call.started`).
 */
export async function browserCall(
  p: Platform,
  key: string,
  agentId: string,
  callId = `web-${crypto.randomUUID()}`,
): Promise<{ client: MediaClient; id: string }> {
  const token = await p.api('POST', '/v1/realtime/tokens', { key, body: { agentId, callId } });
  if (token.status !== 200) throw new Error(`realtime token: ${token.status} ${JSON.stringify(token.body)}`);
  const client = await nativeClient({
    baseWsUrl: `${p.url.replace('http', 'ws')}/v1`,
    callId,
    agentId,
    token: token.body.token,
  });
  client.start();
  return { client, id: await startedCallId(client, callId) };
}
