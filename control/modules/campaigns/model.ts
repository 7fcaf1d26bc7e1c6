import { t } from 'elysia';
import { pageOf, pageQuery } from '../../pagination.ts';
import { integer, nullable, oneOf } from '../../schema.ts';
import { AGENT_ID } from '../agents/model.ts';
import { CALL_ID, CAMPAIGN_ID } from '../calls/model.ts';
import { E164 } from '../numbers/model.ts';
import { WEEKDAYS } from './schedule.ts';

const strict = { additionalProperties: false } as const;

/** Most contacts one request may carry (a CSV upload included). */
export const MAX_CONTACTS_PER_REQUEST = 10_000;

export const HHMM = '^([01][0-9]|2[0-3]):[0-5][0-9]$';

export const Schedule = t.Object(
  {
    daysOfWeek: t.Array(oneOf(WEEKDAYS), {
      minItems: 1,
      maxItems: 7,
      uniqueItems: true,
      description: 'Days calls may start on, in the campaign’s time zone.',
    }),
    startTime: t.String({ pattern: HHMM, description: 'Local time the window opens, `HH:MM` (24 h).' }),
    endTime: t.String({
      pattern: HHMM,
      description: 'Local time it closes; not after startTime means overnight (22:00-06:00).',
    }),
  },
  {
    ...strict,
    examples: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], startTime: '09:00', endTime: '17:30' }],
  },
);

export const Contact = t.Object(
  {
    phoneNumber: t.String({ pattern: E164, description: 'E.164; unique within the campaign.' }),
    variables: t.Optional(
      t.Record(t.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' }), t.String({ maxLength: 500 }), {
        maxProperties: 32,
        description: 'Strings for the agent, e.g. `{ "firstName": "Ada" }`.',
      }),
    ),
  },
  { ...strict, examples: [{ phoneNumber: '+14155550123', variables: { firstName: 'Ada' } }] },
);

export const Retry = t.Object(
  {
    maxAttempts: integer({
      minimum: 1,
      maximum: 10,
      description: 'Dial attempts per contact in all; only busy and no-answer are retried.',
    }),
    retryDelaySec: integer({ minimum: 0, maximum: 86_400, description: 'Wait before a retry.' }),
  },
  { ...strict, examples: [{ maxAttempts: 3, retryDelaySec: 600 }] },
);

export const CAMPAIGN_STATUSES = ['draft', 'running', 'paused', 'completed', 'canceled'] as const;
export const CampaignStatus = oneOf(CAMPAIGN_STATUSES, {
  description:
    '`draft` until started; `running` (dialling inside its window) ⇄ `paused`; `completed` once every contact is done; `canceled`.',
});

export const CONTACT_STATUSES = [
  'pending',
  'dialing',
  'retrying',
  'completed',
  'failed',
  'unknown',
  'canceled',
] as const;
export const ContactStatus = oneOf(CONTACT_STATUSES, {
  description:
    '`unknown`: a dial whose fate was lost (control stopped between claiming and the provider’s answer, or no outcome ever came); never redialled automatically.',
});

export const Progress = t.Object(
  {
    total: integer({ minimum: 0 }),
    pending: integer({ minimum: 0 }),
    dialing: integer({ minimum: 0, description: 'Claimed and dialled, outcome not known yet.' }),
    retrying: integer({ minimum: 0, description: 'Busy or no answer; waiting for another attempt.' }),
    completed: integer({ minimum: 0, description: 'Answered.' }),
    failed: integer({ minimum: 0 }),
    unknown: integer({ minimum: 0 }),
    canceled: integer({ minimum: 0 }),
  },
  { description: 'Contacts by state; the states add up to `total`.' },
);

const emptyProgress = {
  total: 200,
  pending: 120,
  dialing: 10,
  retrying: 5,
  completed: 60,
  failed: 5,
  unknown: 0,
  canceled: 0,
};

const settings = {
  name: t.String({ minLength: 1, maxLength: 100 }),
  agentId: t.String({ pattern: AGENT_ID, description: 'The agent that talks; of this account.' }),
  provider: oneOf(['jambonz', 'twilio'], { description: 'Which provider places the calls.' }),
  callerId: t.String({ pattern: E164, description: 'The number calls come from, E.164.' }),
  timeZone: t.String({
    minLength: 1,
    maxLength: 64,
    description: 'IANA time zone of the schedule, e.g. `America/New_York`.',
  }),
  callsPerSecond: t.Number({
    exclusiveMinimum: 0,
    maximum: 50,
    description: 'Pacing: calls started per second at most, across every control node.',
  }),
  maxConcurrentCalls: integer({
    minimum: 1,
    maximum: 100_000,
    description: 'Live calls of this campaign at once (a lease per call in the Store).',
  }),
};

