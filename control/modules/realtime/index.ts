import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels } from '../../errors.ts';
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
      response: { 200: RealtimeToken, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors, 503: 'Error' },
      detail: {
        summary: 'Mint a realtime token',
        description:
          'For browsers and SDKs: open `url` as a WebSocket (native protocol) to talk to the agent. 404 when the agent is not in this account; 503 `realtime_disabled` when the server has no REALTIME_WS_SECRET.',
        tags: ['realtime'],
        security: bearerSecurity,
      },
    });

export { REALTIME_VOICE_PATH, RealtimeService } from './service.ts';
