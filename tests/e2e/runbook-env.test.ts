import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Core } from '../../core/app.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../core/server/index.ts';
import { MemoryStore } from '../../core/store/index.ts';
import { signJambonz } from '../../core/telephony/signatures/index.ts';
import { createTestDatabase } from '../support/databases.ts';
import { type FakeJambonz, startFakeJambonz } from '../support/fakes/jambonz-rest.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

const ADMIN_KEY = 'sk_live_runbook_env_test_0123456789abcdef';
const SHARED_SECRET = 'telephony-shared-secret-0123456789';
const APP_SID = 'app-runbook-outbound';

type Json = Record<string, unknown>;

async function api(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Json & { error?: Json } };
}

describe.skipIf(!redisUrl || !postgresUrl)(
  'control/main.ts booted with only the runbooks’ environment names, on Redis and PostgreSQL',
  () => {
    let jambonz: FakeJambonz;
    let db: { url: string; drop(): Promise<void> };
    let control: RunningEntry;
    let base: string;

    beforeAll(async () => {
      jambonz = startFakeJambonz({ applicationSids: [APP_SID] });
      db = await createTestDatabase(postgresUrl!);
      control = startEntry('control/main.ts', {
        PORT: '0',
        LOG_LEVEL: 'info',
        // The runbooks' names, nothing of ours but what they have no name for.
        DB_URL: db.url,
        REDIS_URL: redisUrl!,
        STORE_PREFIX: `runbook-env-${Date.now()}:`,
        JAMBONZ_OUTCALL_URL: `${jambonz.url}/v1/Accounts/${jambonz.accountSid}/Calls`,
        JAMBONZ_TOKEN: `Bearer ${jambonz.apiKey}`,
        JAMBONZ_APP_SID: APP_SID,
        MAX_CONCURRENT_CALLS: '2',
        API_BASE_URL: 'https://voice.example.com/v1',
        WEBHOOK_BASE_URL: 'https://voice.example.com',
        TELEPHONY_SHARED_SECRET: SHARED_SECRET,
        REALTIME_WS_SECRET: 'runbook-env-realtime-secret-0123456789',
        ADMIN_API_KEY: ADMIN_KEY,
      });
      [, base] = (await control.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"control listening"/, 60_000)) as [
        string,
        string,
      ];
      await control.waitFor(/"msg":"migrations done"/, 60_000);
    }, 120_000);

    afterAll(async () => {
      if (control?.proc.exitCode === null) await control.stop('SIGKILL');
      jambonz?.stop();
      await db?.drop();
    });

    it('logs which runbook names it read, never their values', () => {
      const out = control.output();
      for (const alias of [
        'DB_URL',
        'JAMBONZ_OUTCALL_URL',
        'JAMBONZ_TOKEN',
        'JAMBONZ_APP_SID',
        'MAX_CONCURRENT_CALLS',
        'API_BASE_URL',
        'WEBHOOK_BASE_URL',
      ]) {
        expect(out).toMatch(new RegExp(`"alias":"${alias}".*"msg":"config alias used"`));
      }
      expect(out).not.toContain(jambonz.apiKey);
      expect(out).not.toContain(SHARED_SECRET);
    });

    it('places calls through the Jambonz at JAMBONZ_OUTCALL_URL and answers the third concurrent one with 429 naming the limit', async () => {
      const agent = await api(base, 'POST', '/v1/agents', {
        name: 'Prod Canary Agent',
        config: { prompt: 'You are a helpful agent.' },
      });
      expect(agent.status, JSON.stringify(agent.body)).toBe(201);
      const call = (n: number) =>
        api(base, 'POST', '/v1/calls', {
          agentId: agent.body.id,
          provider: 'jambonz',
          from: '+14155550100',
          to: `+1415555020${n}`,
        });
      const answers = await Promise.all([call(1), call(2), call(3)]);
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses, JSON.stringify(answers.map((a) => a.body))).toEqual([201, 201, 429]);
      const refused = answers.find((a) => a.status === 429)!;
      expect(refused.body.error).toMatchObject({
        code: 'at_capacity',
        details: { scope: 'originated', count: 2, limit: 2 },
      });
      expect(String(refused.body.error!.message)).toContain('MAX_CONCURRENT_CALLS');
      expect(String(refused.body.error!.message)).toContain('limit of 2');

      const creates = jambonz.requests.filter((r) => r.method === 'POST');
      expect(creates).toHaveLength(2);
      for (const r of creates) {
        expect(r.path).toBe(`/v1/Accounts/${jambonz.accountSid}/Calls`);
        expect(r.headers.authorization).toBe(`Bearer ${jambonz.apiKey}`);
        const body = r.body as Json;
        // The application JAMBONZ_APP_SID names runs the call; its ids ride in the tag.
        expect(body.application_sid).toBe(APP_SID);
        expect(body).not.toHaveProperty('call_hook');
        expect(body.tag).toMatchObject({ agentId: agent.body.id });
        // Status callbacks go to PUBLIC_BASE_URL (from API_BASE_URL), with the shared secret.
        expect(body.call_status_hook).toEqual({
          url: 'https://voice.example.com/telephony/jambonz/status',
          method: 'POST',
          username: 'sipai',
          password: SHARED_SECRET,
        });
      }
      const calls = await api(base, 'GET', '/v1/calls');
      expect(calls.status).toBe(200);
    });
  },
);

