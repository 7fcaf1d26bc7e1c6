import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, notFound } from '../../errors.ts';
import { CreateTokenBody, RealtimeToken } from './model.ts';
import type { RealtimeService } from './service.ts';

/** `POST /v1/realtime/tokens`: a token a browser uses to open `/realtime/voice` with an agent. */
export const realtime = (auth: ApiKeyAuth, service: RealtimeService) =>
  new Elysia({ name: 'sipai/realtime' })
    .use(errorModels)
    .use(auth)
    .post('/realtime/tokens', ({ principal, body }) => service.createToken(principal.accountId, body), {
      body: CreateTokenBody,
      parse: 'json',
      response: { 200: RealtimeToken, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
      detail: {
        summary: 'Mint a realtime token',
        description:
          'For browsers and SDKs: open `url` as a WebSocket (native protocol) to talk to the agent. 404 when the agent is not in this account; 503 `realtime_disabled` when the server has no REALTIME_WS_SECRET.',
        tags: ['realtime'],
        security: bearerSecurity,
        responses: errorResponses({
          404: [
            {
              summary: 'The agent is not in this account',
              code: 'not_found',
              message: notFound('agent', 'agt_01j9x6k3m2q8w5r7t4v0y1z3ab').message,
            },
          ],
          503: [
            {
              summary: 'Realtime tokens are off on this deployment',
              code: 'realtime_disabled',
              message: 'realtime tokens are disabled: REALTIME_WS_SECRET is not set',
            },
          ],
        }),
      },
    });

export { REALTIME_VOICE_PATH, RealtimeService } from './service.ts';
