import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { bootstrapAccountId, DEMO_AGENT_NAME, ensureDemoAgent } from '../../control/demo-agent.ts';
import { pocketsphinxAvailable } from '../../core/agent/providers/stt/dictionary.ts';
import { ttsAvailable } from '../../core/agent/providers/tts/availability.ts';
import { keys } from '../../core/store/index.ts';
import { type ApiClient, apiClient, type Backing, embedded, makeAccount, makeControl } from './support.ts';

describe('the demo agent npm start seeds', () => {
  let backing: Backing;
  let control: Control;
  let api: ApiClient;
  let accountId: string;
  let adminKey: string;

  beforeAll(async () => {
    backing = await embedded();
    control = makeControl(backing);
    const started = await control.start();
    if (!started.bootstrap?.secret) throw new Error('first start created no admin key');
    accountId = started.bootstrap.accountId;
    adminKey = started.bootstrap.secret;
    api = apiClient(control);
  });

  afterAll(async () => {
    await control?.close();
    await backing?.close();
  });

  it('finds the bootstrap account again on a later boot', async () => {
    await makeAccount(control, 'later tenant');
    expect(await bootstrapAccountId(backing.sql)).toBe(accountId);
  });

  it('is created once in the account and found again on every later boot', async () => {
    const id = await ensureDemoAgent(control.services.agents, accountId);
    expect(await ensureDemoAgent(control.services.agents, accountId)).toBe(id);
    const listed = await api('GET', '/v1/agents?limit=100', { key: adminKey });
    expect(listed.body.data.filter((a: { name: string }) => a.name === DEMO_AGENT_NAME)).toHaveLength(1);

    const agent = (await api('GET', `/v1/agents/${id}`, { key: adminKey })).body;
    expect(agent).toMatchObject({
      name: DEMO_AGENT_NAME,
      brain: 'scripted',
      voice: 'rms',
      tts: { provider: 'flite' },
    });
    expect(agent.intents.map((i: { name: string; digit: string }) => [i.name, i.digit])).toEqual([
      ['hours', '1'],
      ['location', '2'],
      ['booking', '3'],
    ]);
    expect(JSON.parse((await backing.store.get(keys.agent(id))) ?? 'null')).toMatchObject({
      id,
      accountId,
      brain: 'scripted',
      voice: 'rms',
    });
    // On a machine with the offline engines, every word of it is one the recogniser knows.
    if (pocketsphinxAvailable().ok && ttsAvailable('flite', 'rms').ok) {
      expect(agent.warnings).toEqual([]);
      expect(agent.ready).toBe(true);
    }
  });
});
