import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { parseAgentRecord } from '../../core/agent/config.ts';
import { verifyToken } from '../../core/auth/index.ts';
import { keys } from '../../core/store/index.ts';
import { type ApiClient, apiClient, type Backing, type Json, makeAccount, makeControl } from './support.ts';

const REALTIME_SECRET = 'test-realtime-secret-0123456789';
const ENV = { REALTIME_WS_SECRET: REALTIME_SECRET, PUBLIC_BASE_URL: 'https://api.example.test' };

/** A phone number no other test in the run uses (numbers are unique across accounts). */
function uniqueNumber(): string {
  return `+1${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}${Math.floor(Math.random() * 10)}`;
}

/**
 * The `/v1` API's behaviour, run against each backing (PostgreSQL + Redis, PGlite + MemoryStore):
 * CRUD and Store mirroring, versions, paging, tenancy, auth, body errors, realtime tokens, rate
 * limits, and the resync on start.
 */
export function runControlApiContract(makeBacking: () => Promise<Backing>) {
  let backing: Backing;
  let control: Control;
  let api: ApiClient;
  let adminKey: string;
  let accountId: string;

  beforeAll(async () => {
    backing = await makeBacking();
    control = makeControl(backing, ENV);
    const started = await control.start();
    if (!started.bootstrap?.secret) throw new Error('first start created no admin key');
    adminKey = started.bootstrap.secret;
    accountId = started.bootstrap.accountId;
    api = apiClient(control);
  });

  afterAll(async () => {
    await control?.close();
    await backing?.close();
  });

  const storeJson = async (key: string): Promise<Json> => {
    const raw = await backing.store.get(key);
    return raw === null ? null : JSON.parse(raw);
  };

  const createAgent = async (body: Json = { name: 'Front desk' }, key = adminKey) => {
    const res = await api('POST', '/v1/agents', { key, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };

  describe('agents', () => {
    it('round-trips create, get, list, update and delete, mirroring each write into the Store', async () => {
      const input = {
        name: 'Front desk',
        greeting: 'Hello, Bella Pizza.',
        language: 'en-GB',
        brain: 'llm',
        prompt: 'You answer the phone for Bella Pizza.',
        llm: { provider: 'openai', model: 'gpt-4o-mini', options: { temperature: 0.2 } },
        intents: [{ name: 'hours', examples: ['when are you open'], reply: 'Nine to five.' }],
        tools: [
          {
            name: 'book',
            description: 'Book a table',
            parameters: { type: 'object', properties: { time: { type: 'string' } }, required: ['time'] },
            webhookUrl: 'https://example.com/book',
          },
        ],
        stt: { provider: 'deepgram', model: 'nova-3', options: { smartFormat: true } },
        endpointing: { minMs: 300, maxMs: 2000 },
        bargeIn: false,
        maxDurationSec: 600,
        maxConcurrentCalls: 3,
        sampleRate: 16000,
      };
      const created = await createAgent(input);
      expect(created).toMatchObject({ ...input, version: 1 });
      expect(created.id).toMatch(/^agt_[0-9a-z]{26}$/);

      const mirrored = await storeJson(keys.agent(created.id));
      expect(mirrored).toMatchObject({
        ...input,
        id: created.id,
        accountId,
        version: 1,
        brain: 'llm',
        bargeIn: false,
        interruptMinMs: 300,
        maxDurationSec: 600,
        sampleRate: 16000,
      });
      // Core's record, and nothing else: it passes core's own parser unchanged.
      expect(parseAgentRecord(created.id, mirrored)).toEqual({ ok: true, record: mirrored });
      for (const field of ['createdAt', 'updatedAt', 'ready', 'warnings', 'endpointingMs']) {
        expect(mirrored).not.toHaveProperty(field);
      }
      // Saved although this deployment has no key for its vendors, and says which.
      expect(created.ready).toBe(false);
      expect(created.warnings).toEqual([
        'llm openai: OPENAI_API_KEY is not set',
        'stt deepgram: DEEPGRAM_API_KEY is not set',
        'tts openai: OPENAI_API_KEY is not set',
      ]);

      const got = await api('GET', `/v1/agents/${created.id}`, { key: adminKey });
      expect(got.status).toBe(200);
      expect(got.body).toEqual(created);

      const listed = await api('GET', '/v1/agents?limit=100', { key: adminKey });
      expect(listed.body.data.map((a: Json) => a.id)).toContain(created.id);

      const patched = await api('PATCH', `/v1/agents/${created.id}`, {
        key: adminKey,
        body: { greeting: 'Hi there.', maxDurationSec: null, sampleRate: null, bargeIn: true },
      });
      expect(patched.status).toBe(200);
      // Fields the patch leaves out keep their values (brain stays llm, no default creeps in).
      expect(patched.body).toMatchObject({
        greeting: 'Hi there.',
        bargeIn: true,
        version: 2,
        language: 'en-GB',
        brain: 'llm',
        llm: input.llm,
        maxConcurrentCalls: 3,
      });
      expect(patched.body).not.toHaveProperty('maxDurationSec');
      expect(patched.body).not.toHaveProperty('sampleRate');
      const mirroredAfter = await storeJson(keys.agent(created.id));
      expect(mirroredAfter).toMatchObject({ greeting: 'Hi there.', bargeIn: true, version: 2 });
      expect(mirroredAfter).not.toHaveProperty('maxDurationSec');

      const deleted = await api('DELETE', `/v1/agents/${created.id}`, { key: adminKey });
      expect(deleted).toMatchObject({ status: 200, body: { id: created.id, deleted: true } });
      expect((await api('GET', `/v1/agents/${created.id}`, { key: adminKey })).status).toBe(404);
      expect(await backing.store.get(keys.agent(created.id))).toBeNull();
    });

    it('fills defaults for what the creator left out', async () => {
      const created = await createAgent({ name: 'Minimal' });
      expect(created).toMatchObject({
        brain: 'scripted',
        language: 'en-US',
        tools: [],
        intents: [],
        bargeIn: true,
        endpointing: { minMs: 500, maxMs: 3000 },
        interruptMinMs: 300,
      });
      expect(created).not.toHaveProperty('greeting');
    });

    it('carries every brain setting into core’s record, and says whether the agent can run', async () => {
      const input = {
        name: 'Menu',
        brain: 'scripted',
        voice: 'slt',
        tts: { provider: 'flite', fallback: 'espeak' },
        stt: { provider: 'pocketsphinx' },
        interruptMinMs: 450,
        transferTo: 'sip:frontdesk@pbx.example.com',
        intents: [
          { name: 'hours', examples: ['when are you open'], reply: 'Nine to five.', digit: '1' },
          {
            name: 'person',
            examples: ['a person please'],
            reply: 'Putting you through.',
            action: 'transfer',
            digit: '0',
          },
          { name: 'bye', examples: ['goodbye'], reply: 'Goodbye.', action: 'hangup', digit: '#' },
        ],
      };
      const created = await createAgent(input);
      expect(created).toMatchObject(input);
      expect(created.ready).toBeTypeOf('boolean');
      expect(created.warnings).toBeInstanceOf(Array);
      expect(created.ready).toBe(created.warnings.length === 0);
      const mirrored = await storeJson(keys.agent(created.id));
      expect(mirrored).toMatchObject({ ...input, id: created.id, accountId });
      expect(parseAgentRecord(created.id, mirrored).ok).toBe(true);

      const patched = await api('PATCH', `/v1/agents/${created.id}`, {
        key: adminKey,
        body: { transferTo: '+14155550199', interruptMinMs: 0 },
      });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      expect(await storeJson(keys.agent(created.id))).toMatchObject({
        transferTo: '+14155550199',
        interruptMinMs: 0,
      });
      // A transfer intent with nowhere to transfer to would reach the brain as a dead end.
      const cleared = await api('PATCH', `/v1/agents/${created.id}`, {
        key: adminKey,
        body: { transferTo: null },
      });
      expect(cleared.status).toBe(422);
      expect(cleared.body.error.details[0].field).toBe('intents.1.action');

      const echo = await createAgent({ name: 'Echo', brain: 'echo' });
      expect(echo).toMatchObject({ ready: true, warnings: [] });
      const vendor = await createAgent({ name: 'Vendor', tts: { provider: 'elevenlabs' } });
      expect(vendor.ready).toBe(false);
      expect(vendor.warnings).toContain('tts elevenlabs: ELEVENLABS_API_KEY is not set');
      const listed = await api('GET', '/v1/agents?limit=100', { key: adminKey });
      expect(listed.body.data.find((a: Json) => a.id === vendor.id)).toMatchObject({
        ready: false,
        warnings: vendor.warnings,
      });
    });

    it('refuses brain settings it cannot carry, naming the field', async () => {
      const intent = (name: string, extra: Json = {}) => ({ name, examples: [name], reply: 'ok', ...extra });
      const cases: [unknown, string][] = [
        [
          { name: 'x', intents: [intent('a', { digit: '1' }), intent('b', { digit: '1' })] },
          'intents.1.digit',
        ],
        [{ name: 'x', intents: [intent('a', { digit: '12' })] }, 'intents.0.digit'],
        [{ name: 'x', intents: [intent('a', { action: 'dance' })] }, 'intents.0.action'],
        [{ name: 'x', intents: [intent('a', { action: 'transfer' })] }, 'intents.0.action'],
        [{ name: 'x', transferTo: '555-0100' }, 'transferTo'],
        [{ name: 'x', transferTo: 'tel:+14155550199' }, 'transferTo'],
        [{ name: 'x', interruptMinMs: 5001 }, 'interruptMinMs'],
        [{ name: 'x', interruptMinMs: 1.5 }, 'interruptMinMs'],
        [{ name: 'x', stt: { provider: 'pocketsphinx', fallback: 'pocketsphinx' } }, 'stt.fallback'],
        [{ name: 'x', tts: { provider: 'flite', fallback: 'deepgram' } }, 'tts.fallback'],
        [{ name: 'x', tts: { provider: 'festival', voice: 'kal16' } }, 'tts.voice'],
      ];
      for (const [body, field] of cases) {
        const res = await api('POST', '/v1/agents', { key: adminKey, body });
        expect(res.status, JSON.stringify(body)).toBe(422);
        expect(res.body.error.details[0].field, JSON.stringify(res.body)).toBe(field);
      }
    });

    it('keeps every version, newest first, paged', async () => {
      const agent = await createAgent({ name: 'Versioned', greeting: 'one' });
      for (const greeting of ['two', 'three']) {
        const res = await api('PATCH', `/v1/agents/${agent.id}`, { key: adminKey, body: { greeting } });
        expect(res.status).toBe(200);
      }
      const first = await api('GET', `/v1/agents/${agent.id}/versions?limit=2`, { key: adminKey });
      expect(first.status).toBe(200);
      expect(first.body.data.map((v: Json) => [v.version, v.config.greeting])).toEqual([
        [3, 'three'],
        [2, 'two'],
      ]);
      expect(first.body.nextCursor).toBeTypeOf('string');
      const second = await api(
        'GET',
        `/v1/agents/${agent.id}/versions?limit=2&cursor=${first.body.nextCursor}`,
        {
          key: adminKey,
        },
      );
      expect(second.body.data.map((v: Json) => [v.version, v.config.greeting])).toEqual([[1, 'one']]);
      expect(second.body.nextCursor).toBeNull();
      expect((await api('GET', `/v1/agents/${agent.id}`, { key: adminKey })).body.version).toBe(3);
    });

    it('pages the list newest first with a cursor, without gaps or repeats', async () => {
      const tenant = await makeAccount(control, 'pager');
      const made: string[] = [];
      for (let i = 0; i < 5; i++) made.push((await createAgent({ name: `Agent ${i}` }, tenant.key)).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
        const res = await api('GET', `/v1/agents${query}`, { key: tenant.key });
        expect(res.status).toBe(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((a: Json) => a.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([...made].reverse());
    });

    it('refuses to delete an agent a number routes to', async () => {
      const agent = await createAgent({ name: 'Routed' });
      const number = await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber: uniqueNumber(), provider: 'jambonz', agentId: agent.id },
      });
      expect(number.status).toBe(201);
      const res = await api('DELETE', `/v1/agents/${agent.id}`, { key: adminKey });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('agent_in_use');
      expect(await storeJson(keys.agent(agent.id))).toMatchObject({ id: agent.id });
    });
  });

  describe('numbers', () => {
    it('round-trips create, get, list, update and delete, mirroring the route into the Store', async () => {
      const agent = await createAgent({ name: 'Sales' });
      const other = await createAgent({ name: 'Support' });
      const phoneNumber = uniqueNumber();
      const created = await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber, provider: 'twilio', agentId: agent.id, label: 'Main line' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        phoneNumber,
        provider: 'twilio',
        agentId: agent.id,
        label: 'Main line',
      });
      const id = created.body.id;
      expect(await storeJson(keys.numberRoute(phoneNumber))).toEqual({
        agentId: agent.id,
        accountId,
        provider: 'twilio',
        numberId: id,
      });

      expect((await api('GET', `/v1/numbers/${id}`, { key: adminKey })).body).toEqual(created.body);
      const listed = await api('GET', '/v1/numbers?limit=100', { key: adminKey });
      expect(listed.body.data.map((n: Json) => n.id)).toContain(id);

      const patched = await api('PATCH', `/v1/numbers/${id}`, {
        key: adminKey,
        body: { agentId: other.id, provider: 'telnyx', label: null },
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ agentId: other.id, provider: 'telnyx', label: null });
      expect(await storeJson(keys.numberRoute(phoneNumber))).toEqual({
        agentId: other.id,
        accountId,
        provider: 'telnyx',
        numberId: id,
      });

      expect((await api('DELETE', `/v1/numbers/${id}`, { key: adminKey })).status).toBe(200);
      expect((await api('GET', `/v1/numbers/${id}`, { key: adminKey })).status).toBe(404);
      expect(await backing.store.get(keys.numberRoute(phoneNumber))).toBeNull();
    });

    it('answers 409 for a number registered already, by any account', async () => {
      const phoneNumber = uniqueNumber();
      const agent = await createAgent({ name: 'First' });
      const first = await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber, provider: 'twilio', agentId: agent.id },
      });
      expect(first.status).toBe(201);
      const tenant = await makeAccount(control, 'late');
      const theirs = await createAgent({ name: 'Theirs' }, tenant.key);
      const second = await api('POST', '/v1/numbers', {
        key: tenant.key,
        body: { phoneNumber, provider: 'telnyx', agentId: theirs.id },
      });
      expect(second.status).toBe(409);
      expect(second.body.error.code).toBe('number_taken');
      expect(await storeJson(keys.numberRoute(phoneNumber))).toMatchObject({ agentId: agent.id, accountId });
    });

    it('answers 422 on agentId when the agent belongs to another account', async () => {
      const tenant = await makeAccount(control, 'other');
      const theirs = await createAgent({ name: 'Not yours' }, tenant.key);
      const phoneNumber = uniqueNumber();
      const res = await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber, provider: 'twilio', agentId: theirs.id },
      });
      expect(res.status).toBe(422);
      expect(res.body.error.details[0].field).toBe('agentId');
      expect(await backing.store.get(keys.numberRoute(phoneNumber))).toBeNull();
    });
  });

  describe('tenancy', () => {
    it('gives another account 404 for every read and write of this account’s agent and number', async () => {
      const agent = await createAgent({ name: 'Private', greeting: 'mine' });
      const phoneNumber = uniqueNumber();
      const number = (
        await api('POST', '/v1/numbers', {
          key: adminKey,
          body: { phoneNumber, provider: 'twilio', agentId: agent.id },
        })
      ).body;
      const intruder = await makeAccount(control, 'intruder');
      const theirAgent = await createAgent({ name: 'Intruder agent' }, intruder.key);
      const as = { key: intruder.key };

      const attempts = [
        await api('GET', `/v1/agents/${agent.id}`, as),
        await api('PATCH', `/v1/agents/${agent.id}`, { ...as, body: { greeting: 'hijacked' } }),
        await api('DELETE', `/v1/agents/${agent.id}`, as),
        await api('GET', `/v1/agents/${agent.id}/versions`, as),
        await api('GET', `/v1/numbers/${number.id}`, as),
        await api('PATCH', `/v1/numbers/${number.id}`, { ...as, body: { agentId: theirAgent.id } }),
        await api('DELETE', `/v1/numbers/${number.id}`, as),
        await api('POST', '/v1/realtime/tokens', { ...as, body: { agentId: agent.id } }),
      ];
      for (const res of attempts) {
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe('not_found');
      }

      const theirLists = [
        await api('GET', '/v1/agents?limit=100', as),
        await api('GET', '/v1/numbers?limit=100', as),
      ];
      expect(theirLists[0].body.data.map((a: Json) => a.id)).toEqual([theirAgent.id]);
      expect(theirLists[1].body.data).toEqual([]);

      // Nothing changed, in Postgres or in the Store.
      const mine = await api('GET', `/v1/agents/${agent.id}`, { key: adminKey });
      expect(mine.body).toMatchObject({ greeting: 'mine', version: 1 });
      expect(await storeJson(keys.agent(agent.id))).toMatchObject({ greeting: 'mine', accountId });
      expect(await storeJson(keys.numberRoute(phoneNumber))).toMatchObject({ agentId: agent.id, accountId });
    });

    it('gives another account 404 for this account’s API keys, and lists only its own', async () => {
      const intruder = await makeAccount(control, 'key thief');
      const mine = await api('POST', '/v1/keys', { key: adminKey, body: { name: 'mine' } });
      expect(mine.status).toBe(201);
      const revoke = await api('DELETE', `/v1/keys/${mine.body.id}`, { key: intruder.key });
      expect(revoke.status).toBe(404);
      const listed = await api('GET', '/v1/keys?limit=100', { key: intruder.key });
      expect(listed.body.data.map((k: Json) => k.id)).not.toContain(mine.body.id);
      const account = await api('GET', '/v1/account', { key: intruder.key });
      expect(account.body).toMatchObject({ id: intruder.accountId, name: 'key thief' });
      expect((await api('GET', '/v1/account', { key: mine.body.secret })).body.id).toBe(accountId);
    });
  });

  describe('authentication', () => {
    it('answers 401 with the error shape when the key is missing, malformed or unknown', async () => {
      const cases = [
        await api('GET', '/v1/agents'),
        await api('GET', '/v1/agents', { headers: { authorization: `Basic ${btoa('a:b')}` } }),
        await api('GET', '/v1/agents', { key: 'not-a-key' }),
        await api('GET', '/v1/agents', { key: `sk_live_${'A'.repeat(43)}` }),
        await api('GET', '/v1/agents', {
          key: `${adminKey.slice(0, -1)}${adminKey.endsWith('A') ? 'B' : 'A'}`,
        }),
      ];
      for (const res of cases) {
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    });

    it('stops accepting a key once it is revoked, and keeps the last admin key', async () => {
      const created = await api('POST', '/v1/keys', {
        key: adminKey,
        body: { name: 'temp', role: 'member' },
      });
      expect(created.status).toBe(201);
      expect(created.body.secret).toMatch(/^sk_live_/);
      expect(created.body.prefix).toBe(created.body.secret.slice(0, created.body.prefix.length));
      const secret = created.body.secret;
      expect((await api('GET', '/v1/account', { key: secret })).status).toBe(200);

      const revoked = await api('DELETE', `/v1/keys/${created.body.id}`, { key: adminKey });
      expect(revoked.status).toBe(200);
      expect(revoked.body.revokedAt).toBeTypeOf('string');
      expect(revoked.body).not.toHaveProperty('secret');
      expect((await api('GET', '/v1/account', { key: secret })).status).toBe(401);

      const tenant = await makeAccount(control, 'solo');
      const own = await api('GET', '/v1/keys', { key: tenant.key });
      const last = await api('DELETE', `/v1/keys/${own.body.data[0].id}`, { key: tenant.key });
      expect(last.status).toBe(409);
      expect(last.body.error.code).toBe('last_admin_key');
    });

    it('lets only admin keys manage keys', async () => {
      const member = await api('POST', '/v1/keys', { key: adminKey, body: { name: 'member' } });
      expect(member.body.role).toBe('member');
      const res = await api('POST', '/v1/keys', {
        key: member.body.secret,
        body: { name: 'escalate', role: 'admin' },
      });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('admin_key_required');
    });

    it('records when a key was last used, at most once a minute', async () => {
      const created = await api('POST', '/v1/keys', { key: adminKey, body: { name: 'usage' } });
      const find = async () =>
        (await api('GET', '/v1/keys?limit=100', { key: adminKey })).body.data.find(
          (k: Json) => k.id === created.body.id,
        );
      expect((await find()).lastUsedAt).toBeNull();
      await api('GET', '/v1/account', { key: created.body.secret });
      const firstUse = (await find()).lastUsedAt;
      expect(firstUse).toBeTypeOf('string');
      await api('GET', '/v1/account', { key: created.body.secret });
      expect((await find()).lastUsedAt).toBe(firstUse);
    });

    it('leaves /v1/health open', async () => {
      expect((await api('GET', '/v1/health')).status).toBe(200);
    });
  });

  describe('request bodies', () => {
    it('answers 400 for malformed JSON', async () => {
      const res = await api('POST', '/v1/agents', { key: adminKey, rawBody: '{"name": "x",' });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('malformed_body');
    });

    it('answers 422 naming the field that breaks the schema', async () => {
      const cases: [unknown, string][] = [
        [{ name: 'x', greeting: 42 }, 'greeting'],
        [{ name: 'x', greeting: 'g'.repeat(2001) }, 'greeting'],
        [{ greeting: 'no name' }, 'name'],
        [{ name: 'x', brain: 'genius' }, 'brain'],
        [{ name: 'x', language: 'english please' }, 'language'],
        [{ name: 'x', maxDurationSec: '60' }, 'maxDurationSec'],
        [{ name: 'x', tts: { provider: 'flite', speed: 2 } }, 'tts.speed'],
        [{ name: 'x', endpointing: { minMs: 900, maxMs: 300 } }, 'endpointing.maxMs'],
        [{ name: 'x', intents: [{ name: 'a', examples: [], reply: 'r' }] }, 'intents.0.examples'],
      ];
      for (const [body, field] of cases) {
        const res = await api('POST', '/v1/agents', { key: adminKey, body });
        expect(res.status, JSON.stringify(body)).toBe(422);
        expect(res.body.error.code).toBe('validation_failed');
        expect(res.body.error.details[0].field, JSON.stringify(res.body)).toBe(field);
        expect(res.body.error.message).toContain(field);
      }
      const brain = await api('POST', '/v1/agents', { key: adminKey, body: { name: 'x', brain: 'genius' } });
      expect(brain.body.error.details[0].message).toBe('must be one of echo, scripted, llm');
    });

    it('rejects unknown fields with 422 instead of dropping them', async () => {
      const res = await api('POST', '/v1/agents', { key: adminKey, body: { name: 'x', greting: 'typo' } });
      expect(res.status).toBe(422);
      expect(res.body.error.details[0].field).toBe('greting');

      const agent = await createAgent({ name: 'Strict' });
      const patch = await api('PATCH', `/v1/agents/${agent.id}`, { key: adminKey, body: { id: 'agt_x' } });
      expect(patch.status).toBe(422);
      expect(patch.body.error.details[0].field).toBe('id');
      const number = await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber: uniqueNumber(), provider: 'twilio', agentId: agent.id, weight: 1 },
      });
      expect(number.status).toBe(422);
      expect(number.body.error.details[0].field).toBe('weight');
    });

    it('validates E.164 numbers and providers', async () => {
      const agent = await createAgent({ name: 'Dialled' });
      for (const [body, field] of [
        [{ phoneNumber: '4155550123', provider: 'twilio', agentId: agent.id }, 'phoneNumber'],
        [{ phoneNumber: '+04155550123', provider: 'twilio', agentId: agent.id }, 'phoneNumber'],
        [{ phoneNumber: '+1415555012345678', provider: 'twilio', agentId: agent.id }, 'phoneNumber'],
        [{ phoneNumber: uniqueNumber(), provider: 'vonage', agentId: agent.id }, 'provider'],
      ] as const) {
        const res = await api('POST', '/v1/numbers', { key: adminKey, body });
        expect(res.status).toBe(422);
        expect(res.body.error.details[0].field).toBe(field);
      }
    });
  });

  describe('realtime tokens', () => {
    it('mints a token core verifies, bound to the agent and call, with a wss URL', async () => {
      const agent = await createAgent({ name: 'Web' });
      const before = Math.floor(Date.now() / 1000);
      const res = await api('POST', '/v1/realtime/tokens', {
        key: adminKey,
        body: { agentId: agent.id, callId: 'call-42', ttlSec: 120 },
      });
      expect(res.status).toBe(200);
      const verified = verifyToken(REALTIME_SECRET, res.body.token, { kind: 'realtime', callId: 'call-42' });
      expect(verified.ok).toBe(true);
      if (!verified.ok) return;
      expect(verified.claims).toMatchObject({ kind: 'realtime', agentId: agent.id, sub: 'call-42' });
      expect(verified.claims.exp - verified.claims.iat).toBe(120);
      expect(verified.claims.iat).toBeGreaterThanOrEqual(before);
      expect(Date.parse(res.body.expiresAt) / 1000).toBe(verified.claims.exp);
      expect(res.body.url).toBe(
        `wss://api.example.test/v1/realtime/voice?token=${encodeURIComponent(res.body.token)}`,
      );
      expect(verifyToken('another-secret-0123456789', res.body.token, { kind: 'realtime' }).ok).toBe(false);
    });

    it('defaults to 300 s and refuses more than 600 s', async () => {
      const agent = await createAgent({ name: 'Web 2' });
      const res = await api('POST', '/v1/realtime/tokens', { key: adminKey, body: { agentId: agent.id } });
      const verified = verifyToken(REALTIME_SECRET, res.body.token, { kind: 'realtime' });
      expect(verified.ok && verified.claims.exp - verified.claims.iat).toBe(300);
      const long = await api('POST', '/v1/realtime/tokens', {
        key: adminKey,
        body: { agentId: agent.id, ttlSec: 601 },
      });
      expect(long.status).toBe(422);
      expect(long.body.error.details[0].field).toBe('ttlSec');
    });

    it('answers 503 realtime_disabled when REALTIME_WS_SECRET is unset', async () => {
      const agent = await createAgent({ name: 'Web 3' });
      const bare = apiClient(makeControl(backing, {}));
      const res = await bare('POST', '/v1/realtime/tokens', { key: adminKey, body: { agentId: agent.id } });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('realtime_disabled');
    });
  });

  describe('rate limits', () => {
    it('answers 429 with Retry-After once a key passes its limit', async () => {
      const limit = 3;
      const limited = apiClient(makeControl(backing, { ...ENV, API_RATE_LIMIT_PER_MIN: String(limit) }));
      const tenant = await makeAccount(control, 'busy');
      // 2 × limit + 1 requests overrun the limit even if a window boundary falls among them.
      const results = [];
      for (let i = 0; i < 2 * limit + 1; i++)
        results.push(await limited('GET', '/v1/account', { key: tenant.key }));
      const refused = results.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(2 * limit);
      for (const r of refused) {
        expect(r.body.error.code).toBe('rate_limited');
        const retryAfter = Number(r.headers.get('retry-after'));
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(r.body.error.details).toMatchObject({ limit, windowSec: 60, retryAfterSec: retryAfter });
      }
      // Another key of the same account has its own budget.
      const fresh = await control.services.keys.create(tenant.accountId, { name: 'second' });
      expect((await limited('GET', '/v1/account', { key: fresh.secret })).status).toBe(200);
    });
  });

  describe('start', () => {
    it('rewrites every agent and number into a fresh Store, and bootstraps only once', async () => {
      const agent = await createAgent({ name: 'Survivor', greeting: 'still here' });
      const phoneNumber = uniqueNumber();
      await api('POST', '/v1/numbers', {
        key: adminKey,
        body: { phoneNumber, provider: 'telnyx', agentId: agent.id },
      });
      const fresh = await backing.freshStore();
      expect(await fresh.get(keys.agent(agent.id))).toBeNull();

      const restarted = makeControl(backing, ENV, fresh);
      const result = await restarted.start();
      expect(result.bootstrap).toBeNull();
      expect(result.migrationsApplied).toEqual([]);
      expect(result.mirrored.agents).toBeGreaterThanOrEqual(1);
      expect(result.mirrored.numbers).toBeGreaterThanOrEqual(1);
      expect(JSON.parse((await fresh.get(keys.agent(agent.id))) ?? 'null')).toEqual(
        JSON.parse((await backing.store.get(keys.agent(agent.id))) ?? 'null'),
      );
      expect(JSON.parse((await fresh.get(keys.numberRoute(phoneNumber))) ?? 'null')).toMatchObject({
        agentId: agent.id,
        accountId,
        provider: 'telnyx',
      });
      await restarted.close();
    });
  });
}
