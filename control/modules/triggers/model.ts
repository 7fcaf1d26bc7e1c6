import { t } from 'elysia';
import { pageOf, pageQuery } from '../../pagination.ts';
import { integer, nullable, oneOf } from '../../schema.ts';
import { AGENT_ID } from '../agents/model.ts';
import { CAMPAIGN_ID, Call } from '../calls/model.ts';
import { Contact } from '../campaigns/model.ts';
import { E164 } from '../numbers/model.ts';

export const TRIGGER_ID = '^trg_[0-9a-z]{26}$';

const strict = { additionalProperties: false } as const;

export const TRIGGER_ACTIONS = ['call', 'campaign_contact'] as const;
export const TriggerAction = oneOf(TRIGGER_ACTIONS, {
  description:
    '`call`: place an outbound call now with `agentId` from `from` through `provider`; `campaign_contact`: add the callee to `campaignId`, whose runner dials it like any contact.',
});

const Provider = oneOf(['jambonz', 'twilio'], { description: 'Which provider places the call.' });

const exampleTrigger = {
  id: 'trg_01j9x6k3m2q8w5r7t4v0y1z3ab',
  name: 'Website callback form',
  action: 'call',
  agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
  from: '+14155550100',
  provider: 'jambonz',
  campaignId: null,
  enabled: true,
  url: 'https://voice.example.com/webhooks/triggers/trg_01j9x6k3m2q8w5r7t4v0y1z3ab',
  secretRotatedUntil: null,
  lastFiredAt: null,
  createdAt: '2026-01-05T09:30:00.000Z',
  updatedAt: '2026-01-05T09:30:00.000Z',
};

/** A trigger as the API shows it: never its secret. */
export const Trigger = t.Object(
  {
    id: t.String({ pattern: TRIGGER_ID }),
    name: t.String(),
    action: TriggerAction,
    agentId: nullable(t.String({ description: '`call` triggers: the agent that talks.' })),
    from: nullable(t.String({ description: '`call` triggers: the caller id, E.164.' })),
    provider: nullable(oneOf(['jambonz', 'twilio'], { description: '`call` triggers: the provider.' })),
    campaignId: nullable(t.String({ description: '`campaign_contact` triggers: the campaign.' })),
    enabled: t.Boolean({ description: 'A disabled trigger refuses every request (403 `trigger_disabled`).' }),
    url: t.String({
      description: 'Where the CRM or form POSTs, signed with the trigger’s secret (Standard Webhooks).',
    }),
    secretRotatedUntil: nullable(
      t.String({
        format: 'date-time',
        description: 'While set, requests signed with the previous secret are still accepted, until then.',
      }),
    ),
    lastFiredAt: nullable(t.String({ format: 'date-time', description: 'When it last started something.' })),
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({ format: 'date-time' }),
  },
  { examples: [exampleTrigger] },
);

