import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity, requireAdmin } from '../../auth/index.ts';
import { errorModels, errorResponses } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import { ApiKey, CreatedKey, CreateKeyBody, KeyListQuery, KeyPage, KeyParams } from './model.ts';
import type { KeyService } from './service.ts';

/** 403 for a key that is not an admin key. */
const ADMIN_ONLY = {
  summary: 'The key is not an admin key',
  code: 'admin_key_required',
  message: 'only an admin API key may manage API keys',
};

/** `/v1/keys`: list, create (the secret is in that one response) and revoke the account's API keys. */
export const keys = (auth: ApiKeyAuth, service: KeyService) =>
  new Elysia({ name: 'sipai/keys' })
    .use(errorModels)
    .use(auth)
    .get(
      '/keys',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: KeyListQuery,
        response: { 200: KeyPage, 422: 'Error', ...authErrors },
        detail: {
          summary: 'List API keys',
          description: 'Newest first. Secrets are never shown again; `prefix` identifies a key.',
          tags: ['keys'],
          security: bearerSecurity,
        },
      },
    )
    .post(
      '/keys',
      async ({ principal, body, set }) => {
        requireAdmin(principal);
        const created = await service.create(principal.accountId, body);
        set.status = 201;
        return created;
      },
      {
        body: CreateKeyBody,
        parse: 'json',
        response: { 201: CreatedKey, 400: 'Error', 403: 'Error', 422: 'Error', ...authErrors },
        detail: {
          summary: 'Create an API key',
          description: 'Admin keys only. The response carries the secret, once: it is stored only as a hash.',
          tags: ['keys'],
          security: bearerSecurity,
          responses: errorResponses({ 403: [ADMIN_ONLY] }),
        },
      },
    )
    .delete(
      '/keys/:id',
      ({ principal, params }) => {
        requireAdmin(principal);
        return service.revoke(principal.accountId, params.id);
      },
      {
        params: KeyParams,
        response: { 200: ApiKey, 403: 'Error', 404: 'Error', 409: 'Error', ...authErrors },
        detail: {
          summary: 'Revoke an API key',
          description:
            'Admin keys only. The key stops working at once; revoking twice is harmless. The last active admin key of an account cannot be revoked (409).',
          responses: errorResponses({
            403: [ADMIN_ONLY],
            409: [
              {
                summary: 'The account’s last active admin key',
                code: 'last_admin_key',
                message: 'this is the account’s last active admin key; create another admin key first',
              },
            ],
          }),
          tags: ['keys'],
          security: bearerSecurity,
        },
      },
    );

export { KeyService, type Principal } from './service.ts';