const exampleSettings = {
  name: 'January renewals',
  agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
  provider: 'jambonz',
  callerId: '+14155550100',
  timeZone: 'America/New_York',
  schedule: { daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], startTime: '09:00', endTime: '17:30' },
  callsPerSecond: 5,
  maxConcurrentCalls: 10,
  retry: { maxAttempts: 3, retryDelaySec: 600 },
};

export const CreateCampaignBody = t.Object(
  {
    ...settings,
    schedule: t.Optional(Schedule),
    retry: t.Optional(Retry),
    contacts: t.Optional(t.Array(Contact, { maxItems: MAX_CONTACTS_PER_REQUEST })),
  },
  {
    ...strict,
    examples: [
      { ...exampleSettings, contacts: [{ phoneNumber: '+14155550123', variables: { firstName: 'Ada' } }] },
    ],
  },
);

export const Campaign = t.Object(
  {
    id: t.String({ pattern: CAMPAIGN_ID }),
    ...settings,
    schedule: nullable(Schedule),
    retry: Retry,
    status: CampaignStatus,
    progress: Progress,
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({ format: 'date-time' }),
    startedAt: nullable(t.String({ format: 'date-time' })),
    endedAt: nullable(t.String({ format: 'date-time' })),
  },
  {
    examples: [
      {
        id: 'cmp_01j9x6k3m2q8w5r7t4v0y1z3ab',
        ...exampleSettings,
        status: 'running',
        progress: emptyProgress,
        createdAt: '2026-01-05T09:30:00.000Z',
        updatedAt: '2026-01-05T09:31:00.000Z',
        startedAt: '2026-01-05T09:31:00.000Z',
        endedAt: null,
      },
    ],
  },
);

export const AddContactsBody = t.Object(
  { contacts: t.Array(Contact, { minItems: 1, maxItems: MAX_CONTACTS_PER_REQUEST }) },
  { ...strict, examples: [{ contacts: [{ phoneNumber: '+14155550123' }, { phoneNumber: '+14155550124' }] }] },
);

export const AddedContacts = t.Object(
  { added: integer({ minimum: 0 }), progress: Progress },
  { examples: [{ added: 2, progress: { ...emptyProgress, total: 202, pending: 122 } }] },
);

export const CampaignContact = t.Object(
  {
    seq: integer({ minimum: 1, description: 'Position in the campaign’s list.' }),
    phoneNumber: t.String({ pattern: E164 }),
    variables: nullable(t.Record(t.String(), t.String())),
    status: ContactStatus,
    attempts: integer({ minimum: 0 }),
    nextAttemptAt: nullable(t.String({ format: 'date-time' })),
    callId: nullable(t.String({ pattern: CALL_ID, description: 'The call of the latest attempt.' })),
    lastOutcome: nullable(
      t.String({ description: 'e.g. `completed`, `busy`, `no-answer`, `provider_error: …`.' }),
    ),
    updatedAt: t.String({ format: 'date-time' }),
  },
  {
    examples: [
      {
        seq: 1,
        phoneNumber: '+14155550123',
        variables: { firstName: 'Ada' },
        status: 'retrying',
        attempts: 1,
        nextAttemptAt: '2026-01-05T09:41:00.000Z',
        callId: 'cal_01j9x6k3m2q8w5r7t4v0y1z3ab',
        lastOutcome: 'busy',
        updatedAt: '2026-01-05T09:31:00.000Z',
      },
    ],
  },
);

export const CampaignParams = t.Object({
  id: t.String({ pattern: CAMPAIGN_ID, examples: ['cmp_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const CampaignListQuery = pageQuery(
  t.String({ pattern: CAMPAIGN_ID, description: 'nextCursor of the previous page.' }),
);
export const CampaignPage = pageOf(Campaign);

const contactQuery = pageQuery(
  t.String({ pattern: '^[1-9][0-9]{0,9}$', description: 'nextCursor of the previous page.' }),
);
export const ContactListQuery = t.Object(
  { ...contactQuery.properties, status: t.Optional(ContactStatus) },
  { additionalProperties: false },
);
export const ContactPage = pageOf(CampaignContact);

export type Schedule = (typeof Schedule)['static'];
export type Campaign = (typeof Campaign)['static'];
export type CampaignStatus = (typeof CampaignStatus)['static'];
export type ContactStatus = (typeof ContactStatus)['static'];
export type CampaignContact = (typeof CampaignContact)['static'];
export type CreateCampaignBody = (typeof CreateCampaignBody)['static'];
export type Progress = (typeof Progress)['static'];
export type CampaignAction = 'start' | 'pause' | 'resume' | 'cancel';
