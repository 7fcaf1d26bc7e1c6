import type { TNull, TOptional, TProperties, TUnion } from '@sinclair/typebox';
import { t } from 'elysia';
import { DEFAULT_INTERRUPT_MIN_MS } from '../../../core/agent/config.ts';
import { pageOf, pageQuery } from '../../pagination.ts';
import { integer, nullable, oneOf } from '../../schema.ts';

/**
 * An agent's configuration as the API takes it. Every object rejects unknown fields
 * (`additionalProperties: false`), so a typo is a 422 naming the field, not a silent no-op.
 */

export const AGENT_ID = '^agt_[0-9a-z]{26}$';

/** Where a call can be transferred: an E.164 number or a SIP URI. */
export const TRANSFER_TARGET = '^(\\+[1-9][0-9]{6,14}|sip:[^\\s]{1,250})$';

/** Speech-to-text engines an agent may name; `pocketsphinx` runs offline. */
export const STT_PROVIDERS = ['pocketsphinx', 'deepgram'] as const;
/** Language-model providers an agent may name. */
export const LLM_PROVIDERS = ['openai', 'openai-compatible'] as const;
/** Voices an agent may name; `flite`, `festival` and `espeak` run offline. */
export const TTS_PROVIDERS = ['flite', 'festival', 'espeak', 'openai', 'elevenlabs'] as const;

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

const fallback = <V extends readonly [string, ...string[]]>(values: V) =>
  t.Optional(
    oneOf(values, {
      description: 'A provider of the same kind to use when this one fails for good; not the same one.',
    }),
  );

export const SttSettings = t.Object(
  {
    provider: oneOf(STT_PROVIDERS, {
      description:
        '`pocketsphinx` (default) runs offline, constrained to the agent’s intents; `deepgram` is not available in this release.',
    }),
    model,
    fallback: fallback(STT_PROVIDERS),
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'pocketsphinx' }] },
);

export const LlmSettings = t.Object(
  {
    provider: oneOf(LLM_PROVIDERS, {
      description:
        '`openai-compatible` speaks the OpenAI chat completions wire format (set `options.baseUrl`). Language models are not available in this release.',
    }),
    model,
    fallback: fallback(LLM_PROVIDERS),
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'openai', model: 'gpt-4o-mini', options: { temperature: 0.3 } }] },
);

