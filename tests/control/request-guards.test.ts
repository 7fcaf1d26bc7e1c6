import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FAILED_AUTH_LIMIT_PER_MIN } from '../../control/app.ts';
import { generateApiKey } from '../../control/auth/index.ts';
import { clientAddress } from '../../control/http/client-address.ts';
import { jsonTooDeep, pathOfNul } from '../../control/http/json-body.ts';
import { metricsAuthorized } from '../../core/observability/metrics-auth.ts';
import { type GuardedServer, type ManualClock, manualClock, startGuardedServer } from './guarded-server.ts';
import { type Backing, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

describe('JSON body rules', () => {
  it('measures nesting outside strings only', () => {
    expect(jsonTooDeep(nested(32))).toBe(false);
    expect(jsonTooDeep(nested(33))).toBe(true);
    expect(jsonTooDeep(JSON.stringify({ a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' }))).toBe(false);
    expect(jsonTooDeep(JSON.stringify({ a: 'x\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' }))).toBe(false);
  });

  it('finds a NUL in values and in property names, by path', () => {
    expect(pathOfNul({ a: [{ b: 'ok' }, { c: 'x\u0000' }] })).toBe('a.1.c');
    expect(pathOfNul({ ['k\u0000']: 1 })).toBe('k\u0000');
    expect(pathOfNul({ a: ['fine', 1, null, true] })).toBeNull();
  });
});

describe('client address', () => {
  const req = (xff?: string) =>
    new Request('http://localhost/', { headers: xff ? { 'x-forwarded-for': xff } : {} });

  it('believes the last X-Forwarded-For hop only behind a private peer', () => {
    expect(clientAddress(req('1.1.1.1, 203.0.113.9'), '10.0.3.4')).toBe('203.0.113.9');
    expect(clientAddress(req('1.1.1.1'), '198.51.100.7')).toBe('198.51.100.7');
    expect(clientAddress(req(), '127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddress(req('203.0.113.9'), null)).toBeNull();
  });
});

describe('metrics key', () => {
  const key = 'metrics-key-0123456789';
  const req = (auth?: string) =>
    new Request('http://localhost/metrics', { headers: auth ? { authorization: auth } : {} });

  it('is open without a key and needs the exact bearer key with one', () => {
    expect(metricsAuthorized(req(), undefined)).toBe(true);
    expect(metricsAuthorized(req(), key)).toBe(false);
    expect(metricsAuthorized(req(`Bearer ${key}`), key)).toBe(true);
    expect(metricsAuthorized(req(`bearer ${key}`), key)).toBe(true);
    expect(metricsAuthorized(req(`Bearer ${key}x`), key)).toBe(false);
    expect(metricsAuthorized(req(`Basic ${key}`), key)).toBe(false);
    expect(metricsAuthorized(req('Bearer '), key)).toBe(false);
  });
});

describe.skipIf(!postgresUrl || !redisUrl)('request guards on PostgreSQL', () => {
  let backing: Backing;
  let server: GuardedServer;
  let clock: ManualClock;
  let nextAddress = 1;
  /** A fresh client address per test, so failed-auth counts of one test never reach another. */
  const freshAddress = () => `198.51.100.${nextAddress++}`;

  beforeAll(async () => {
    backing = await postgresAndRedis(postgresUrl!, redisUrl!);
    // Mid-window, so a test's requests never straddle a window edge.
    clock = manualClock(Math.floor(Date.now() / 60_000) * 60_000 + 15_000);
    server = await startGuardedServer(backing, clock);
  });
  afterAll(async () => {
    await server?.close();
    await backing?.close();
  });

  async function send(
    method: string,
    path: string,
    opts: {
      key?: string;
      body?: BodyInit;
      type?: string;
      address?: string;
      headers?: Record<string, string>;
    } = {},
  ) {
    const headers = new Headers(opts.headers);
    if (opts.key) headers.set('authorization', `Bearer ${opts.key}`);
    if (opts.type) headers.set('content-type', opts.type);
    headers.set('x-forwarded-for', opts.address ?? freshAddress());
    const res = await fetch(`${server.url}${path}`, { method, headers, body: opts.body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
  }

  it('answers 401 to a deeply nested body without a key, without validating it', async () => {
    const res = await send('POST', '/v1/agents', { body: nested(10_000), type: 'application/json' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });

  it('refuses nesting deeper than 32 with a key, even 100 000 levels', async () => {
    for (const levels of [33, 100_000]) {
      const res = await send('POST', '/v1/agents', {
        key: server.key,
        body: nested(levels),
        type: 'application/json',
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('body_too_deep');
    }
  });

  it('answers 415 to bodies that are not JSON, and takes JSON with a UTF-8 charset', async () => {
    const body = JSON.stringify({ name: 'typed' });
    for (const type of [
      'text/plain',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
    ]) {
      const res = await send('POST', '/v1/agents', { key: server.key, body, type });
      expect(res.status, type).toBe(415);
      expect(res.body.error.code).toBe('unsupported_media_type');
    }
    const noType = await fetch(`${server.url}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.key}`, 'x-forwarded-for': freshAddress() },
      body: new Blob([body]),
    });
    expect(noType.status).toBe(415);
    const ok = await send('POST', '/v1/agents', {
      key: server.key,
      body,
      type: 'application/json; charset=UTF-8',
    });
    expect(ok.status).toBe(201);
  });

  it('caps bodies at 1 MB by default, by Content-Length and while reading a chunked body', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(1024 * 1024) });
    const declared = await send('POST', '/v1/agents', {
      key: server.key,
      body: big,
      type: 'application/json',
    });
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatchObject({
      code: 'payload_too_large',
      details: { limitBytes: 1024 * 1024 },
    });
    const bytes = new TextEncoder().encode(big);
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) c.enqueue(bytes.subarray(i, i + 64 * 1024));
        c.close();
      },
    });
    const streamed = await send('POST', '/v1/agents', {
      key: server.key,
      body: chunked,
      type: 'application/json',
    });
    expect(streamed.status).toBe(413);
  });

  it('lets the contact upload routes take larger bodies', async () => {
    // 1.5 MB of well-formed contacts to a campaign that does not exist: past the size check, a 404.
    const contacts = Array.from({ length: 10_000 }, (_, i) => ({
      phoneNumber: `+1415${String(i).padStart(7, '0')}`,
      variables: { note: 'n'.repeat(120) },
    }));
    const body = JSON.stringify({ contacts });
    expect(body.length).toBeGreaterThan(1024 * 1024);
    const res = await send('POST', '/v1/campaigns/cmp_01j9x6k3m2q8w5r7t4v0y1z3ab/contacts', {
      key: server.key,
      body,
      type: 'application/json',
    });
    expect(res.status).toBe(404);
    const csv = await send('POST', '/v1/campaigns/cmp_01j9x6k3m2q8w5r7t4v0y1z3ab/contacts', {
      key: server.key,
      body: 'phone,name\n+14155550123,A\u0000da\n',
      type: 'text/csv',
    });
    expect(csv.status).toBe(422);
  });

  it('still takes a CSV upload and a bodiless hangup through the route parsers', async () => {
    const json = 'application/json';
    const agent = await send('POST', '/v1/agents', {
      key: server.key,
      body: JSON.stringify({ name: 'csv' }),
      type: json,
    });
    expect(agent.status).toBe(201);
    const campaign = await send('POST', '/v1/campaigns', {
      key: server.key,
      type: json,
      body: JSON.stringify({
        name: 'csv upload',
        agentId: agent.body.id,
        provider: 'jambonz',
        callerId: '+14155550100',
        timeZone: 'UTC',
        schedule: { daysOfWeek: ['mon'], startTime: '09:00', endTime: '17:00' },
        callsPerSecond: 1,
        maxConcurrentCalls: 1,
      }),
    });
    expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
    const csv = await send('POST', `/v1/campaigns/${campaign.body.id}/contacts`, {
      key: server.key,
      body: 'phone,name\n+14155550123,Ada\n+14155550124,Grace\n',
      type: 'text/csv; charset=utf-8',
    });
    expect(csv.status).toBe(200);
    expect(csv.body).toMatchObject({ added: 2 });
    const hangup = await send('POST', '/v1/calls/cal_01j9x6k3m2q8w5r7t4v0y1z3ab/hangup', { key: server.key });
    expect(hangup.status).toBe(404);
  });

  it('refuses NUL in body strings and query parameters with a 422 naming the field', async () => {
    const body = await send('POST', '/v1/agents', {
      key: server.key,
      body: JSON.stringify({ name: 'a\u0000b' }),
      type: 'application/json',
    });
    expect(body.status).toBe(422);
    expect(body.body.error.details).toEqual([{ field: 'name', message: expect.stringContaining('NUL') }]);
    for (const path of ['/v1/calls?agentId=%00', '/v1/calls?status=%00', '/v1/agents?cursor=a%00b']) {
      const res = await send('GET', path, { key: server.key });
      expect(res.status, path).toBe(422);
      expect(res.body.error.details[0].field).toBe(
        new URL(`http://x${path}`).searchParams.keys().next().value,
      );
    }
    const pattern = await send('GET', '/v1/calls?agentId=not-an-agent', { key: server.key });
    expect(pattern.status).toBe(422);
    expect(pattern.body.error.details[0].field).toBe('agentId');
  });

  it('marks every response no-store and nosniff, the new key’s secret included', async () => {
    const created = await send('POST', '/v1/keys', {
      key: server.key,
      body: JSON.stringify({ name: 'ci' }),
      type: 'application/json',
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^sk_live_/);
    const others = await Promise.all([
      send('GET', '/v1/agents', { key: server.key }),
      send('GET', '/v1/agents'),
      send('GET', '/v1/health'),
      send('GET', '/v1/no-such-route', { key: server.key }),
    ]);
    for (const res of [created, ...others]) {
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(others.map((r) => r.status)).toEqual([200, 401, 200, 404]);
  });

  it(`gives an address 429 after ${FAILED_AUTH_LIMIT_PER_MIN} failed authentications a minute`, async () => {
    const address = freshAddress();
    const bad = generateApiKey();
    for (let i = 0; i < FAILED_AUTH_LIMIT_PER_MIN; i++) {
      const res = await send('GET', '/v1/agents', { address, ...(i % 2 ? { key: bad } : {}) });
      expect(res.status).toBe(401);
    }
    const blocked = await send('GET', '/v1/agents', { address, key: bad });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('too_many_failed_authentications');
    expect(blocked.headers.get('retry-after')).toBe('45');
    // The address is blocked outright, a valid key included; other addresses are not.
    expect((await send('GET', '/v1/agents', { address, key: server.key })).status).toBe(429);
    expect((await send('GET', '/v1/agents', { key: bad })).status).toBe(401);
    expect((await send('GET', '/v1/agents', { key: server.key })).status).toBe(200);
    // Health stays open to everyone.
    expect((await send('GET', '/v1/health', { address })).status).toBe(200);
    clock.now += 45_000; // the next window
    expect((await send('GET', '/v1/agents', { address, key: server.key })).status).toBe(200);
    clock.now -= 45_000;
  });
});
