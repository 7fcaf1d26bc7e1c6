import { toOpenAPISchema } from '@elysiajs/openapi';
import { Elysia, t } from 'elysia';
import { openApiWebhooks } from '../../../core/events/catalogue.ts';
import {
  PROVIDER_NAMES,
  PROVIDER_STREAM_PATHS,
  PROVIDER_WEBHOOKS,
  REALTIME_SOCKET_PATHS,
} from '../../../core/telephony/webhooks/paths.ts';
import { ApiError, ErrorSchema } from '../../errors.ts';
import { type DocumentedRoute, documentErrors } from './error-examples.ts';
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
 * The URLs core serves beside `/v1` (provider webhooks, media and realtime sockets), as a
 * Markdown table: they are not operations of this API, so they are documented in its text.
 */
export function corePathsMarkdown(): string {
  const hooks = PROVIDER_WEBHOOKS.map(
    (h) =>
      `| ${PROVIDER_NAMES[h.provider]} | ${h.role} | \`${h.method} ${h.path}\` | ${h.setting} | ${h.answers} |`,
  );
  const streams = Object.entries(PROVIDER_STREAM_PATHS).map(
    ([provider, path]) => `\`${path}\` (${PROVIDER_NAMES[provider as keyof typeof PROVIDER_NAMES]})`,
  );
  return [
    '**Provider webhooks** (served by core on the same host; not under `/v1`, no API key: each is verified by the provider’s signature, and by `TELEPHONY_SHARED_SECRET` when set). Point a phone number at them:',
    '',
    '| provider | for | request | set it as | what it is |',
    '|---|---|---|---|---|',
    ...hooks,
    '',
    `**Media WebSockets**: ${streams.join(', ')}. The call webhook’s answer names them with a stream token for that one call; they are never set by hand.`,
    '',
    `**Realtime voice socket**: \`GET ${REALTIME_SOCKET_PATHS.join('` or `GET ')}\` upgraded to a WebSocket speaking the native protocol (docs/realtime-protocol.md): JSON control messages (\`start\`, \`dtmf\`, \`text\`, \`stop\`; from the server \`transcript\`, \`agent_text\`, \`event\`, \`clear\`, \`error\`) and binary PCM16 audio frames. Authenticate with a token from \`POST /v1/realtime/tokens\` as \`?token=\` (browsers), or with the operator’s \`REALTIME_API_KEY\` as the subprotocol \`sipai.key.<key>\` next to \`sipai.v1\`.`,
  ].join('\n');
}

const DESCRIPTION = [
  'Manage voice agents, phone numbers, calls, campaigns, webhooks, API keys and realtime tokens. Authenticate every request (except health) with `Authorization: Bearer sk_live_…`. Errors share one shape: `{ "error": { "code", "message", "details"? } }`; each operation lists the errors it gives, with examples. A method a path does not serve is 405 with `Allow`.',
  '',
  corePathsMarkdown(),
].join('\n');

/**
 * The API's documentation: the OpenAPI 3.1 document generated from every route's schemas
 * (`/v1/openapi.json`), each error response with the examples the route gives (see
 * error-examples.ts), and Swagger UI over it (`/v1/swagger`), assets included.
 */
export const docs = (opts: { version: string; prefix: string }) => {
  const assets = loadSwaggerAssets(`${opts.prefix}${OPENAPI_PATH}`);
  const page = swaggerPage({ title: 'sipai API', assetsUrl: `${opts.prefix}${ASSETS_PATH}` });
  const documentation = {
    openapi: '3.1.2',
    info: {
      title: 'sipai control API',
      version: opts.version,
      description: DESCRIPTION,
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
      {
        name: 'realtime',
        description:
          'Tokens for browsers joining the realtime voice socket (`/realtime/voice`, served by core; see the description above).',
      },
      {
        name: 'webhooks',
        description: 'Endpoints that receive the account’s events, signed (Standard Webhooks).',
      },
      { name: 'events', description: 'The event catalogue (docs/events.md).' },
      { name: 'keys', description: 'API keys of the account.' },
      { name: 'account', description: 'The calling key’s account.' },
      { name: 'health', description: 'Readiness.' },
      { name: 'telephony', description: corePathsMarkdown() },
    ],
    // The catalogue is plain OpenAPI path items.
    webhooks: openApiWebhooks(),
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
  };
  // The document, made once the app has all its routes (at the first request for it).
  let document: Record<string, unknown> | null = null;
  let routeCount = 0;
  const plugin: Elysia = new Elysia({ name: 'sipai/docs' });
  return plugin
    .get(
      OPENAPI_PATH,
      () => {
        // The whole app's routes: Elysia points a mounted plugin's `getGlobalRoutes` at its root's.
        const routes = (plugin as unknown as { getGlobalRoutes(): DocumentedRoute[] }).getGlobalRoutes();
        if (document && routeCount === routes.length) return document;
        const generated = toOpenAPISchema(plugin, undefined, undefined, undefined, '3.1.2');
        const paths = generated.paths as Record<string, Record<string, Record<string, unknown>>>;
        documentErrors(paths, routes);
        routeCount = routes.length;
        document = {
          ...documentation,
          paths,
          components: {
            ...documentation.components,
            schemas: { ...generated.components.schemas, ...documentation.components.schemas },
          },
        };
        return document;
      },
      { detail: { hide: true } },
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
