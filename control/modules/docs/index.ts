import { openapi } from '@elysiajs/openapi';
import { Elysia, t } from 'elysia';
import { openApiWebhooks } from '../../../core/events/catalogue.ts';
import { ApiError, ErrorSchema } from '../../errors.ts';
import { ASSETS_PATH, loadSwaggerAssets, SWAGGER_CSP, SWAGGER_PATH, swaggerPage } from './swagger-ui.ts';

/** Where the OpenAPI document is served, under `/v1`. */
export const OPENAPI_PATH = '/openapi.json';

/** A schema as plain JSON, without the `$id` Elysia's `.model()` stamps on it. */
function withoutId(schema: object): Record<string, unknown> {
  const { $id: _, ...plain } = JSON.parse(JSON.stringify(schema));
  return plain;
}

const securityHeaders = {
  'content-security-policy': SWAGGER_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * The API's documentation: the OpenAPI 3.1 document generated from every route's schemas
 * (`/v1/openapi.json`) and Swagger UI over it (`/v1/swagger`), assets included.
 */
export const docs = (opts: { version: string; prefix: string }) => {
  const assets = loadSwaggerAssets(`${opts.prefix}${OPENAPI_PATH}`);
  const page = swaggerPage({ title: 'sipai API', assetsUrl: `${opts.prefix}${ASSETS_PATH}` });
  return new Elysia({ name: 'sipai/docs' })
    .use(
      openapi({
        provider: null,
        specPath: OPENAPI_PATH,
        documentation: {
          info: {
            title: 'sipai control API',
            version: opts.version,
            description:
              'Manage voice agents, phone numbers, calls, campaigns, webhooks, API keys and realtime tokens. Authenticate every request (except health) with `Authorization: Bearer sk_live_…`. Errors share one shape: `{ "error": { "code", "message", "details"? } }`.',
          },
          tags: [
            { name: 'agents', description: 'Voice agents and their versioned configuration.' },
            { name: 'numbers', description: 'Phone numbers routed to agents.' },
            {
              name: 'calls',
              description: 'Calls with their timelines; outbound calls; live commands to a call.',
            },
            {
              name: 'campaigns',
              description: 'Outbound campaigns: contacts, schedule, pacing, concurrency, retries.',
            },
            { name: 'realtime', description: 'Tokens for browsers joining `/realtime/voice`.' },
            {
              name: 'webhooks',
              description: 'Endpoints that receive the account’s events, signed (Standard Webhooks).',
            },
            { name: 'events', description: 'The event catalogue (docs/events.md).' },
            { name: 'keys', description: 'API keys of the account.' },
            { name: 'account', description: 'The calling key’s account.' },
            { name: 'health', description: 'Readiness.' },
          ],
          // The catalogue is plain OpenAPI path items; the plugin's type wants its own shape.
          webhooks: openApiWebhooks() as never,
          components: {
            // The `Error` model as plain JSON Schema: Elysia's registered copy carries an `$id`,
            // which in OpenAPI 3.1 rebases the `$ref`s that point at it, so Swagger UI cannot
            // resolve them.
            schemas: { Error: withoutId(ErrorSchema) },
            securitySchemes: {
              bearerAuth: {
                type: 'http',
                scheme: 'bearer',
                bearerFormat: 'sk_live_…',
                description: 'An API key. The first start prints an admin key (or takes ADMIN_API_KEY).',
              },
            },
          },
        },
      }),
    )
    .get(
      SWAGGER_PATH,
      () =>
        new Response(page, { headers: { ...securityHeaders, 'content-type': 'text/html; charset=utf-8' } }),
      { detail: { hide: true } },
    )
    .get(
      `${ASSETS_PATH}/:file`,
      ({ params }) => {
        const asset = assets.get(params.file);
        if (!asset) throw new ApiError(404, 'not_found', 'no such asset');
        return new Response(asset.body, {
          headers: {
            ...securityHeaders,
            'content-type': asset.type,
            'cache-control': 'public, max-age=3600',
          },
        });
      },
      { params: t.Object({ file: t.String() }), detail: { hide: true } },
    );
};
