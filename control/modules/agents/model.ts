import type { TNull, TOptional, TProperties, TUnion } from '@sinclair/typebox';
import { t } from 'elysia';
import { pageOf, pageQuery } from '../../pagination.ts';
import { integer, nullable, oneOf } from '../../schema.ts';

/**
 * An agent's configuration as the API takes it. Every object rejects unknown fields
 * (`additionalProperties: false`), so a typo is a 422 naming the field, not a silent no-op.
 */

export const AGENT_ID = '^agt_[0-9a-z]{26}$';

const strict = { additionalProperties: false } as const;

/** Free-form provider options: flat values only, so nothing nested hides a typo. */
const ProviderOptions = t.Record(
  t.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' }),
  t.Union([t.String({ maxLength: 2000 }), t.Number(), t.Boolean()]),
  { maxProperties: 32, description: 'Provider-specific knobs, e.g. `{ "temperature": 0.3 }`.' },
);

const model = t.Optional(
  t.String({ minLength: 1, maxLength: 100, description: 'The provider’s model name.' }),
);

export const SttSettings = t.Object(
  {
    provider: oneOf(['deepgram', 'pocketsphinx'], {
      description: '`pocketsphinx` runs offline, constrained to the agent’s intents.',
    }),
    model,
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'deepgram', model: 'nova-3' }] },
);

export const LlmSettings = t.Object(
  {
    provider: oneOf(['openai', 'openai-compatible'], {
      description:
        '`openai-compatible` speaks the OpenAI chat completions wire format (set `options.baseUrl`).',
    }),
    model,
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'openai', model: 'gpt-4o-mini', options: { temperature: 0.3 } }] },
);

export const TtsSettings = t.Object(
  {
    provider: oneOf(['espeak', 'openai', 'elevenlabs'], {
      description: '`espeak` (espeak-ng) runs offline.',
    }),
    model,
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'espeak' }] },
);

export const Tool = t.Object(
  {
    name: t.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Unique within the agent.' }),
    description: t.String({ minLength: 1, maxLength: 1000, description: 'When the model should call it.' }),
    parameters: t.Object(
      {
        type: t.Literal('object'),
        properties: t.Optional(t.Record(t.String(), t.Unknown())),
        required: t.Optional(t.Array(t.String())),
      },
      {
        additionalProperties: true,
        description: 'JSON Schema of the arguments: an object schema.',
      },
    ),
    webhookUrl: t.String({
      pattern: '^https?://[^\\s]+$',
      maxLength: 2000,
      description: 'Called with the arguments (POST, JSON); its JSON answer goes back to the model.',
    }),
  },
  {
    ...strict,
    examples: [
      {
        name: 'book_table',
        description: 'Book a table when the caller gives a time and party size.',
        parameters: {
          type: 'object',
          properties: { time: { type: 'string' }, people: { type: 'integer' } },
          required: ['time', 'people'],
        },
        webhookUrl: 'https://example.com/hooks/book',
      },
    ],
  },
);

export const Intent = t.Object(
  {
    name: t.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Unique within the agent.' }),
    examples: t.Array(t.String({ minLength: 1, maxLength: 500 }), {
      minItems: 1,
      maxItems: 50,
      description: 'Phrases a caller might say.',
    }),
    reply: t.String({ minLength: 1, maxLength: 2000, description: 'What the scripted brain answers.' }),
  },
  {
    ...strict,
    examples: [
      { name: 'hours', examples: ['when are you open', 'opening hours'], reply: 'We are open 9 to 5.' },
    ],
  },
);

export const Endpointing = t.Object(
  {
    minMs: integer({ minimum: 100, maximum: 5000, description: 'Silence that ends a turn.' }),
    maxMs: integer({
      minimum: 100,
      maximum: 30_000,
      description: 'Longest wait for a turn to end; not less than minMs.',
    }),
  },
  { ...strict, examples: [{ minMs: 500, maxMs: 3000 }] },
);

const name = t.String({ minLength: 1, maxLength: 100 });

/** Fields with a default, so a stored config always carries them. */
const defaulted = {
  brain: oneOf(['echo', 'scripted', 'llm'], {
    description:
      '`scripted` (default): greeting + intents, offline; `llm`: prompt + tools; `echo`: a test brain.',
  }),
  language: t.String({
    pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$',
    maxLength: 35,
    description: 'BCP-47 tag. Default `en-US`.',
  }),
  tools: t.Array(Tool, { maxItems: 32, description: 'Default none.' }),
  intents: t.Array(Intent, { maxItems: 200, description: 'Default none.' }),
  endpointing: Endpointing,
  bargeIn: t.Boolean({ description: 'Whether caller speech interrupts the agent. Default true.' }),
};

