import SwaggerParser from '@apidevtools/swagger-parser';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { ErrorSchema } from '../../control/errors.ts';
import { Account } from '../../control/modules/accounts/model.ts';
import * as agents from '../../control/modules/agents/model.ts';
import * as calls from '../../control/modules/calls/model.ts';
import * as campaigns from '../../control/modules/campaigns/model.ts';
import * as apiKeys from '../../control/modules/keys/model.ts';
import * as numbers from '../../control/modules/numbers/model.ts';
import * as realtime from '../../control/modules/realtime/model.ts';
import { type Backing, embedded, type Json, makeControl } from './support.ts';

let backing: Backing;
let control: Control;
let spec: Json;

beforeAll(async () => {
  backing = await embedded();
  control = makeControl(backing);
  await control.start();
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
      expect(success?.[1].content['application/json'].schema, name).toBeDefined();
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