export const TtsSettings = t.Object(
  {
    provider: oneOf(TTS_PROVIDERS, {
      description:
        '`flite` (default; voices `rms`, `slt`, `awb`, `kal16` through the agent’s `voice`), `festival` and `espeak` (espeak-ng) run offline; `openai` and `elevenlabs` are not available in this release.',
    }),
    model,
    fallback: fallback(TTS_PROVIDERS),
    options: t.Optional(ProviderOptions),
  },
  { ...strict, examples: [{ provider: 'flite' }] },
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
    action: t.Optional(
      oneOf(['hangup', 'transfer'], {
        description:
          'What the scripted brain does after the reply: `hangup` ends the call, `transfer` hands the caller to `transferTo` (which must be set).',
      }),
    ),
    digit: t.Optional(
      t.String({
        pattern: '^[0-9*#]$',
        description: 'Keypad key (0-9, *, #) that selects this intent; unique within the agent.',
      }),
    ),
  },
  {
    ...strict,
    examples: [
      {
        name: 'hours',
        examples: ['when are you open', 'opening hours'],
        reply: 'We are open 9 to 5.',
        digit: '1',
      },
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
  interruptMinMs: integer({
    minimum: 0,
    maximum: 5000,
    description: `Caller speech needed before the agent is cut off, so a cough or an "uh-huh" is not an interruption. Default ${DEFAULT_INTERRUPT_MIN_MS}.`,
  }),
};

/** Fields with no default: absent unless set; `null` in a PATCH clears them. */
const optional = {
  prompt: t.String({ maxLength: 20_000, description: 'System prompt of the `llm` brain.' }),
  greeting: t.String({ maxLength: 2000, description: 'Said when the call connects.' }),
  voice: t.String({
    minLength: 1,
    maxLength: 100,
    description: 'TTS voice name, e.g. `rms`, `slt`, `awb` or `kal16` for `flite`.',
  }),
  transferTo: t.String({
    pattern: TRANSFER_TARGET,
    description:
      'Where a caller asking for a person, or one the agent keeps failing to understand, is transferred: E.164 or a `sip:` URI.',
  }),
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
  voice: 'rms',
  tts: { provider: 'flite' },
  intents: [
    {
      name: 'hours',
      examples: ['when are you open', 'opening hours'],
      reply: 'We are open 9 to 5.',
      digit: '1',
    },
  ],
  endpointing: { minMs: 500, maxMs: 3000 },
  bargeIn: true,
  interruptMinMs: 300,
  transferTo: '+14155550199',
  maxDurationSec: 600,
  maxConcurrentCalls: 5,
};

const { name: _exampleName, ...exampleSettings } = exampleConfig;

/**
 * An agent's settings as one nested object, `{"name": …, "config": {…}}`: the same fields as
 * the flat body, validated the same way. A request uses one shape or the other, never both.
 */
export const AgentSettingsInput = t.Object(
  { ...optionalAll(defaulted), ...optionalAll(optional) },
  {
    ...strict,
    description:
      'The agent’s settings nested under `config` (the same fields as the top level, which must then carry only `name`).',
    examples: [{ prompt: 'You are a helpful agent.' }],
  },
);

/** `config` of a PATCH: the same fields as the flat patch; `null` clears a field that has no default. */
export const AgentSettingsPatch = t.Object(
  { ...optionalAll(defaulted), ...clearableAll(optional) },
  { ...strict, description: 'The settings to change, nested (instead of at the top level).' },
);

/**
 * `POST /v1/agents`: `name` required, the rest defaulted or absent, given either at the top
 * level or nested under `config` (422 when both). A `prompt` with no `brain` means `llm`.
 */
export const CreateAgentBody = t.Object(
  { name, ...optionalAll(defaulted), ...optionalAll(optional), config: t.Optional(AgentSettingsInput) },
  {
    ...strict,
    examples: [exampleConfig, { name: 'Prod Canary Agent', config: { prompt: 'You are a helpful agent.' } }],
  },
);

/** `PATCH /v1/agents/{id}`: any non-empty subset, flat or under `config`; `null` clears a field that has no default. */
export const UpdateAgentBody = t.Object(
  {
    name: t.Optional(name),
    ...optionalAll(defaulted),
    ...clearableAll(optional),
    config: t.Optional(AgentSettingsPatch),
  },
  {
    ...strict,
    minProperties: 1,
    examples: [
      { greeting: 'Hi! Bella Pizza here.', maxDurationSec: null },
      { config: { greeting: 'Hi! Bella Pizza here.' } },
    ],
  },
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

/** Read-only, computed on every read: whether this deployment can run the agent as configured. */
const readiness = {
  ready: t.Boolean({
    description:
      'Read-only. True when this deployment can run the agent as configured: its speech engines are installed, its vocabulary is known to the recogniser, its keys are set. An agent that is not ready is still saved.',
  }),
  warnings: t.Array(t.String(), {
    description:
      'Read-only. What stands in the way, one line each, naming what is missing (a Debian package, an API key, a word). Empty when ready.',
  }),
};

/** An agent as stored, without what is computed on read. */
export const StoredAgent = t.Composite([t.Object(meta), AgentConfig]);

/** A stored agent's settings (everything but `name`), as responses repeat them under `config`. */
export const AgentSettings = t.Object(
  { ...defaulted, ...optionalAll(optional) },
  {
    ...strict,
    description:
      'The agent’s settings again, nested: what `POST /v1/agents` takes as `config` (the top-level fields stay for existing clients).',
  },
);

export const Agent = t.Composite(
  [t.Object(meta), t.Object(readiness), AgentConfig, t.Object({ config: AgentSettings })],
  {
    examples: [
      {
        id: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        version: 1,
        createdAt: '2026-01-05T09:30:00.000Z',
        updatedAt: '2026-01-05T09:30:00.000Z',
        ready: true,
        warnings: [],
        tools: [],
        ...exampleConfig,
        config: { ...exampleSettings, tools: [] },
      },
    ],
  },
);

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
export type AgentSettings = (typeof AgentSettings)['static'];
export type Agent = (typeof Agent)['static'];
export type StoredAgent = (typeof StoredAgent)['static'];
export type AgentVersion = (typeof AgentVersion)['static'];