/** Fields with no default: absent unless set; `null` in a PATCH clears them. */
const optional = {
  prompt: t.String({ maxLength: 20_000, description: 'System prompt of the `llm` brain.' }),
  greeting: t.String({ maxLength: 2000, description: 'Said when the call connects.' }),
  voice: t.String({ minLength: 1, maxLength: 100, description: 'TTS voice name.' }),
  stt: SttSettings,
  llm: LlmSettings,
  tts: TtsSettings,
  maxDurationSec: integer({ minimum: 10, maximum: 86_400, description: 'Hang up after this long.' }),
  maxConcurrentCalls: integer({
    minimum: 1,
    maximum: 100_000,
    description: 'Live calls this agent may hold.',
  }),
  sampleRate: oneOf([8000, 16_000, 24_000, 48_000], {
    description: 'Pipeline rate, Hz. Default: the call’s own rate (no resampling).',
  }),
};

function optionalAll<P extends TProperties>(props: P): { [K in keyof P]: TOptional<P[K]> } {
  return Object.fromEntries(Object.entries(props).map(([k, s]) => [k, t.Optional(s)])) as never;
}

function clearableAll<P extends TProperties>(props: P): { [K in keyof P]: TOptional<TUnion<[P[K], TNull]>> } {
  return Object.fromEntries(Object.entries(props).map(([k, s]) => [k, t.Optional(nullable(s))])) as never;
}

const exampleConfig = {
  name: 'Front desk',
  brain: 'scripted',
  greeting: 'Hello, thanks for calling Bella Pizza. How can I help?',
  language: 'en-US',
  tts: { provider: 'espeak' },
  intents: [
    { name: 'hours', examples: ['when are you open', 'opening hours'], reply: 'We are open 9 to 5.' },
  ],
  endpointing: { minMs: 500, maxMs: 3000 },
  bargeIn: true,
  maxDurationSec: 600,
  maxConcurrentCalls: 5,
};

/** `POST /v1/agents`: `name` required, the rest defaulted or absent. */
export const CreateAgentBody = t.Object(
  { name, ...optionalAll(defaulted), ...optionalAll(optional) },
  { ...strict, examples: [exampleConfig] },
);

/** `PATCH /v1/agents/{id}`: any non-empty subset; `null` clears a field that has no default. */
export const UpdateAgentBody = t.Object(
  { name: t.Optional(name), ...optionalAll(defaulted), ...clearableAll(optional) },
  { ...strict, minProperties: 1, examples: [{ greeting: 'Hi! Bella Pizza here.', maxDurationSec: null }] },
);

/** A complete agent configuration, as stored and versioned. */
export const AgentConfig = t.Object(
  { name, ...defaulted, ...optionalAll(optional) },
  { ...strict, examples: [{ ...exampleConfig, tools: [] }] },
);

const meta = {
  id: t.String({ pattern: AGENT_ID }),
  version: integer({ minimum: 1, description: 'Starts at 1; every update adds one.' }),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
};

export const Agent = t.Composite([t.Object(meta), AgentConfig], {
  examples: [
    {
      id: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
      version: 1,
      createdAt: '2026-01-05T09:30:00.000Z',
      updatedAt: '2026-01-05T09:30:00.000Z',
      tools: [],
      ...exampleConfig,
    },
  ],
});

export const AgentVersion = t.Object(
  {
    agentId: meta.id,
    version: meta.version,
    createdAt: meta.createdAt,
    config: AgentConfig,
  },
  {
    examples: [
      {
        agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        version: 1,
        createdAt: '2026-01-05T09:30:00.000Z',
        config: { ...exampleConfig, tools: [] },
      },
    ],
  },
);

export const DeletedAgent = t.Object(
  { id: t.String({ pattern: AGENT_ID }), deleted: t.Literal(true) },
  { examples: [{ id: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab', deleted: true }] },
);

export const AgentParams = t.Object({
  id: t.String({ pattern: AGENT_ID, examples: ['agt_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const AgentListQuery = pageQuery(
  t.String({ pattern: AGENT_ID, description: 'nextCursor of the previous page.' }),
);
export const AgentPage = pageOf(Agent);
export const VersionListQuery = pageQuery(
  t.String({ pattern: '^[1-9][0-9]{0,8}$', description: 'nextCursor of the previous page.' }),
);
export const VersionPage = pageOf(AgentVersion);

export type AgentConfig = (typeof AgentConfig)['static'];
export type CreateAgentBody = (typeof CreateAgentBody)['static'];
export type UpdateAgentBody = (typeof UpdateAgentBody)['static'];
export type Agent = (typeof Agent)['static'];
export type AgentVersion = (typeof AgentVersion)['static'];
