import { t } from 'elysia';
import { pageOf, pageQuery } from '../../pagination.ts';
import { oneOf } from '../../schema.ts';

const KEY_ID = '^key_[0-9a-z]{26}$';

export const KeyRole = oneOf(['admin', 'member'], {
  description: '`admin` keys may also create and revoke keys; `member` keys use everything else.',
});

/** An API key as lists show it: never the secret, only its prefix. */
export const ApiKey = t.Object(
  {
    id: t.String({ pattern: KEY_ID }),
    name: t.String(),
    prefix: t.String({ description: 'The first characters of the secret, to recognise the key.' }),
    role: KeyRole,
    createdAt: t.String({ format: 'date-time' }),
    lastUsedAt: t.Union([t.String({ format: 'date-time' }), t.Null()], {
      description: 'Last authenticated request, to the minute (updated at most once a minute).',
    }),
    revokedAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  },
  {
    examples: [
      {
        id: 'key_01j9x6k3m2q8w5r7t4v0y1z3ab',
        name: 'ci deploys',
        prefix: 'sk_live_3fQ9xk2LmP0a',
        role: 'member',
        createdAt: '2026-01-05T09:30:00.000Z',
        lastUsedAt: null,
        revokedAt: null,
      },
    ],
  },
);

export const CreateKeyBody = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 100, description: 'What the key is for.' }),
    role: t.Optional(KeyRole),
  },
  { additionalProperties: false, examples: [{ name: 'ci deploys', role: 'member' }] },
);

/** The one response that carries the secret. */
export const CreatedKey = t.Composite(
  [
    ApiKey,
    t.Object({
      secret: t.String({ description: 'The API key. Shown only in this response: store it now.' }),
    }),
  ],
  {
    examples: [
      {
        id: 'key_01j9x6k3m2q8w5r7t4v0y1z3ab',
        name: 'ci deploys',
        prefix: 'sk_live_3fQ9xk2LmP0a',
        role: 'member',
        createdAt: '2026-01-05T09:30:00.000Z',
        lastUsedAt: null,
        revokedAt: null,
        secret: 'sk_live_3fQ9xk2LmP0aVbT7rWcYq1Zs8uHd4NeG6kJi5Xo2Mpw',
      },
    ],
  },
);

export const KeyParams = t.Object({
  id: t.String({ pattern: KEY_ID, examples: ['key_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const KeyListQuery = pageQuery(
  t.String({ pattern: KEY_ID, description: 'nextCursor of the previous page.' }),
);
export const KeyPage = pageOf(ApiKey);

export type KeyRole = (typeof KeyRole)['static'];
export type ApiKey = (typeof ApiKey)['static'];