/** The responses that carry the secret: creation and rotation. */
export const TriggerWithSecret = t.Composite(
  [
    Trigger,
    t.Object({
      secret: t.String({
        description:
          'The signing secret (`whsec_…`) requests to `url` must be signed with. Shown only in this response: store it now.',
      }),
    }),
  ],
  {
    examples: [{ ...exampleTrigger, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/3iJbVmJf2Q=' }],
  },
);

const triggerFields = {
  name: t.String({ minLength: 1, maxLength: 100 }),
  agentId: t.String({ pattern: AGENT_ID, description: '`call`: the agent that talks; of this account.' }),
  from: t.String({
    pattern: E164,
    description: '`call`: caller id, E.164 — a number the provider lets you use.',
  }),
  provider: Provider,
  campaignId: t.String({
    pattern: CAMPAIGN_ID,
    description: '`campaign_contact`: the campaign contacts are added to; of this account.',
  }),
  enabled: t.Boolean({ description: 'Default true.' }),
};

export const CreateTriggerBody = t.Object(
  {
    name: triggerFields.name,
    action: TriggerAction,
    agentId: t.Optional(triggerFields.agentId),
    from: t.Optional(triggerFields.from),
    provider: t.Optional(triggerFields.provider),
    campaignId: t.Optional(triggerFields.campaignId),
    enabled: t.Optional(triggerFields.enabled),
  },
  {
    ...strict,
    examples: [
      {
        name: 'Website callback form',
        action: 'call',
        agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        from: '+14155550100',
        provider: 'jambonz',
      },
      { name: 'CRM new lead', action: 'campaign_contact', campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab' },
    ],
  },
);

export const UpdateTriggerBody = t.Object(
  {
    name: t.Optional(triggerFields.name),
    agentId: t.Optional(triggerFields.agentId),
    from: t.Optional(triggerFields.from),
    provider: t.Optional(triggerFields.provider),
    campaignId: t.Optional(triggerFields.campaignId),
    enabled: t.Optional(triggerFields.enabled),
  },
  {
    ...strict,
    examples: [{ enabled: false }, { agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab', from: '+14155550101' }],
  },
);

export const RotateTriggerSecretBody = t.Object(
  {
    overlapSec: t.Optional(
      integer({
        minimum: 0,
        maximum: 7 * 86_400,
        description: 'How long requests signed with the previous secret are still accepted. Default a day.',
      }),
    ),
  },
  { ...strict, examples: [{ overlapSec: 3600 }] },
);

/**
 * What a CRM or form POSTs to `/webhooks/triggers/{id}`: the callee and the agent's variables.
 * The same shape for both actions (a `campaign_contact` trigger adds `to` as the contact).
 */
export const FireTriggerBody = t.Object(
  {
    to: t.String({ pattern: E164, description: 'Who to call, E.164.' }),
    variables: Contact.properties.variables,
  },
  {
    ...strict,
    examples: [{ to: '+14155550123', variables: { firstName: 'Ada', reason: 'callback request' } }],
  },
);

/** What a trigger started: the call, or the contact added. */
export const TriggerFired = t.Object(
  {
    triggerId: t.String({ pattern: TRIGGER_ID }),
    messageId: t.String({ description: 'The request’s `webhook-id`; a second request with it is refused.' }),
    action: TriggerAction,
    call: nullable(Call),
    contact: nullable(
      t.Object({
        campaignId: t.String({ pattern: CAMPAIGN_ID }),
        seq: integer({ minimum: 1, description: 'Its position in the campaign’s list.' }),
        phoneNumber: t.String({ pattern: E164 }),
      }),
    ),
  },
  {
    examples: [
      {
        triggerId: 'trg_01j9x6k3m2q8w5r7t4v0y1z3ab',
        messageId: 'msg_2b8f0c1e4d',
        action: 'campaign_contact',
        call: null,
        contact: { campaignId: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab', seq: 42, phoneNumber: '+14155550123' },
      },
    ],
  },
);

export const TriggerParams = t.Object({
  id: t.String({ pattern: TRIGGER_ID, examples: ['trg_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const TriggerListQuery = pageQuery(
  t.String({ pattern: TRIGGER_ID, description: 'nextCursor of the previous page.' }),
);
export const TriggerPage = pageOf(Trigger);
export const DeletedTrigger = t.Object(
  { id: t.String({ pattern: TRIGGER_ID }), deleted: t.Literal(true) },
  { examples: [{ id: 'trg_01j9x6k3m2q8w5r7t4v0y1z3ab', deleted: true }] },
);

export type Trigger = (typeof Trigger)['static'];
export type TriggerAction = (typeof TriggerAction)['static'];
export type CreateTriggerBody = (typeof CreateTriggerBody)['static'];
export type UpdateTriggerBody = (typeof UpdateTriggerBody)['static'];
export type FireTriggerBody = (typeof FireTriggerBody)['static'];
export type TriggerFired = (typeof TriggerFired)['static'];
