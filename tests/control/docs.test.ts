import { generateKeyPairSync } from 'node:crypto';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { ErrorSchema } from '../../control/errors.ts';
import { Account } from '../../control/modules/accounts/model.ts';
import * as agents from '../../control/modules/agents/model.ts';
import * as calls from '../../control/modules/calls/model.ts';
import * as campaigns from '../../control/modules/campaigns/model.ts';
import { MALFORMED_ID } from '../../control/modules/docs/error-examples.ts';
import * as apiKeys from '../../control/modules/keys/model.ts';
import * as numbers from '../../control/modules/numbers/model.ts';
import * as realtime from '../../control/modules/realtime/model.ts';
import * as triggers from '../../control/modules/triggers/model.ts';
import { Core } from '../../core/app.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { MemoryStore } from '../../core/store/index.ts';
import {
  PROVIDER_STREAM_PATHS,
  PROVIDER_WEBHOOKS,
  REALTIME_SOCKET_PATHS,
} from '../../core/telephony/webhooks/paths.ts';
import { type Backing, embedded, type Json, makeControl } from './support.ts';

let backing: Backing;
let control: Control;
let spec: Json;
let adminKey: string;

beforeAll(async () => {
  backing = await embedded();
  control = makeControl(backing);
  const { bootstrap } = await control.start();
  adminKey = bootstrap?.secret ?? '';
  const res = await control.fetch(new Request('http://localhost/v1/openapi.json'));
  spec = await res.json();
});

