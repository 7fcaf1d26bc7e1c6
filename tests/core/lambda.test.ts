import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  configFromEnv,
  corePathOf,
  createForwarder,
  FORWARDER_SECRET_HEADER,
  type HttpApiEvent,
  ORIGINAL_URL_HEADER,
} from '../../core/lambda.ts';
import { verifyTwilioRequest } from '../../core/telephony/signatures/index.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const fixturePath = join(root, 'tests/fixtures/lambda/twilio-voice.json');
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as HttpApiEvent;
/** The auth token the fixture's X-Twilio-Signature was computed with. */
const FIXTURE_AUTH_TOKEN = 'fixture-token-1f2e3d4c5b6a79880';
/** What the Lambda and the core share (TELEPHONY_FORWARDER_SECRET). */
const FORWARDER_SECRET = 'lambda-forwarder-secret-0123456789';
const PUBLIC_URL = 'https://voice.sipai.example.com/telephony/twilio/voice?agentId=agt_7Qm2xK&lang=en-US';
const TWIML =
  '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://voice.sipai.example.com/telephony/twilio/stream"><Parameter name="token" value="t.abc"/></Stream></Connect></Response>';

/**
 * The real Node.js binary. Under `bun --bun` the `node` first on PATH is Bun itself, so each
 * candidate is asked whether it is Bun; NODE_BINARY overrides the search.
 */
async function findRealNode(): Promise<string | undefined> {
  const candidates = [
    ...(process.env.NODE_BINARY ? [process.env.NODE_BINARY] : []),
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'node')),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      const { stdout } = await run(candidate, ['-p', "process.versions.bun ? 'bun' : process.version"]);
      if (/^v\d+\./.test(stdout.trim())) return candidate;
    } catch {
      // not there, or not runnable: try the next one
    }
  }
  return undefined;
}

interface SeenRequest {
  method: string;
  pathAndQuery: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * A stand-in core: records what arrives and checks the Twilio signature the way the core will,
 * against the forwarded URL only when the forwarder's secret came with it.
 */
function startCore(mode: { hang?: boolean; answer?: (seen: SeenRequest) => Response } = {}) {
  const seen: SeenRequest[] = [];
  const hung: (() => void)[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const url = new URL(req.url);
      const entry: SeenRequest = {
        method: req.method,
        pathAndQuery: url.pathname + url.search,
        url: req.url,
        headers: Object.fromEntries(req.headers),
        body: new Uint8Array(await req.arrayBuffer()),
      };
      seen.push(entry);
      if (mode.hang) return new Promise<Response>((resolve) => hung.push(() => resolve(new Response(null))));
      if (mode.answer) return mode.answer(entry);
      const params = new URLSearchParams(new TextDecoder().decode(entry.body));
      if (entry.headers[FORWARDER_SECRET_HEADER] !== FORWARDER_SECRET)
        return Response.json({ error: { code: 'bad_signature' } }, { status: 403 });
      const verdict = verifyTwilioRequest({
        url: entry.headers[ORIGINAL_URL_HEADER] ?? '',
        signature: entry.headers['x-twilio-signature'],
        authToken: FIXTURE_AUTH_TOKEN,
        params,
      });
      if (!verdict.ok) return Response.json({ error: { code: 'bad_signature' } }, { status: 403 });
      return new Response(TWIML, {
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-core-node': 'n1' },
      });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    seen,
    stop() {
      for (const release of hung.splice(0)) release();
      server.stop(true);
    },
  };
}

describe('voice-webhook Lambda', () => {
  let core: ReturnType<typeof startCore> | undefined;
  afterEach(() => {
    core?.stop();
    core = undefined;
    vi.restoreAllMocks();
  });

  it('forwards the recorded Twilio webhook and returns the core TwiML unchanged', async () => {
    core = startCore();
    const result = await createForwarder({
      coreUrl: `${core.url}/`,
      timeoutMs: 2_000,
      forwarderSecret: FORWARDER_SECRET,
    })(fixture);
    expect(result).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'text/xml; charset=utf-8', 'x-core-node': 'n1' },
      body: TWIML,
      isBase64Encoded: false,
    });
    expect(core.seen).toHaveLength(1);
    const [seen] = core.seen;
    expect(seen!.method).toBe('POST');
    expect(seen!.pathAndQuery).toBe('/telephony/twilio/voice?agentId=agt_7Qm2xK&lang=en-US');
    expect(Buffer.from(seen!.body).toString('base64')).toBe(fixture.body);
    expect(seen!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(seen!.headers['x-twilio-signature']).toBe(fixture.headers!['x-twilio-signature']);
    expect(seen!.headers['i-twilio-idempotency-token']).toBe(fixture.headers!['i-twilio-idempotency-token']);
    expect(seen!.headers[ORIGINAL_URL_HEADER]).toBe(PUBLIC_URL);
    expect(seen!.headers[FORWARDER_SECRET_HEADER]).toBe(FORWARDER_SECRET);
    expect(seen!.headers['x-forwarded-proto']).toBe('https');
    expect(seen!.headers['x-forwarded-host']).toBe('voice.sipai.example.com');
    expect(seen!.headers['x-forwarded-for']).toBe('54.172.60.3');
    expect(seen!.headers['x-request-id']).toBe('HkQ3tjS9oAMEVqg=');
  });

