import type { Sql } from './db/index.ts';
import type { AgentService, CreateAgentBody } from './modules/agents/index.ts';

/**
 * The agent `npm start` seeds so a fresh laptop install has something to call: a pizzeria's
 * front desk on the offline scripted brain, answering calls nothing routes and native
 * sessions that name no agent.
 */

/** Its name, which is also how a later boot finds it again. */
export const DEMO_AGENT_NAME = 'Demo front desk';

/** The demo agent's configuration: offline recogniser and voice, three intents, a keypad menu. */
export const DEMO_AGENT: CreateAgentBody = {
  name: DEMO_AGENT_NAME,
  brain: 'scripted',
  voice: 'rms',
  tts: { provider: 'flite' },
  greeting:
    'Hello, thanks for calling Bella Pizza. You can ask about our opening hours, where we are, or booking a table. How can I help?',
  intents: [
    {
      name: 'hours',
      examples: [
        'what are your opening hours',
        'when are you open',
        'what time do you open',
        'what time do you close',
        'are you open today',
      ],
      reply: 'We are open every day from eleven in the morning until ten at night.',
      digit: '1',
    },
    {
      name: 'location',
      examples: ['where are you located', 'what is your address', 'where are you', 'how do i find you'],
      reply: 'We are at twelve Market Street, next to the train station.',
      digit: '2',
    },
    {
      name: 'booking',
      examples: [
        'i would like to book a table',
        'can i book a table',
        'make a reservation',
        'i want to reserve a table',
      ],
      reply: 'I can book a table for you. Please call back during opening hours and a host will confirm it.',
      digit: '3',
    },
  ],
};

/**
 * The account the first start created (the bootstrap account): the oldest one, since the
 * bootstrap runs only on an empty database. Null before any account exists.
 */
export async function bootstrapAccountId(sql: Sql): Promise<string | null> {
  const [row] = await sql<{ id: string }[]>`
    select id from accounts order by created_at, id limit 1`;
  return row?.id ?? null;
}

/**
 * The demo agent's id in `accountId`, creating it unless an agent of that name is there already
 * (so restarts on a persistent database reuse it, and an operator's edits to it survive).
 */
export async function ensureDemoAgent(agents: AgentService, accountId: string): Promise<string> {
  const existing = await agents.findByName(accountId, DEMO_AGENT_NAME);
  if (existing) return existing;
  return (await agents.create(accountId, DEMO_AGENT)).id;
}