afterAll(async () => {
  await control?.close();
  await backing?.close();
});

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every documented route of the running app, as `METHOD /path/{param}`. */
function appRoutes(): string[] {
  return control.api.routes
    .filter((r) => !(r.hooks as { detail?: { hide?: boolean } } | undefined)?.detail?.hide)
    .map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:([^/]+)/g, '{$1}')}`)
    .sort();
}

function specOperations(): [string, Json][] {
  return Object.entries(spec.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Json>)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, Json]),
  );
}

describe('OpenAPI document', () => {
  it('validates as OpenAPI 3', async () => {
    const api = await SwaggerParser.validate(structuredClone(spec));
    expect('openapi' in api && api.openapi).toMatch(/^3\.\d+\.\d+$/);
  });

  it('resolves every $ref against the document root (no $id rebases them)', () => {
    const text = JSON.stringify(spec);
    expect(text.match(/"\$id":"[^"]*"/g) ?? []).toEqual([]);
    const refs = [...text.matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(spec.components.schemas[ref.slice('#/components/schemas/'.length)], ref).toBeDefined();
    }
  });

  it('types every enum like its values', () => {
    const enums: { type: unknown; values: unknown[] }[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if (Array.isArray(o.enum)) enums.push({ type: o.type, values: o.enum });
        Object.values(o).forEach(walk);
      }
    };
    walk(spec);
    expect(enums.length).toBeGreaterThan(5);
    for (const { type, values } of enums) {
      if (type === undefined) continue; // an untyped enum: its values are the whole truth
      const allowed = Array.isArray(type) ? type : [type];
      for (const v of values) {
        const kinds = v === null ? ['null'] : typeof v === 'number' ? ['number', 'integer'] : [typeof v];
        expect(
          kinds.some((k) => allowed.includes(k)),
          `${JSON.stringify(v)} in a ${allowed} enum`,
        ).toBe(true);
      }
    }
  });

  it('lists exactly the routes the app serves', () => {
    const documented = specOperations()
      .map(([name]) => name)
      .sort();
    expect(documented).toEqual(appRoutes());
    expect(documented).toEqual(
      expect.arrayContaining([
        'GET /v1/agents',
        'POST /v1/agents',
        'PATCH /v1/agents/{id}',
        'GET /v1/agents/{id}/versions',
        'DELETE /v1/numbers/{id}',
        'POST /v1/keys',
        'GET /v1/account',
        'POST /v1/realtime/tokens',
        'GET /v1/calls',
        'POST /v1/calls',
        'GET /v1/calls/{id}',
        'GET /v1/calls/events',
        'GET /v1/calls/{id}/events',
        'POST /v1/calls/{id}/hangup',
        'POST /v1/calls/{id}/transfer',
        'POST /v1/calls/{id}/say',
        'GET /v1/campaigns',
        'POST /v1/campaigns',
        'GET /v1/campaigns/{id}',
        'POST /v1/campaigns/{id}/contacts',
        'GET /v1/campaigns/{id}/contacts',
        'POST /v1/campaigns/{id}/start',
        'POST /v1/campaigns/{id}/pause',
        'POST /v1/campaigns/{id}/resume',
        'POST /v1/campaigns/{id}/cancel',
        'GET /v1/webhooks',
        'POST /v1/webhooks',
        'POST /v1/webhooks/{id}/test',
        'GET /v1/webhooks/{id}/deliveries',
        'GET /v1/triggers',
        'POST /v1/triggers',
        'POST /v1/triggers/{id}/rotate-secret',
      ]),
    );
  });

  it('gives every operation a summary, a tag and a 2xx schema; every authenticated one bearer auth and the shared error', () => {
    expect(spec.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(spec.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
    for (const [name, op] of specOperations()) {
      expect(op.summary, name).toBeTypeOf('string');
      expect(op.tags?.length, name).toBeGreaterThan(0);
      const success = Object.entries(op.responses as Record<string, Json>).find(([status]) =>
        status.startsWith('2'),
      );
      // JSON, or server-sent events for the call streams.
      const content = success?.[1].content;
      expect(content['application/json']?.schema ?? content['text/event-stream']?.schema, name).toBeDefined();
      if (name === 'GET /v1/health') continue;
      expect(op.security, name).toEqual([{ bearerAuth: [] }]);
      for (const status of ['401', '429']) {
        expect(op.responses[status].content['application/json'].schema, `${name} ${status}`).toEqual({
          $ref: '#/components/schemas/Error',
        });
      }
    }
  });

  it('gives every request body a JSON schema that rejects unknown fields, with an example', () => {
    const withBody = specOperations().filter(([, op]) => op.requestBody);
    expect(withBody.map(([name]) => name).sort()).toEqual(
      [
        'PATCH /v1/agents/{id}',
        'PATCH /v1/numbers/{id}',
        'POST /v1/agents',
        'POST /v1/calls',
        'POST /v1/calls/{id}/hangup',
        'POST /v1/calls/{id}/say',
        'POST /v1/calls/{id}/transfer',
        'POST /v1/campaigns',
        'POST /v1/campaigns/{id}/contacts',
        'POST /v1/keys',
        'POST /v1/numbers',
        'POST /v1/realtime/tokens',
        'POST /v1/webhooks',
        'POST /v1/webhooks/{id}/rotate-secret',
        'PATCH /v1/webhooks/{id}',
        'POST /v1/triggers',
        'PATCH /v1/triggers/{id}',
        'POST /v1/triggers/{id}/rotate-secret',
      ].sort(),
    );
    for (const [name, op] of withBody) {
      expect(Object.keys(op.requestBody.content), name).toEqual(['application/json']);
      const schema = op.requestBody.content['application/json'].schema;
      expect(schema.additionalProperties, name).toBe(false);
      expect(schema.examples?.length, name).toBeGreaterThan(0);
    }
  });

  it('has examples that satisfy their own schemas', () => {
    const schemas = {
      ErrorSchema,
      Account,
      ...agents,
      ...apiKeys,
      ...numbers,
      ...realtime,
      ...calls,
      ...campaigns,
      ...triggers,
    } as Record<string, unknown>;
    let checked = 0;
    for (const [name, schema] of Object.entries(schemas)) {
      const examples = (schema as { examples?: unknown[] } | null)?.examples;
      if (typeof schema !== 'object' || !Array.isArray(examples)) continue;
      for (const example of examples) {
        const errors = [...Value.Errors(schema as never, example)].map((e) => `${e.path} ${e.message}`);
        expect(errors, name).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(30);
  });
});

/** Every documented error response: the operation, its status, and the response object. */
function errorResponses(): { name: string; path: string; status: string; response: Json }[] {
  return specOperations().flatMap(([name, op]) =>
    Object.entries(op.responses as Record<string, Json>)
      .filter(([status, r]) => !status.startsWith('2') && r.content?.['application/json']?.schema?.$ref)
      .map(([status, response]) => ({ name, path: name.split(' ')[1], status, response })),
  );
}

/** The codes an error under each status may carry. */
const CODES: Record<string, (code: string) => boolean> = {
  '400': (c) => c === 'malformed_body',
  '401': (c) => c === 'unauthorized',
  '403': (c) => !['validation_failed', 'not_found', 'unauthorized'].includes(c),
  '404': (c) => c === 'not_found',
  '409': (c) => !['validation_failed', 'not_found', 'unauthorized', 'rate_limited'].includes(c),
  '413': (c) => c === 'payload_too_large',
  '415': (c) => c === 'unsupported_media_type',
  '422': (c) => c === 'validation_failed',
  '429': (c) => ['rate_limited', 'too_many_failed_authentications', 'at_capacity'].includes(c),
  '502': (c) => c === 'provider_error',
  '503': (c) => /_(unavailable|not_configured|disabled)$/.test(c),
};

const examplesOf = (response: Json): Json[] =>
  Object.values((response.content['application/json'].examples ?? {}) as Record<string, Json>).map(
    (e) => e.value,
  );

describe('OpenAPI error responses and examples', () => {
  it('describes every operation', () => {
    for (const [name, op] of specOperations()) {
      expect(typeof op.description === 'string' && op.description.length > 20, `${name} description`).toBe(
        true,
      );
      expect(op.description, name).not.toBe(op.summary);
    }
  });

  it('gives every error response examples of its own status, each a valid error body', () => {
    const responses = errorResponses();
    expect(responses.length).toBeGreaterThan(150);
    for (const { name, status, response } of responses) {
      const at = `${name} ${status}`;
      expect(response.description, at).toBeTypeOf('string');
      const examples = examplesOf(response);
      expect(examples.length, `${at} has examples`).toBeGreaterThan(0);
      const fits = CODES[status];
      expect(fits, `${at}: a status with known codes`).toBeDefined();
      for (const value of examples) {
        expect(
          [...Value.Errors(ErrorSchema, value)].map((e) => e.message),
          at,
        ).toEqual([]);
        expect(fits(value.error.code), `${at}: code ${value.error.code}`).toBe(true);
        expect(value.error.message, at).not.toMatch(/Expected|\^|\\d|\[0-9/);
      }
      if (status === '401') expect(response.headers?.['WWW-Authenticate'], at).toBeDefined();
      if (status === '429' || status === '503') expect(response.headers?.['Retry-After'], at).toBeDefined();
    }
  });

  it('names the resource in every 404 and declares 422 only where a body or a query is validated', () => {
    for (const { name, path, status, response } of errorResponses()) {
      if (status === '404') {
        const segments = path.split('/').filter((s) => s && !s.startsWith('{'));
        const params = path.match(/\{[^}]+\}/g) ?? [];
        for (const value of examplesOf(response)) {
          expect(value.error.message, name).toMatch(/^no [a-zA-Z ]+ /);
          if (params.length === 1) {
            // `/v1/agents/{id}` → agent; `/v1/calls/{id}/hangup` → call.
            const resource = segments[segments.indexOf(path.split('/{')[0].split('/').at(-1) as string)];
            expect(value.error.message, name).toContain(resource.replace(/ies$/, 'y').replace(/s$/, ''));
          }
        }
      }
      if (status === '422') {
        const op = spec.paths[path][name.split(' ')[0].toLowerCase()];
        const validated =
          Boolean(op.requestBody) || (op.parameters ?? []).some((p: Json) => p.in === 'query');
        expect(validated, `${name} declares 422`).toBe(true);
      }
    }
  });

  it('gives every list an example page that satisfies its schema', () => {
    const lists = specOperations().filter(
      ([name, op]) =>
        name.startsWith('GET') &&
        op.responses['200']?.content['application/json']?.schema.properties?.nextCursor,
    );
    expect(lists.length).toBeGreaterThanOrEqual(8);
    for (const [name, op] of lists) {
      const schema = op.responses['200'].content['application/json'].schema;
      expect(schema.examples?.length, name).toBeGreaterThan(0);
      expect(schema.examples[0].data.length, name).toBeGreaterThan(0);
    }
  });

  it('shows what the API really answers: the 401, malformed-id 404 and query 422 examples', async () => {
    const send = async (path: string, key?: string) => {
      const res = await control.fetch(
        new Request(`http://localhost${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} }),
      );
      return { status: res.status, body: await res.json() };
    };
    let checked = 0;
    for (const [name, op] of specOperations()) {
      if (!name.startsWith('GET ')) continue;
      const path = name.slice(4);
      if (op.responses['401']) {
        const missing = examplesOf(op.responses['401']);
        const res = await send(path.replace(/\{[^}]+\}/g, 'x'));
        expect(res.status, name).toBe(401);
        expect(missing, name).toContainEqual(res.body);
        checked++;
      }
      const malformed = examplesOf(op.responses['404'] ?? { content: { 'application/json': {} } }).filter(
        (v) => v.error.details?.format,
      );
      if (malformed.length > 0 && (path.match(/\{/g) ?? []).length === 1) {
        const res = await send(path.replace(/\{[^}]+\}/, MALFORMED_ID), adminKey);
        expect(res.status, name).toBe(404);
        expect(malformed, name).toContainEqual(res.body);
        checked++;
      }
      const query = examplesOf(op.responses['422'] ?? { content: { 'application/json': {} } }).find(
        (v) => v.error.details?.[0]?.in === 'query' && v.error.details[0].field === 'limit',
      );
      if (query && !path.includes('{')) {
        const res = await send(`${path}?limit=101`, adminKey);
        expect(res.status, name).toBe(422);
        expect(res.body, name).toEqual(query);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });

  it('documents the provider webhooks and the realtime socket, each a route core serves', async () => {
    const text = `${spec.info.description}\n${spec.tags.find((t: Json) => t.name === 'telephony')?.description}`;
    for (const hook of PROVIDER_WEBHOOKS) expect(text).toContain(`POST ${hook.path}`);
    for (const path of Object.values(PROVIDER_STREAM_PATHS)) expect(text).toContain(path);
    for (const path of REALTIME_SOCKET_PATHS) expect(text).toContain(path);
    expect(text).toContain('docs/realtime-protocol.md');
    // Each webhook is a core route: unsigned, it is refused (403), not missing (404).
    const telnyxKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
    const core = new Core({
      config: parseConfig({
        REALTIME_WS_SECRET: 'docs-test-realtime-secret-0123456789',
        TWILIO_AUTH_TOKEN: 'twilio-token',
        JAMBONZ_WEBHOOK_SECRET: 'jambonz-secret',
        TELNYX_PUBLIC_KEY: Buffer.from(telnyxKey).subarray(-32).toString('base64'),
      }),
      store: new MemoryStore(),
      log: createLogger({ level: 'silent', service: 'core' }),
    });
    for (const hook of PROVIDER_WEBHOOKS) {
      const res = await core.fetch(
        new Request(`http://localhost${hook.path}`, {
          method: hook.method,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'CallSid=CA1',
        }),
        undefined as never,
      );
      // No server: a webhook route answers without one; only media upgrades need it.
      expect(res?.status, hook.path).not.toBe(404);
      expect(res?.status, hook.path).toBeGreaterThanOrEqual(400);
    }
  });
});

