import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { keys } from '../../core/store/index.ts';
import { type ApiClient, apiClient, type Backing, embedded, type Json, makeControl } from './support.ts';

/**
 * The runbook's API smoke test posts the agent's settings nested under `config`; existing
 * clients post them flat. Both shapes create the same agent, and responses carry both.
 */
describe('agents: the nested `config` shape next to the flat one', () => {
  let backing: Backing;
  let control: Control;
  let api: ApiClient;
  let key: string;

  beforeAll(async () => {
    backing = await embedded();
    control = makeControl(backing, { REALTIME_WS_SECRET: 'agent-shape-secret-0123456789' });
    const started = await control.start();
    key = started.bootstrap!.secret!;
    api = apiClient(control);
  }, 60_000);

  afterAll(async () => {
    await control?.close();
    await backing?.close();
  });

  it('creates the runbook canary agent (201), as the llm brain with its prompt', async () => {
    const res = await api('POST', '/v1/agents', {
      key,
      rawBody: '{"name":"Prod Canary Agent","config":{"prompt":"You are a helpful agent."}}',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({
      name: 'Prod Canary Agent',
      brain: 'llm',
      prompt: 'You are a helpful agent.',
      config: { brain: 'llm', prompt: 'You are a helpful agent.', language: 'en-US' },
    });
    expect(res.body.config).not.toHaveProperty('name');
    const mirrored = JSON.parse((await backing.store.get(keys.agent(res.body.id)))!) as Json;
    expect(mirrored).toMatchObject({ brain: 'llm', prompt: 'You are a helpful agent.' });
    // `GET /v1/calls` with no filter answers 200 even when the account has no calls.
    const calls = await api('GET', '/v1/calls', { key });
    expect(calls.status).toBe(200);
    expect(calls.body.data).toEqual([]);
  });

  it('gives the same agent for a flat prompt: a prompt with no brain means llm, a named brain wins', async () => {
    const flat = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Flat canary', prompt: 'You are a helpful agent.' },
    });
    expect(flat.status).toBe(201);
    expect(flat.body).toMatchObject({ brain: 'llm', config: { brain: 'llm' } });
    const scripted = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Scripted', config: { brain: 'scripted', prompt: 'unused' } },
    });
    expect(scripted.body).toMatchObject({ brain: 'scripted', config: { brain: 'scripted' } });
    const plain = await api('POST', '/v1/agents', { key, body: { name: 'No prompt' } });
    expect(plain.body).toMatchObject({ brain: 'scripted', config: { brain: 'scripted' } });
  });

  it('round-trips both shapes: what one returns under `config`, the other accepts, and GET repeats it', async () => {
    const settings = {
      brain: 'scripted',
      greeting: 'Hello, Bella Pizza.',
      language: 'en-GB',
      intents: [{ name: 'hours', examples: ['when are you open'], reply: 'Nine to five.', digit: '1' }],
      endpointing: { minMs: 300, maxMs: 2000 },
      bargeIn: false,
      maxConcurrentCalls: 3,
    };
    const nested = await api('POST', '/v1/agents', { key, body: { name: 'Nested', config: settings } });
    const flat = await api('POST', '/v1/agents', { key, body: { name: 'Flat', ...settings } });
    expect(nested.status).toBe(201);
    expect(flat.status).toBe(201);
    expect(nested.body.config).toEqual(flat.body.config);
    expect(nested.body.config).toMatchObject(settings);
    expect(nested.body).toMatchObject(settings);

    // A response's config posted back (nested) makes an identical agent.
    const again = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Nested again', config: nested.body.config },
    });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body.config).toEqual(nested.body.config);

    const got = await api('GET', `/v1/agents/${nested.body.id}`, { key });
    expect(got.body).toEqual(nested.body);

    // PATCH takes the nested shape too; `null` clears, and the version moves on.
    const patched = await api('PATCH', `/v1/agents/${nested.body.id}`, {
      key,
      body: { config: { greeting: 'Hi.', maxConcurrentCalls: null } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ version: 2, greeting: 'Hi.', config: { greeting: 'Hi.' } });
    expect(patched.body.config).not.toHaveProperty('maxConcurrentCalls');
    expect(patched.body).not.toHaveProperty('maxConcurrentCalls');
  });

  it('refuses both shapes in one request, and validates nested fields as it does flat ones (422 naming the field)', async () => {
    const both = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Both', greeting: 'Hi', config: { prompt: 'You are a helpful agent.' } },
    });
    expect(both.status).toBe(422);
    expect(both.body.error).toMatchObject({ code: 'validation_failed' });
    expect(both.body.error.message).toContain('config');
    expect(both.body.error.message).toContain('greeting');

    const typo = await api('POST', '/v1/agents', { key, body: { name: 'Typo', config: { promt: 'x' } } });
    expect(typo.status).toBe(422);
    expect(JSON.stringify(typo.body.error)).toContain('promt');

    const rule = await api('POST', '/v1/agents', {
      key,
      body: { name: 'Rule', config: { endpointing: { minMs: 2000, maxMs: 500 } } },
    });
    expect(rule.status).toBe(422);
    expect(rule.body.error.message).toContain('endpointing.maxMs');

    const created = await api('POST', '/v1/agents', { key, body: { name: 'Patch target' } });
    const patchBoth = await api('PATCH', `/v1/agents/${created.body.id}`, {
      key,
      body: { greeting: 'a', config: { greeting: 'b' } },
    });
    expect(patchBoth.status).toBe(422);
    const patchEmpty = await api('PATCH', `/v1/agents/${created.body.id}`, { key, body: { config: {} } });
    expect(patchEmpty.status).toBe(422);
  });
});
