import { t } from 'elysia';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, pageOf } from '../../pagination.ts';
import { integer, nullable, oneOf } from '../../schema.ts';
import { AGENT_ID, TRANSFER_TARGET } from '../agents/model.ts';
import { E164 } from '../numbers/model.ts';

/** Our ids (`cal_…`) for calls we place; inbound calls keep the provider's call id. */
export const CALL_ID = '^[A-Za-z0-9_.:-]{1,128}$';
export const CAMPAIGN_ID = '^cmp_[0-9a-z]{26}$';

export const CALL_STATUSES = [
  'queued',
  'ringing',
  'in-progress',
  'completed',
  'failed',
  'busy',
  'no-answer',
  'canceled',
  'refused',
] as const;

export const CallStatus = oneOf(CALL_STATUSES, {
  description:
    '`queued` until the provider reports it ringing or core answers it; `in-progress` while it lives; then how it ended. `refused`: core turned the call away (`endReason` says why).',
});

const when = t.String({ format: 'date-time' });

const exampleCall = {
  id: 'cal_01j9x6k3m2q8w5r7t4v0y1z3ab',
  provider: 'jambonz',
  providerCallId: '5f3e0d5f-ba6f-4b18-8d80-7c1a2b3c4d5e',
  agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
  campaignId: null,
  direction: 'outbound',
  from: '+14155550100',
  to: '+14155550123',
  status: 'completed',
  startedAt: '2026-01-05T09:30:00.000Z',
  answeredAt: '2026-01-05T09:30:07.120Z',
  endedAt: '2026-01-05T09:31:42.500Z',
  endReason: 'provider_hangup',
};

/** A call as lists show it. */
export const Call = t.Object(
  {
    id: t.String({ pattern: CALL_ID }),
    provider: nullable(oneOf(['jambonz', 'twilio', 'telnyx', 'native'])),
    providerCallId: nullable(t.String({ description: 'The provider’s id of the call.' })),
    agentId: nullable(t.String()),
    campaignId: nullable(t.String({ pattern: CAMPAIGN_ID })),
    direction: nullable(oneOf(['inbound', 'outbound'])),
    from: nullable(t.String()),
    to: nullable(t.String()),
    status: CallStatus,
    startedAt: t.String({ format: 'date-time', description: 'When it was placed, or reached us.' }),
    answeredAt: nullable(when),
    endedAt: nullable(when),
    endReason: nullable(
      t.String({
        description:
          'Why it ended: core’s reason (`provider_hangup`, `agent_hangup`, `command`, `idle_timeout`, …) or the provider’s final status. Refused calls: `at_capacity`, `no_route`, `unknown_agent` or `ended` (a replayed webhook of an ended call). `never_streamed`: admitted, but no media session ever started. `lost`: the node running it went away and no end was ever reported.',
      }),
    ),
  },
  { examples: [exampleCall] },
);

export const LatencyStats = t.Object({
  count: integer({ minimum: 0 }),
  p50: t.Number(),
  p95: t.Number(),
  max: t.Number(),
  mean: t.Number(),
});

const latencyField = (description: string) => t.Union([LatencyStats, t.Null()], { description });

export const LatencySummary = t.Object(
  {
    turns: integer({ minimum: 0, description: 'Caller turns the call had.' }),
    endpointingMs: latencyField('Silence waited before a caller’s turn was taken as finished.'),
    sttMs: latencyField('Speech-to-text time for a final transcript.'),
    llmFirstTokenMs: latencyField('Time to the language model’s first token.'),
    ttsFirstAudioMs: latencyField('Time to the first synthesised audio.'),
    turnMs: latencyField('End of the caller’s turn to the agent’s first audio.'),
  },
  {
    description: 'Computed from the timeline; a field is null when no event reported it.',
    examples: [
      {
        turns: 3,
        endpointingMs: { count: 3, p50: 520, p95: 610, max: 610, mean: 540 },
        sttMs: null,
        llmFirstTokenMs: null,
        ttsFirstAudioMs: null,
        turnMs: null,
      },
    ],
  },
);

export const CallEvent = t.Object({
  type: t.String({ description: 'e.g. `call.started`, `turn.completed`, `barge_in`, `call.ended`.' }),
  at: when,
  tMs: nullable(integer({ description: 'Milliseconds since the session started.' })),
  data: nullable(t.Record(t.String(), t.Unknown())),
});

const callMs = (description: string) => nullable(t.Number({ minimum: 0, description }));

export const TranscriptEntry = t.Object(
  {
    role: oneOf(['user', 'agent']),
    text: t.String({ description: 'The words; for a keypad press, the digit.' }),
    at: t.String({ format: 'date-time', description: 'When it started.' }),
    startMs: callMs('Start, milliseconds since the call started.'),
    endMs: callMs('End, milliseconds since the call started.'),
    source: t.Optional(
      oneOf(['speech', 'text', 'dtmf'], {
        description: 'Caller entries: recognised speech, typed text (native clients), or a keypad digit.',
      }),
    ),
    interrupted: t.Optional(
      t.Boolean({ description: 'Agent entries: the caller cut the agent off before the end.' }),
    ),
    rejected: t.Optional(
      t.Boolean({
        description: 'Speech the recogniser judged outside what it understands; `text` is its best guess.',
      }),
    ),
  },
  {
    examples: [
      {
        role: 'user',
        text: 'when are you open',
        at: '2026-01-05T09:30:10.600Z',
        startMs: 3480,
        endMs: 4760,
        source: 'speech',
      },
    ],
  },
);

