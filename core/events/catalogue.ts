import { Type as T, type TObject, type TSchema } from '@sinclair/typebox';

/**
 * The public event catalogue: every event a customer can receive by webhook, typed and
 * versioned. One module for both planes: core names what happened on a call, control delivers
 * it (the outbox), documents it (docs/events.md, the OpenAPI `webhooks` section) and validates
 * endpoint filters against it. Internal timeline steps (core/session/timeline.ts) are mapped to
 * these in from-core.ts; a step with no public counterpart is never sent.
 *
 * Versioning: `version` is the schema version of the envelope and of the event's `data`. Fields
 * may be added within a version (receivers must ignore what they do not know); a field removed
 * or changed in meaning is a new version.
 */

/** The version every event of this catalogue carries. */
export const EVENT_VERSION = 1;

const Reason = (description: string) => T.String({ description });

const TranscriptLine = T.Object({
  role: T.Union([T.Literal('caller'), T.Literal('agent')]),
  text: T.String(),
});

const Direction = T.Union([T.Literal('inbound'), T.Literal('outbound')], {
  description: 'Who placed the call.',
});

/** One catalogue entry: what the event means, its data, and whether endpoints must ask for it. */
export interface EventDefinition {
  description: string;
  data: TObject;
  /**
   * Sent only to endpoints that name it in their filter (a chatty event, e.g. partial
   * transcripts); an endpoint without a filter gets every other event.
   */
  optIn?: boolean;
  /** Events about a call carry its id; control's own events (agents, campaigns) carry null. */
  scope: 'call' | 'account';
}

function define<D extends Record<string, EventDefinition>>(d: D): D {
  return d;
}

/** The catalogue itself, keyed by event type. */
export const EVENT_TYPES = define({
  'call.started': {
    scope: 'call',
    description:
      'The platform accepted a call (inbound: the provider offered it and an agent will answer; outbound: the dial was admitted). Nobody has answered yet.',
    data: T.Object({
      direction: T.Optional(Direction),
      from: T.Optional(T.String()),
      to: T.Optional(T.String()),
      campaignId: T.Optional(T.String()),
    }),
  },
  'call.answered': {
    scope: 'call',
    description: 'Media is flowing: the call was answered and the agent is on the line.',
    data: T.Object({
      direction: T.Optional(Direction),
      protocol: T.Optional(T.String({ description: 'The media protocol: twilio, jambonz, telnyx, native.' })),
      brain: T.Optional(T.String({ description: 'The kind of agent answering.' })),
    }),
  },
  'call.ended': {
    scope: 'call',
    description:
      'The call is over. Carries why, how long it lasted and the transcript (caller and agent lines, the last 100 at most).',
    data: T.Object({
      reason: Reason(
        'Why it ended, e.g. `hangup`, `stream_stopped`, `agent_hangup`, `transferred`, `error`.',
      ),
      durationMs: T.Optional(T.Integer({ minimum: 0 })),
      turns: T.Optional(T.Integer({ minimum: 0 })),
      transcript: T.Array(TranscriptLine),
    }),
  },
  'call.failed': {
    scope: 'call',
    description:
      'The call never reached an agent: refused by the platform (`at_capacity`, `no_route`, `unknown_agent`) or not answered (`busy`, `no-answer`, `failed`, `canceled`).',
    data: T.Object({
      reason: Reason(
        '`at_capacity`, `no_route`, `unknown_agent`, `busy`, `no-answer`, `failed`, `canceled`, …',
      ),
      from: T.Optional(T.String()),
      to: T.Optional(T.String()),
    }),
  },
  'transcript.final': {
    scope: 'call',
    description: 'What the caller said, once speech recognition settled on it.',
    data: T.Object({ text: T.String() }),
  },
  'transcript.partial': {
    scope: 'call',
    optIn: true,
    description: 'Interim speech recognition of the caller. Opt-in: only endpoints that list it receive it.',
    data: T.Object({ text: T.String() }),
  },
  'agent.reply': {
    scope: 'call',
    description: 'What the agent said (the part the caller heard when interrupted).',
    data: T.Object({
      text: T.String(),
      interrupted: T.Optional(T.Boolean()),
      playedMs: T.Optional(T.Number()),
    }),
  },
  'tool.called': {
    scope: 'call',
    description: 'The agent called a tool.',
    data: T.Object({
      name: T.String(),
      id: T.Optional(T.String()),
      arguments: T.Optional(T.String({ description: 'The arguments as JSON text, up to 2,000 characters.' })),
    }),
  },
  'tool.result': {
    scope: 'call',
    description: 'A tool the agent called answered.',
    data: T.Object({
      name: T.String(),
      id: T.Optional(T.String()),
      ok: T.Optional(T.Boolean()),
      result: T.Optional(T.String({ description: 'Up to 2,000 characters.' })),
    }),
  },
  'call.transferred': {
    scope: 'call',
    description: 'The agent handed the call to another number or address.',
    data: T.Object({ to: T.String() }),
  },
  'turn.latency': {
    scope: 'call',
    description: 'How long one turn took, from the end of the caller speaking to the agent’s first audio.',
    data: T.Object({ turn: T.Optional(T.Integer()) }, { additionalProperties: true }),
  },
  'agent.created': {
    scope: 'account',
    description: 'An agent was created (through the API; written with the agent, in one transaction).',
    data: T.Object({
      agentId: T.String(),
      name: T.Optional(T.String()),
      version: T.Optional(T.Integer({ description: 'Its first version: 1.' })),
    }),
  },
  'agent.updated': {
    scope: 'account',
    description: 'An agent’s configuration changed (a new version).',
    data: T.Object({
      agentId: T.String(),
      name: T.Optional(T.String()),
      version: T.Optional(T.Integer({ description: 'The new version.' })),
    }),
  },
  'agent.deleted': {
    scope: 'account',
    description: 'An agent was deleted.',
    data: T.Object({ agentId: T.String(), name: T.Optional(T.String()) }),
  },
  'campaign.completed': {
    scope: 'account',
    description:
      'Every contact of a campaign has a final outcome: the campaign runner marked it `completed` (a canceled campaign sends none).',
    data: T.Object(
      {
        campaignId: T.String(),
        name: T.Optional(T.String()),
        contacts: T.Optional(
          T.Object(
            {
              total: T.Integer({ minimum: 0 }),
              completed: T.Integer({ minimum: 0, description: 'Answered.' }),
              failed: T.Integer({ minimum: 0 }),
              unknown: T.Integer({ minimum: 0, description: 'Dials whose fate was lost.' }),
              canceled: T.Integer({ minimum: 0 }),
            },
            { description: 'Contacts by final state.' },
          ),
        ),
      },
      { additionalProperties: true },
    ),
  },
  'webhook.test': {
    scope: 'account',
    description: 'Sent by `POST /v1/webhooks/{id}/test` to the one endpoint tested.',
    optIn: true,
    data: T.Object({ message: T.String() }),
  },
});

