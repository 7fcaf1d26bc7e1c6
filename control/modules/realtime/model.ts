import { t } from 'elysia';
import { integer } from '../../schema.ts';
import { AGENT_ID } from '../agents/model.ts';

/** Longest token lifetime the API grants (core accepts up to 15 minutes). */
export const MAX_REALTIME_TTL_SEC = 600;
export const DEFAULT_REALTIME_TTL_SEC = 300;

export const CreateTokenBody = t.Object(
  {
    agentId: t.String({ pattern: AGENT_ID, description: 'An agent of the calling account.' }),
    callId: t.Optional(
      t.String({
        pattern: '^[A-Za-z0-9_.:-]{1,128}$',
        description: 'Binds the token to one call id (the token’s `sub`).',
      }),
    ),
    ttlSec: t.Optional(
      integer({
        minimum: 1,
        maximum: MAX_REALTIME_TTL_SEC,
        default: DEFAULT_REALTIME_TTL_SEC,
        description: 'How long the token admits a connection. The session itself may outlive it.',
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [{ agentId: 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab', ttlSec: 300 }],
  },
);

export const RealtimeToken = t.Object(
  {
    token: t.String({ description: 'Signed, short-lived; give it to the browser instead of an API key.' }),
    expiresAt: t.String({ format: 'date-time' }),
    url: t.String({ description: 'The WebSocket URL to open, token included.' }),
  },
  {
    examples: [
      {
        token: 'v1.eyJraW5kIjoicmVhbHRpbWUiLCJhZ2VudElkIjoiYWd0XzAxIn0.c2lnbmF0dXJl',
        expiresAt: '2026-01-05T09:35:00.000Z',
        url: 'wss://api.example.com/v1/realtime/voice?token=v1.eyJraW5kIjoicmVhbHRpbWUiLCJhZ2VudElkIjoiYWd0XzAxIn0.c2lnbmF0dXJl',
      },
    ],
  },
);

export type CreateTokenBody = (typeof CreateTokenBody)['static'];
export type RealtimeToken = (typeof RealtimeToken)['static'];
