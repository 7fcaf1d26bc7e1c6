import { type Static, Type as T } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The one record both planes share for an agent: control validates and writes it to the Store
 * (`agent:<id>`), core reads and validates it again before a call runs. One schema, so a field
 * the API accepts cannot silently miss the brain, and a record core cannot read is refused with
 * a reason instead of being cast.
 */

/** The brain every plane assumes when none is named: offline, grammar-constrained, scripted. */
export const DEFAULT_BRAIN = 'scripted';

export const BRAINS = ['echo', 'loopback', 'scripted', 'llm'] as const;
export type BrainKind = (typeof BRAINS)[number];

const Options = T.Record(T.String(), T.Union([T.String(), T.Number(), T.Boolean()]));

const ProviderChoice = T.Object({
  provider: T.String({ minLength: 1 }),
  model: T.Optional(T.String()),
  /** A second provider to use when this one fails for good. */
  fallback: T.Optional(T.String()),
  options: T.Optional(Options),
});
export type ProviderChoice = Static<typeof ProviderChoice>;

export const IntentRecord = T.Object({
  name: T.String({ minLength: 1 }),
  examples: T.Array(T.String({ minLength: 1 }), { minItems: 1 }),
  reply: T.String({ minLength: 1 }),
  /** What the scripted brain does after replying: `hangup` ends the call, `transfer` transfers it. */
  action: T.Optional(T.Union([T.Literal('hangup'), T.Literal('transfer')])),
  /** Keypad digit that selects this intent in the DTMF menu. */
  digit: T.Optional(T.String({ pattern: '^[0-9*#]$' })),
});
export type IntentRecord = Static<typeof IntentRecord>;

export const ToolRecord = T.Object({
  name: T.String({ minLength: 1 }),
  description: T.String(),
  parameters: T.Record(T.String(), T.Unknown()),
  webhookUrl: T.String(),
});
export type ToolRecord = Static<typeof ToolRecord>;

export const AgentRecord = T.Object({
  id: T.String({ minLength: 1 }),
  accountId: T.Optional(T.String()),
  name: T.Optional(T.String()),
  version: T.Optional(T.Integer()),
  brain: T.Union(BRAINS.map((b) => T.Literal(b))),
  language: T.String(),
  prompt: T.Optional(T.String()),
  greeting: T.Optional(T.String()),
  voice: T.Optional(T.String()),
  stt: T.Optional(ProviderChoice),
  llm: T.Optional(ProviderChoice),
  tts: T.Optional(ProviderChoice),
  intents: T.Array(IntentRecord),
  tools: T.Array(ToolRecord),
  /** End of turn: `minMs` of silence, extended up to `maxMs` while the caller seems mid-phrase. */
  endpointing: T.Object({ minMs: T.Integer({ minimum: 0 }), maxMs: T.Integer({ minimum: 0 }) }),
  bargeIn: T.Boolean(),
  /** Caller speech needed before the agent is cut off (a cough or "uh-huh" is shorter). */
  interruptMinMs: T.Optional(T.Integer({ minimum: 0 })),
  /** Where "a person" and repeated misses transfer the caller (E.164 or a SIP URI). */
  transferTo: T.Optional(T.String()),
  maxDurationSec: T.Optional(T.Integer({ minimum: 1 })),
  maxConcurrentCalls: T.Optional(T.Integer({ minimum: 1 })),
  sampleRate: T.Optional(T.Integer({ minimum: 8000 })),
});
export type AgentRecord = Static<typeof AgentRecord>;

/** Fields a record gets when its writer left them out (the same defaults control applies). */
export const RECORD_DEFAULTS = {
  brain: DEFAULT_BRAIN,
  language: 'en-US',
  intents: [],
  tools: [],
  endpointing: { minMs: 500, maxMs: 3000 },
  bargeIn: true,
} as const satisfies Partial<AgentRecord>;

/**
 * The providers a brain uses when the record names none: offline for `scripted`; the vendors
 * users bring keys for (Deepgram, OpenAI) for `llm`. Readiness and the registry both read this.
 */
export function defaultProviders(brain: BrainKind): { stt: string; tts: string; llm: string | null } {
  return brain === 'llm'
    ? { stt: 'deepgram', tts: 'openai', llm: 'openai' }
    : { stt: 'pocketsphinx', tts: 'flite', llm: null };
}

/** Default caller speech before a barge-in, ms. */
export const DEFAULT_INTERRUPT_MIN_MS = 300;

/**
 * Parses a stored agent record: defaults applied, unknown fields dropped, then checked against
 * the schema. Returns the record or the first problem, naming its field.
 */
export function parseAgentRecord(
  id: string,
  raw: unknown,
): { ok: true; record: AgentRecord } | { ok: false; error: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: 'agent record is not an object' };
  }
  const candidate = Value.Clean(AgentRecord, {
    ...RECORD_DEFAULTS,
    ...stripNulls(raw as Record<string, unknown>),
    id,
  });
  if (Value.Check(AgentRecord, candidate)) return { ok: true, record: candidate };
  const first = Value.Errors(AgentRecord, candidate).First();
  const field = first?.path.replace(/^\//, '').replace(/\//g, '.') || '(record)';
  return { ok: false, error: `${field}: ${first?.message ?? 'invalid'}` };
}

function stripNulls(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}