/** A call with everything recorded about it. */
export const CallDetail = t.Composite(
  [
    Call,
    t.Object({
      timeline: t.Array(CallEvent, { description: 'Every recorded event, in order.' }),
      transcript: t.Array(TranscriptEntry, {
        description:
          'What the caller said, typed or keyed and what the agent said, in order of when it started; partial transcripts are left out.',
      }),
      latency: LatencySummary,
      recordingUrl: nullable(t.String({ description: 'Null: calls are not recorded yet.' })),
    }),
  ],
  {
    examples: [
      {
        ...exampleCall,
        timeline: [
          {
            type: 'call.started',
            at: '2026-01-05T09:30:07.120Z',
            tMs: 0,
            data: { protocol: 'jambonz', direction: 'outbound' },
          },
          {
            type: 'turn.completed',
            at: '2026-01-05T09:30:12.400Z',
            tMs: 5280,
            data: { turn: 1, speechMs: 1800, endpointingMs: 520 },
          },
        ],
        transcript: [],
        latency: {
          turns: 1,
          endpointingMs: { count: 1, p50: 520, p95: 520, max: 520, mean: 520 },
          sttMs: null,
          llmFirstTokenMs: null,
          ttsFirstAudioMs: null,
          turnMs: null,
        },
        recordingUrl: null,
      },
    ],
  },
);

export const CreateCallBody = t.Object(
  {
    agentId: t.String({ pattern: AGENT_ID, description: 'The agent that talks; of this account.' }),
    to: t.String({ pattern: E164, description: 'Number to call, E.164.' }),
    from: t.String({ pattern: E164, description: 'Caller id, E.164: a number the provider lets you use.' }),
    provider: oneOf(['jambonz', 'twilio'], { description: 'Which provider places the call.' }),
    campaignId: t.Optional(
      t.String({ pattern: CAMPAIGN_ID, description: 'Counts the call against this campaign’s limit.' }),
    ),
    timeoutSec: t.Optional(
      integer({ minimum: 5, maximum: 120, description: 'How long it may ring. Default 45.' }),
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        to: '+14155550123',
        from: '+14155550100',
        provider: 'jambonz',
      },
    ],
  },
);

export const CallParams = t.Object({
  id: t.String({ pattern: CALL_ID, examples: ['cal_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});

export const CallListQuery = t.Object(
  {
    limit: t.Optional(
      t.Integer({
        minimum: 1,
        maximum: MAX_PAGE_SIZE,
        default: DEFAULT_PAGE_SIZE,
        description: 'Items per page.',
      }),
    ),
    cursor: t.Optional(
      t.String({ pattern: '^[A-Za-z0-9_-]{1,400}$', description: 'nextCursor of the previous page.' }),
    ),
    status: t.Optional(CallStatus),
    agentId: t.Optional(t.String({ pattern: AGENT_ID, description: 'Calls of this agent.' })),
    campaignId: t.Optional(t.String({ pattern: CAMPAIGN_ID })),
    direction: t.Optional(oneOf(['inbound', 'outbound'])),
    since: t.Optional(t.String({ format: 'date-time', description: 'Calls started at or after this time.' })),
    until: t.Optional(t.String({ format: 'date-time', description: 'Calls started before this time.' })),
  },
  { additionalProperties: false },
);

export const CallPage = pageOf(Call);

export const HangupBody = t.Object(
  {
    reason: t.Optional(t.String({ minLength: 1, maxLength: 200, description: 'Recorded on the timeline.' })),
  },
  { additionalProperties: false, examples: [{ reason: 'operator ended the call' }] },
);

export const TransferBody = t.Object(
  {
    to: t.String({
      pattern: TRANSFER_TARGET,
      description: 'Where to transfer the caller: an E.164 number or a `sip:` URI.',
    }),
  },
  {
    additionalProperties: false,
    examples: [{ to: '+14155550199' }, { to: 'sip:frontdesk@pbx.example.com' }],
  },
);

export const SayBody = t.Object(
  { text: t.String({ minLength: 1, maxLength: 2000, description: 'What the agent should say now.' }) },
  { additionalProperties: false, examples: [{ text: 'One moment please.' }] },
);

export const CommandAccepted = t.Object(
  {
    callId: t.String({ pattern: CALL_ID }),
    command: oneOf(['hangup', 'transfer', 'say']),
    delivered: t.Literal(true, { description: 'A core node running the call received it.' }),
  },
  { examples: [{ callId: 'cal_01j9x6k3m2q8w5r7t4v0y1z3ab', command: 'hangup', delivered: true }] },
);

export type Call = (typeof Call)['static'];
export type CallDetail = (typeof CallDetail)['static'];
export type CallStatus = (typeof CallStatus)['static'];
export type CreateCallBody = (typeof CreateCallBody)['static'];
export type CallListQuery = (typeof CallListQuery)['static'];
