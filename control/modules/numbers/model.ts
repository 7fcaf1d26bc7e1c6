import { t } from 'elysia';
import { pageOf, pageQuery } from '../../pagination.ts';
import { oneOf } from '../../schema.ts';
import { AGENT_ID } from '../agents/model.ts';

export const NUMBER_ID = '^num_[0-9a-z]{26}$';

/** E.164 (ITU-T E.164): "+", a country code that does not start with 0, at most 15 digits. */
export const E164 = '^\\+[1-9]\\d{1,14}$';

export const Provider = oneOf(['jambonz', 'twilio', 'telnyx'], {
  description: 'Which provider delivers this number’s calls.',
});

const label = t.String({ minLength: 1, maxLength: 100, description: 'A name for people.' });
const agentId = t.String({ pattern: AGENT_ID, description: 'An agent of the same account.' });

/** A phone number routed to an agent. */
export const PhoneNumber = t.Object(
  {
    id: t.String({ pattern: NUMBER_ID }),
    phoneNumber: t.String({ pattern: E164 }),
    provider: Provider,
    agentId,
    label: t.Union([label, t.Null()]),
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({ format: 'date-time' }),
  },
  {
    examples: [
      {
        id: 'num_01j9x6k3m2q8w5r7t4v0y1z3ab',
        phoneNumber: '+14155550123',
        provider: 'twilio',
        agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        label: 'Main line',
        createdAt: '2026-01-05T09:30:00.000Z',
        updatedAt: '2026-01-05T09:30:00.000Z',
      },
    ],
  },
);

export const CreateNumberBody = t.Object(
  {
    phoneNumber: t.String({
      pattern: E164,
      description: 'E.164, e.g. `+14155550123`. Unique across all accounts.',
    }),
    provider: Provider,
    agentId,
    label: t.Optional(label),
  },
  {
    additionalProperties: false,
    examples: [
      {
        phoneNumber: '+14155550123',
        provider: 'twilio',
        agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        label: 'Main line',
      },
    ],
  },
);

/** The number itself is fixed: to move a route, delete the number and add it again. */
export const UpdateNumberBody = t.Object(
  {
    provider: t.Optional(Provider),
    agentId: t.Optional(agentId),
    label: t.Optional(t.Union([label, t.Null()])),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    examples: [{ agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab' }],
  },
);

export const NumberParams = t.Object({
  id: t.String({ pattern: NUMBER_ID, examples: ['num_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const NumberListQuery = pageQuery(
  t.String({ pattern: NUMBER_ID, description: 'nextCursor of the previous page.' }),
);
export const NumberPage = pageOf(PhoneNumber);
export const DeletedNumber = t.Object(
  { id: t.String({ pattern: NUMBER_ID }), deleted: t.Literal(true) },
  { examples: [{ id: 'num_01j9x6k3m2q8w5r7t4v0y1z3ab', deleted: true }] },
);

export type PhoneNumber = (typeof PhoneNumber)['static'];
export type CreateNumberBody = (typeof CreateNumberBody)['static'];
export type UpdateNumberBody = (typeof UpdateNumberBody)['static'];
export type NumberProvider = (typeof Provider)['static'];
