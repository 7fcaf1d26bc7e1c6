import { t } from 'elysia';

/** The tenant an API key belongs to; every resource the API serves belongs to one. */
export const Account = t.Object(
  {
    id: t.String({ pattern: '^acc_[0-9a-z]{26}$' }),
    name: t.String(),
    createdAt: t.String({ format: 'date-time' }),
  },
  {
    examples: [
      { id: 'acc_01j9x6k3m2q8w5r7t4v0y1z3ab', name: 'default', createdAt: '2026-01-05T09:30:00.000Z' },
    ],
  },
);

export type Account = (typeof Account)['static'];