describe('TELEPHONY_SHARED_SECRET on every /telephony/* route, on top of signatures', () => {
  const JAMBONZ_SECRET = 'jambonz-webhook-secret-for-runbook';
  let http: RunningHttpServer;
  let core: Core;
  let url: string;

  beforeAll(() => {
    const config = parseConfig({
      PORT: '0',
      REALTIME_WS_SECRET: 'runbook-shared-secret-ws-0123456789',
      JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
      TELEPHONY_SHARED_SECRET: SHARED_SECRET,
      CORE_API_KEY: 'core-api-key-0123456789',
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store: new MemoryStore(), log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', log, plane: core });
    url = `http://127.0.0.1:${http.server.port}`;
  });

  afterAll(async () => {
    await core?.drain(0);
    await http?.stop(0);
  });

  const status = (headers: Record<string, string>, signed = true) =>
    fetch(`${url}/telephony/jambonz/status`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(signed
          ? { 'jambonz-signature': signJambonz(JAMBONZ_SECRET, '{}', Math.floor(Date.now() / 1000)) }
          : {}),
        ...headers,
      },
      body: '{}',
    });
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('refuses a correctly signed webhook that lacks the secret, or carries a wrong one', async () => {
    const none = await status({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Basic');
    expect(((await none.json()) as { error: Json }).error.code).toBe('unauthorized');
    expect((await status({ 'x-telephony-secret': `${SHARED_SECRET}x` })).status).toBe(401);
    expect((await status({ authorization: basic('sipai', 'wrong') })).status).toBe(401);
    expect((await status({ authorization: `Bearer ${SHARED_SECRET}` })).status).toBe(401);
  });

  it('admits the secret as X-Telephony-Secret or as the Basic auth password, and still checks the signature', async () => {
    expect((await status({ 'x-telephony-secret': SHARED_SECRET })).status).toBe(204);
    expect((await status({ authorization: basic('jambonz', SHARED_SECRET) })).status).toBe(204);
    const unsigned = await status({ 'x-telephony-secret': SHARED_SECRET }, false);
    expect(unsigned.status).toBeGreaterThanOrEqual(400);
    expect(unsigned.status).not.toBe(204);
  });

  it('covers the capacity report too', async () => {
    const bearer = { authorization: 'Bearer core-api-key-0123456789' };
    expect((await fetch(`${url}/telephony/capacity`, { headers: bearer })).status).toBe(401);
    const ok = await fetch(`${url}/telephony/capacity`, {
      headers: { ...bearer, 'x-telephony-secret': SHARED_SECRET },
    });
    expect(ok.status).toBe(200);
  });
});
