import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels } from '../../errors.ts';
import { Account } from './model.ts';
import type { AccountService } from './service.ts';

/** `GET /v1/account`: the account the calling key belongs to. */
export const accounts = (auth: ApiKeyAuth, service: AccountService) =>
  new Elysia({ name: 'sipai/accounts' })
    .use(errorModels)
    .use(auth)
    .get('/account', ({ principal }) => service.get(principal.accountId), {
      response: { 200: Account, ...authErrors },
      detail: {
        summary: 'The calling key’s account',
        description: 'The account the API key belongs to: its id, name and when it was created.',
        tags: ['account'],
        security: bearerSecurity,
      },
    });

export { Account } from './model.ts';
export { AccountService } from './service.ts';