describe('Swagger UI at /v1/swagger', () => {
  it('is a page that loads only our own assets, under a strict CSP', async () => {
    const res = await control.fetch(new Request('http://localhost/v1/swagger'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).not.toMatch(/https?:/);

    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]+<\/script>|<style|style=/);
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual(
      expect.arrayContaining(['/v1/swagger/assets/swagger-ui-bundle.js', '/v1/swagger/assets/init.js']),
    );
    for (const url of urls) {
      expect(url).toMatch(/^\/v1\/swagger\/assets\/[\w.-]+$/);
      const asset = await control.fetch(new Request(`http://localhost${url}`));
      expect(asset.status, url).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, url).toBeGreaterThan(100);
    }
  });

  it('points the UI at /v1/openapi.json and serves nothing outside its asset list', async () => {
    const init = await (
      await control.fetch(new Request('http://localhost/v1/swagger/assets/init.js'))
    ).text();
    expect(init).toContain('"/v1/openapi.json"');
    expect(init).toContain('validatorUrl: null');
    for (const path of ['package.json', '..%2Fpackage.json', 'index.html', 'swagger-ui-bundle.js.map']) {
      const res = await control.fetch(new Request(`http://localhost/v1/swagger/assets/${path}`));
      expect(res.status, path).toBe(404);
    }
  });
});