export type EventType = keyof typeof EVENT_TYPES;

/** Every event type, in catalogue order. */
export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as EventType[];

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPE_NAMES);

/** Whether `name` is an event type of the catalogue. */
export function isEventType(name: string): name is EventType {
  return EVENT_TYPE_SET.has(name);
}

/** The envelope every event travels in: the body of a webhook request. */
export function envelopeSchema(
  type: EventType | null = null,
  data: TSchema = T.Record(T.String(), T.Unknown()),
) {
  return T.Object(
    {
      id: T.String({
        description:
          'Unique id of the event (`evt_…`), also sent as `webhook-id`: the same on every retry and replay, so receivers dedupe on it.',
      }),
      type: type ? T.Literal(type) : T.String({ description: 'The event type.' }),
      version: T.Literal(EVENT_VERSION),
      accountId: T.String(),
      callId: T.Union([T.String(), T.Null()], { description: 'The call, for call events; null otherwise.' }),
      at: T.String({ format: 'date-time', description: 'When it happened.' }),
      data,
    },
    { additionalProperties: false },
  );
}

/** An event as sent. */
export interface PublicEvent {
  id: string;
  type: EventType;
  version: typeof EVENT_VERSION;
  accountId: string;
  callId: string | null;
  at: string;
  data: Record<string, unknown>;
}

/**
 * Whether an endpoint with filter `events` receives `type`: an empty filter means every event
 * that is not opt-in; otherwise exactly the types listed.
 */
export function wants(events: readonly string[], type: EventType): boolean {
  if (events.length === 0) return !(EVENT_TYPES[type] as EventDefinition).optIn;
  return events.includes(type);
}

/**
 * The catalogue as the OpenAPI 3.1 `webhooks` object: one entry per event type, each a POST
 * whose body is the envelope with that type's data, signed with Standard Webhooks headers.
 */
export function openApiWebhooks(): Record<string, unknown> {
  const signatureHeaders = [
    {
      name: 'webhook-id',
      in: 'header',
      required: true,
      schema: { type: 'string' },
      description: 'The event id.',
    },
    {
      name: 'webhook-timestamp',
      in: 'header',
      required: true,
      schema: { type: 'string' },
      description: 'Unix seconds when this attempt was signed.',
    },
    {
      name: 'webhook-signature',
      in: 'header',
      required: true,
      schema: { type: 'string' },
      description:
        'Space-separated `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` (Standard Webhooks); two while a rotated secret overlaps.',
    },
  ];
  const out: Record<string, unknown> = {};
  for (const name of EVENT_TYPE_NAMES) {
    const def = EVENT_TYPES[name] as EventDefinition;
    out[name] = {
      post: {
        summary: name,
        description: def.optIn ? `${def.description} (opt-in)` : def.description,
        tags: ['events'],
        parameters: signatureHeaders,
        requestBody: {
          required: true,
          content: { 'application/json': { schema: plainJson(envelopeSchema(name, def.data)) } },
        },
        responses: {
          '2XX': { description: 'Received. Anything else (or no answer within the timeout) is retried.' },
        },
      },
    };
  }
  return out;
}

/** A TypeBox schema as plain JSON Schema (TypeBox's symbols dropped). */
function plainJson(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema));
}