  it('delivers a signature that verifies at the core only against the original public URL', async () => {
    core = startCore({ answer: () => new Response('ok') });
    await createForwarder({ coreUrl: core.url, timeoutMs: 2_000, forwarderSecret: FORWARDER_SECRET })(
      fixture,
    );
    const [seen] = core.seen;
    const params = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(seen!.body)));
    const signature = seen!.headers['x-twilio-signature']!;
    // twilio-node is the trusted oracle (docs/providers.md, Twilio).
    expect(
      twilio.validateRequest(FIXTURE_AUTH_TOKEN, signature, seen!.headers[ORIGINAL_URL_HEADER]!, params),
    ).toBe(true);
    expect(twilio.validateRequest(FIXTURE_AUTH_TOKEN, signature, seen!.url, params)).toBe(false);
  });

  it("sends the runbooks' gateway URLs to core's /telephony routes, keeping the URL the provider signed", async () => {
    core = startCore({ answer: () => new Response('ok') });
    const forward = createForwarder({
      coreUrl: core.url,
      timeoutMs: 2_000,
      forwarderSecret: FORWARDER_SECRET,
    });
    const cases = [
      ['/webhooks/twilio/voice', '/telephony/twilio/voice'],
      ['/webhooks/twilio/status', '/telephony/twilio/status'],
      ['/webhooks/telnyx/voice', '/telephony/telnyx/voice'],
      ['/webhooks/telnyx/status', '/telephony/telnyx/status'],
      // Anything else goes through as called: no prefix rewriting, no `/webhooks/*` catch-all.
      ['/webhooks/jambonz/call', '/webhooks/jambonz/call'],
      ['/telephony/jambonz/call', '/telephony/jambonz/call'],
    ] as const;
    for (const [called, corePath] of cases) {
      await forward({ ...fixture, rawPath: called, rawQueryString: 'callId=c1' });
      const seen = core.seen.at(-1)!;
      expect(seen.pathAndQuery, called).toBe(`${corePath}?callId=c1`);
      expect(seen.headers[ORIGINAL_URL_HEADER], called).toBe(
        `https://voice.sipai.example.com${called}?callId=c1`,
      );
    }
    expect(corePathOf('/webhooks/twilio/voice/')).toBe('/webhooks/twilio/voice/');
    expect(corePathOf('/webhooks/__proto__')).toBe('/webhooks/__proto__');
  });

  it('passes a JSON body that was not base64-encoded through byte for byte, with its signature', async () => {
    core = startCore({ answer: () => Response.json([{ verb: 'hangup' }]) });
    const body = '{"call_sid":"abc","direction":"inbound","from":"+12125550199","to":"+14155550142"}';
    const event: HttpApiEvent = {
      ...fixture,
      rawPath: '/telephony/jambonz/call',
      rawQueryString: '',
      headers: {
        host: 'voice.sipai.example.com',
        'content-type': 'application/json',
        'jambonz-signature':
          't=1700000000,v1=1c27ae0a3096f02ca7e151ebb2e5fb2d85e093527549eb6144fab11bbabc3174',
      },
      body,
      isBase64Encoded: false,
    };
    const result = await createForwarder({
      coreUrl: core.url,
      timeoutMs: 2_000,
      forwarderSecret: FORWARDER_SECRET,
    })(event);
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual([{ verb: 'hangup' }]);
    const [seen] = core.seen;
    expect(new TextDecoder().decode(seen!.body)).toBe(body);
    expect(seen!.headers['jambonz-signature']).toBe(event.headers!['jambonz-signature']);
    expect(seen!.headers[ORIGINAL_URL_HEADER]).toBe('https://voice.sipai.example.com/telephony/jambonz/call');
  });

  it('returns the core answer unchanged when it is an error, and binary bodies as base64', async () => {
    core = startCore({
      answer: (s) =>
        s.pathAndQuery.startsWith('/telephony/twilio')
          ? Response.json({ error: { code: 'forbidden', message: 'bad signature' } }, { status: 403 })
          : new Response(new Uint8Array([0xff, 0x00, 0x7f]), { headers: { 'content-type': 'audio/basic' } }),
    });
    const forward = createForwarder({
      coreUrl: core.url,
      timeoutMs: 2_000,
      forwarderSecret: FORWARDER_SECRET,
    });
    const refused = await forward(fixture);
    expect(refused.statusCode).toBe(403);
    expect(JSON.parse(refused.body)).toEqual({ error: { code: 'forbidden', message: 'bad signature' } });
    const audio = await forward({
      ...fixture,
      rawPath: '/telephony/audio',
      body: undefined,
      isBase64Encoded: false,
    });
    expect(audio).toMatchObject({
      statusCode: 200,
      isBase64Encoded: true,
      body: Buffer.from([0xff, 0x00, 0x7f]).toString('base64'),
    });
  });

  it('answers 503 with Retry-After when the core hangs, within the timeout, and logs one JSON line', async () => {
    core = startCore({ hang: true });
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const started = performance.now();
    const result = await createForwarder({
      coreUrl: core.url,
      timeoutMs: 200,
      forwarderSecret: FORWARDER_SECRET,
    })(fixture);
    const elapsed = performance.now() - started;
    vi.restoreAllMocks();
    expect(elapsed).toBeGreaterThanOrEqual(190);
    // The core never answers: any answer at all is the timeout's. A bound, not a speed.
    expect(elapsed).toBeLessThan(10_000);
    expect(result.statusCode).toBe(503);
    expect(result.headers).toEqual({ 'content-type': 'application/json', 'retry-after': '1' });
    expect(JSON.parse(result.body)).toEqual({
      error: { code: 'core_unavailable', message: 'the voice core did not answer within 200 ms' },
    });
    const logged = lines.filter((l) => l.includes('core unavailable'));
    expect(logged).toHaveLength(1);
    expect(logged[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(logged[0]!)).toMatchObject({
      level: 'error',
      msg: 'core unavailable',
      reason: 'timeout',
      timeoutMs: 200,
      path: '/telephony/twilio/voice',
      requestId: 'HkQ3tjS9oAMEVqg=',
    });
  });

  it('answers 503 with Retry-After when the core refuses the connection', async () => {
    core = startCore();
    const url = core.url;
    core.stop();
    core = undefined;
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const result = await createForwarder({
      coreUrl: url,
      timeoutMs: 2_000,
      forwarderSecret: FORWARDER_SECRET,
    })(fixture);
    expect(result.statusCode).toBe(503);
    expect(result.headers['retry-after']).toBe('1');
    expect(JSON.parse(result.body).error.code).toBe('core_unavailable');
  });

  it('does not pass on a forwarder secret or original URL a caller sent, only its own', async () => {
    core = startCore();
    const forged = {
      ...fixture,
      headers: {
        ...fixture.headers,
        [FORWARDER_SECRET_HEADER]: 'guessed-secret-0123456789abcdef',
        [ORIGINAL_URL_HEADER]: 'https://elsewhere.example/telephony/twilio/voice',
      },
    };
    await createForwarder({ coreUrl: core.url, timeoutMs: 2_000, forwarderSecret: FORWARDER_SECRET })(forged);
    expect(core.seen[0]!.headers[FORWARDER_SECRET_HEADER]).toBe(FORWARDER_SECRET);
    expect(core.seen[0]!.headers[ORIGINAL_URL_HEADER]).toBe(PUBLIC_URL);
  });

  it('names the variable when configuration is wrong, never showing the secret', () => {
    const secret = { TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET };
    expect(() => configFromEnv({ ...secret })).toThrow(/CORE_INTERNAL_URL/);
    expect(() => configFromEnv({ ...secret, CORE_INTERNAL_URL: 'ftp://core' })).toThrow(/CORE_INTERNAL_URL/);
    expect(() =>
      configFromEnv({ ...secret, CORE_INTERNAL_URL: 'http://core:8081', FORWARD_TIMEOUT_MS: '30000' }),
    ).toThrow(/FORWARD_TIMEOUT_MS/);
    expect(() =>
      configFromEnv({ ...secret, CORE_INTERNAL_URL: 'http://core:8081', FORWARD_TIMEOUT_MS: '5s' }),
    ).toThrow(/FORWARD_TIMEOUT_MS/);
    expect(() => configFromEnv({ CORE_INTERNAL_URL: 'http://core:8081' })).toThrow(
      /TELEPHONY_FORWARDER_SECRET/,
    );
    const short = 'too-short-secret';
    expect(() =>
      configFromEnv({ CORE_INTERNAL_URL: 'http://core:8081', TELEPHONY_FORWARDER_SECRET: short.slice(1) }),
    ).toThrow(/TELEPHONY_FORWARDER_SECRET/);
    try {
      configFromEnv({
        CORE_INTERNAL_URL: 'http://core:8081',
        TELEPHONY_FORWARDER_SECRET: 'with space 0123456789',
      });
      expect.unreachable('a secret with a space is refused');
    } catch (err) {
      expect((err as Error).message).toMatch(/TELEPHONY_FORWARDER_SECRET/);
      expect((err as Error).message).not.toContain('with space');
    }
    expect(configFromEnv({ ...secret, CORE_INTERNAL_URL: 'http://core:8081/' })).toEqual({
      coreUrl: 'http://core:8081',
      timeoutMs: 5_000,
      forwarderSecret: FORWARDER_SECRET,
    });
  });

  describe('on the Node.js runtime', () => {
    let dir: string;
    let bundle: string;
    let runner: string;
    let node: string;

    beforeAll(async () => {
      const found = await findRealNode();
      if (!found)
        throw new Error(
          'no Node.js binary found on PATH (set NODE_BINARY): the Lambda must be proven on Node',
        );
      node = found;
      dir = mkdtempSync(join(tmpdir(), 'sipai-lambda-'));
      bundle = join(dir, 'lambda.mjs');
      await run(
        join(root, 'node_modules/.bin/bun'),
        ['build', join(root, 'core/lambda.ts'), '--target=node', '--format=esm', '--outfile', bundle],
        { cwd: root },
      );
      runner = join(dir, 'invoke.mjs');
      writeFileSync(
        runner,
        [
          "import { readFileSync } from 'node:fs';",
          "import { handler } from './lambda.mjs';",
          "const event = JSON.parse(readFileSync(process.argv[2], 'utf8'));",
          'const result = await handler(event);',
          "process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n');",
        ].join('\n'),
      );
    }, 60_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const invokeWithNode = async (env: Record<string, string>) => {
      const { stdout } = await run(node, [runner, fixturePath], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: 15_000,
      });
      const lines = stdout.trim().split('\n');
      const result = lines.find((l) => l.startsWith('RESULT '));
      expect(result).toBeDefined();
      return { result: JSON.parse(result!.slice('RESULT '.length)), logs: lines.filter((l) => l !== result) };
    };

    it('imports nothing but node: built-ins', () => {
      const source = readFileSync(join(root, 'core/lambda.ts'), 'utf8');
      const specifiers = [
        ...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/gm),
        ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
        ...source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
        ...source.matchAll(/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]!);
      expect(specifiers.length).toBeGreaterThan(0);
      expect(specifiers.filter((s) => !s.startsWith('node:'))).toEqual([]);
      expect(source).not.toMatch(/\bBun\.|['"]bun(?::[a-z]+)?['"]/);
      // Every import of the bundle is a node: built-in too (nothing was inlined from elsewhere).
      const built = readFileSync(bundle, 'utf8');
      const builtImports = [...built.matchAll(/from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      expect(builtImports.filter((s) => !s.startsWith('node:'))).toEqual([]);
    });

    it('forwards the fixture and returns the TwiML when run by node', async () => {
      core = startCore();
      const { stdout: version } = await run(node, ['-p', 'process.versions.bun ?? process.version']);
      // Lambda's Node runtimes are 20 and newer.
      expect(Number(/^v(\d+)\./.exec(version.trim())?.[1])).toBeGreaterThanOrEqual(20);
      const { result } = await invokeWithNode({
        CORE_INTERNAL_URL: core.url,
        FORWARD_TIMEOUT_MS: '3000',
        TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      });
      expect(result).toEqual({
        statusCode: 200,
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-core-node': 'n1' },
        body: TWIML,
        isBase64Encoded: false,
      });
      expect(core.seen[0]!.headers[ORIGINAL_URL_HEADER]).toBe(PUBLIC_URL);
      expect(Buffer.from(core.seen[0]!.body).toString('base64')).toBe(fixture.body);
    });

    it('answers 503 and logs one JSON line when run by node against a hanging core', async () => {
      core = startCore({ hang: true });
      const { result, logs } = await invokeWithNode({
        CORE_INTERNAL_URL: core.url,
        FORWARD_TIMEOUT_MS: '300',
        TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      });
      expect(result.statusCode).toBe(503);
      expect(result.headers['retry-after']).toBe('1');
      expect(JSON.parse(result.body).error.code).toBe('core_unavailable');
      expect(logs).toHaveLength(1);
      expect(JSON.parse(logs[0]!)).toMatchObject({
        level: 'error',
        msg: 'core unavailable',
        reason: 'timeout',
      });
    });
  });
});
