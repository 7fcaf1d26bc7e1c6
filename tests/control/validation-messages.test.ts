import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { type Backing, embedded, type Json, makeControl } from './support.ts';

/**
 * What a person reads when a request is refused: each rule in words with an example (never the
 * schema's regular expression), query parameters named as such, a malformed id in a path as a
 * 404 naming the id's format, and 405 with `Allow` for a method a path does not serve.
 */

let backing: Backing;
let control: Control;
let key: string;
let agentId: string;

beforeAll(async () => {
  backing = await embedded();
  control = makeControl(backing);
  const { bootstrap } = await control.start();
  key = bootstrap?.secret ?? '';
  const agent = await send('POST', '/v1/agents', { name: 'Messages' });
  agentId = agent.body.id;
});

afterAll(async () => {
  await control?.close();
  await backing?.close();
});

async function send(
  method: string,
  path: string,
  body?: unknown,
  opts: { key?: string | null } = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const headers: Record<string, string> = {};
  const auth = opts.key === undefined ? key : opts.key;
  if (auth) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await control.fetch(
    new Request(`http://localhost${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/** Nothing of a schema leaks: no regex, no TypeBox wording. */
function expectReadable(message: string) {
  expect(message).not.toMatch(/\^|\$'|\\d|\[0-9|\{\d|Expected|should be|Property '/);
}

describe('validation messages', () => {
  it('says what a phone number must look like, with an example', async () => {
    const res = await send('POST', '/v1/numbers', { phoneNumber: '4155550123', provider: 'twilio', agentId });
    expect(res.status).toBe(422);
    expect(res.body.error).toEqual({
      code: 'validation_failed',
      message: 'phoneNumber: must be an E.164 number like +14155550123',
      details: [{ field: 'phoneNumber', message: 'must be an E.164 number like +14155550123' }],
    });
    const call = await send('POST', '/v1/calls', {
      agentId,
      to: '+14155550123',
      from: '+14155550123',
      provider: 'twilio',
      transferTo: 'x',
    });
    expect(call.status).toBe(422);
    for (const d of call.body.error.details) expectReadable(d.message);
  });

  it('names ids, lengths, numbers, enums, unknown fields and missing ones in words', async () => {
    const cases: [unknown, string, string][] = [
      [{ name: 'x', brain: 'genius' }, 'brain', 'must be one of echo, scripted, llm'],
      [{ name: 'x', greeting: 'g'.repeat(2001) }, 'greeting', 'must be at most 2000 characters'],
      [{ name: '' }, 'name', 'must not be empty'],
      [{ name: 'x', maxDurationSec: '60' }, 'maxDurationSec', 'must be a whole number, not the string "60"'],
      [{ name: 'x', greeting: 5 }, 'greeting', 'must be a string, not the number 5'],
      [{ name: 'x', greting: 'hi' }, 'greting', 'is not a field here; did you mean greeting?'],
      [{ greeting: 'hi' }, 'name', 'is required'],
      [
        { name: 'x', transferTo: 'desk' },
        'transferTo',
        'must be an E.164 number like +14155550123 or a SIP URI like sip:desk@example.com',
      ],
      [[], '(body)', 'the request body must be a JSON object'],
    ];
    for (const [body, field, message] of cases) {
      const res = await send('POST', '/v1/agents', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.error.details[0], JSON.stringify(body)).toEqual({ field, message });
      expect(res.body.error.message).toBe(`${field}: ${message}`);
    }
    const number = await send('POST', '/v1/numbers', {
      phoneNumber: '+14155550123',
      provider: 'twilio',
      agentId: 'agent-7',
    });
    expect(number.body.error.details[0]).toEqual({
      field: 'agentId',
      message:
        'must be an agent id like agt_01j9x6k3m2q8w5r7t4v0y1z3ab (agt_ and 26 lower-case letters or digits)',
    });
    const patch = await send('PATCH', `/v1/agents/${agentId}`, {});
    expect(patch.body.error.details[0]).toEqual({ field: '(body)', message: 'must set at least one field' });
  });

  it('names a query parameter as a query parameter', async () => {
    const cases: [string, string, string][] = [
      ['/v1/agents?limit=1000', 'limit', 'must be at most 100'],
      ['/v1/agents?limit=0', 'limit', 'must be at least 1'],
      ['/v1/agents?limit=ten', 'limit', 'must be a whole number from 1 to 100'],
      ['/v1/agents?limt=5', 'limt', 'is not a query parameter of this route; did you mean limit?'],
      ['/v1/calls?since=yesterday', 'since', 'must be a date-time like 2026-01-05T09:30:00Z (ISO 8601)'],
      [
        '/v1/calls?agentId=agent-7',
        'agentId',
        'must be an agent id like agt_01j9x6k3m2q8w5r7t4v0y1z3ab (agt_ and 26 lower-case letters or digits)',
      ],
      ['/v1/calls?status=ringing-ish', 'status', 'must be one of'],
      [
        '/v1/agents?cursor=%25%25',
        'cursor',
        'is not a cursor this list returned: pass nextCursor as it came',
      ],
      ['/v1/agents?cursor=a%00b', 'cursor', 'must not contain control characters (NUL included)'],
    ];
    for (const [path, field, message] of cases) {
      const res = await send('GET', path);
      expect(res.status, path).toBe(422);
      const [detail] = res.body.error.details;
      expect(detail.field, path).toBe(field);
      expect(detail.in, path).toBe('query');
      expect(detail.message, path).toContain(message);
      expect(res.body.error.message, path).toBe(`query parameter ${field}: ${detail.message}`);
      expect(res.body.error.message, path).not.toContain('(body)');
      expectReadable(detail.message);
    }
  });

  it('answers a malformed id in a path with 404 naming the id format', async () => {
    const agent = await send('GET', '/v1/agents/agent-7');
    expect(agent.status).toBe(404);
    expect(agent.body.error).toEqual({
      code: 'not_found',
      message:
        'no agent "agent-7": agent ids are agt_ and 26 lower-case letters or digits, like agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
      details: {
        parameter: 'id',
        format: 'agent ids are agt_ and 26 lower-case letters or digits, like agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
      },
    });
    for (const [path, kind] of [
      ['/v1/numbers/12', 'number'],
      ['/v1/campaigns/cmp_short', 'campaign'],
      ['/v1/webhooks/whk_X/deliveries', 'webhook endpoint'],
      ['/v1/calls/a%20call', 'call'],
    ] as const) {
      const res = await send(path.endsWith('/deliveries') ? 'GET' : 'GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error.message, path).toMatch(new RegExp(`^no ${kind} "`));
      expect(res.body.error.details.format, path).toMatch(new RegExp(`^${kind} ids are `));
    }
    // Well-formed but absent: the same 404, as before.
    const absent = await send('GET', '/v1/agents/agt_01j9x6k3m2q8w5r7t4v0y1z3ab');
    expect(absent.body.error).toEqual({
      code: 'not_found',
      message: 'no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab',
    });
  });

  it('answers a method a path does not serve with 405 and Allow, before asking for a key', async () => {
    const list = await send('DELETE', '/v1/agents', undefined, { key: null });
    expect(list.status).toBe(405);
    expect(list.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(list.body.error).toEqual({
      code: 'method_not_allowed',
      message: 'DELETE is not served at /v1/agents; use GET, HEAD, POST',
      details: { allowed: ['GET', 'HEAD', 'POST'] },
    });
    const one = await send('PUT', `/v1/agents/${agentId}`);
    expect(one.status).toBe(405);
    expect(one.headers.get('allow')).toBe('DELETE, GET, HEAD, PATCH');
    const action = await send('GET', `/v1/campaigns/cmp_01j9x6k3m2q8w5r7t4v0y1z3ab/start`);
    expect(action.status).toBe(405);
    expect(action.headers.get('allow')).toBe('POST');
    // An unknown path stays a 404 behind the key check.
    expect((await send('DELETE', '/v1/nothing-here', undefined, { key: null })).status).toBe(401);
    expect((await send('DELETE', '/v1/nothing-here')).status).toBe(404);
  });
});
