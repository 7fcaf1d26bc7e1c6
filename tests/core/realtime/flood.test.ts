import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../../core/auth/tokens.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { MediaServer, type MediaServerOptions } from '../../../core/realtime/index.ts';
import { mediaMetrics } from '../../../core/realtime/metrics.ts';
import { MessageRateLimiter } from '../../../core/realtime/rate-limit.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { MemoryStore } from '../../../core/store/index.ts';
import { nativeClient, streamRealtime, twilioClient } from '../../support/media-clients.ts';

const SECRET = 'flood-test-secret-0123456789';
const API_KEY = 'sk_test_flood';
const KEY_PROTOCOLS = ['sipai.v1', `sipai.key.${API_KEY}`];

/** Sends a raw upgrade request; resolves with the response head (status line and headers). */
function rawUpgrade(port: number, path: string, extraHeaders: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          ...extraHeaders,
          '',
          '',
        ].join('\r\n'),
      );
    });
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const end = data.indexOf('\r\n\r\n');
      if (end >= 0) {
        resolve(data.slice(0, end));
        socket.destroy();
      }
    });
    socket.on('error', reject);
  });
}

function openWs(
  url: string,
  protocols?: string[],
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    const closed = new Promise<{ code: number; reason: string }>((r) => {
      ws.addEventListener('close', (e) => r({ code: e.code, reason: e.reason }));
    });
    ws.onopen = () => resolve({ ws, closed });
    ws.onerror = () => reject(new Error('ws error'));
  });
}

async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** A media server on a real port; `opts` override the defaults. */
function serve(opts: Partial<MediaServerOptions> = {}) {
  const store = new MemoryStore();
  const log = createLogger({ level: 'silent', service: 'test' });
  const media = new MediaServer({
    store,
    log,
    tokenSecrets: [SECRET],
    realtimeApiKey: API_KEY,
    maxBufferedBytes: 1 << 20,
    maxMessageBytes: 64 * 1024,
    idleTimeoutMs: 30_000,
    maxDurationMs: 60_000,
    ...opts,
  });
  const http: RunningHttpServer = startHttpServer({
    port: 0,
    hostname: '127.0.0.1',
    log,
    plane: {
      fetch: (req, server) => media.upgrade(req, server, new URL(req.url)),
      websocket: media.websocket,
    },
  });
  const port = http.server.port!;
  return {
    store,
    media,
    port,
    wsBase: `ws://127.0.0.1:${port}`,
    async stop() {
      await media.drain(0);
      await http.stop(0);
      await store.close();
    },
  };
}

describe('MessageRateLimiter', () => {
  it('lets a burst through, then the sustained rate, and drops the excess', () => {
    let now = 0;
    const limiter = new MessageRateLimiter({ perSec: 100, burst: 200, now: () => now });
    const verdicts = Array.from({ length: 250 }, () => limiter.take());
    expect(verdicts.filter((v) => v === 'accept')).toHaveLength(200);
    expect(verdicts.slice(200).every((v) => v === 'drop')).toBe(true);
    // 20 ms audio plus a mark now and then (60/s) for a minute: nothing more is dropped.
    let dropped = 0;
    for (let i = 0; i < 3600; i++) {
      now += 1000 / 60;
      if (limiter.take() !== 'accept') dropped++;
    }
    expect(dropped).toBe(0);
  });

  it('drops but keeps a socket a little over its rate, and closes one persistently over it', () => {
    let now = 0;
    const slightly = new MessageRateLimiter({ perSec: 100, burst: 200, now: () => now });
    const counts = { accept: 0, drop: 0, close: 0 };
    for (let i = 0; i < 150 * 20; i++) {
      now += 1000 / 150; // 150/s for 20 s: 50 over the rate each second
      counts[slightly.take()]++;
    }
    expect(counts.close).toBe(0);
    expect(counts.drop).toBeGreaterThan(500);

    now = 0;
    const flood = new MessageRateLimiter({ perSec: 100, burst: 200, now: () => now });
    let sent = 0;
    let verdict: string = 'accept';
    while (verdict !== 'close' && sent < 100_000) {
      now += 0.01; // 100 000 messages a second
      verdict = flood.take();
      sent++;
    }
    expect(verdict).toBe('close');
    // The burst, then more than a second's rate of drops: the flood ends within ~300 messages.
    expect(sent).toBe(200 + 101);
  });

  it('starts a socket with a small burst until it proves itself with a start', () => {
    let now = 0;
    const limiter = new MessageRateLimiter({ perSec: 100, burst: 200, initialBurst: 20, now: () => now });
    const before = Array.from({ length: 30 }, () => limiter.take());
    expect(before.filter((v) => v === 'accept')).toHaveLength(20);
    now += 1;
    limiter.fill();
    const after = Array.from({ length: 200 }, () => limiter.take());
    expect(after.every((v) => v === 'accept')).toBe(true);
  });
});

describe('a socket flooding core', () => {
  let server: ReturnType<typeof serve>;
  beforeAll(() => {
    // A start deadline long enough that only the rate limit can close the flood first.
    server = serve({ startTimeoutMs: 3000 });
  });
  afterAll(() => server.stop());

  it('is closed with 1008 after a bounded number of messages, and a concurrent call keeps streaming', async () => {
    const good = await nativeClient({
      baseWsUrl: server.wsBase,
      callId: 'good-call',
      sampleRate: 16000,
      protocols: KEY_PROTOCOLS,
    });
    good.start();
    await until(
      () => [...server.media.sessions.values()].some((s) => s.providerCallId === 'good-call'),
      'the good call to start',
    );

    const twilio = mediaMetrics.twilio;
    const before = {
      parsed: twilio.framesIn + twilio.droppedUnparsed,
      rateLimited: twilio.droppedRateLimited,
      closed: twilio.closedRateLimited,
    };
    // Messages Twilio really sends before `start`: valid, so the garbage rule never fires on them.
    const { ws: flood, closed } = await openWs(`${server.wsBase}/telephony/twilio/stream`);
    const openedAt = performance.now();
    let sent = 0;
    const flooding = (async () => {
      while (flood.readyState === WebSocket.OPEN) {
        for (let i = 0; i < 500 && flood.readyState === WebSocket.OPEN; i++, sent++) {
          flood.send('{"event":"connected","protocol":"Call","version":"1.0.0"}');
        }
        await Bun.sleep(0);
      }
    })();
    const tone = new Int16Array(16000 * 0.6);
    for (let i = 0; i < tone.length; i++)
      tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16000));
    const talking = (async () => {
      await streamRealtime(good, tone);
      await streamRealtime(good, new Int16Array(16000));
    })();

    const result = await closed;
    const openMs = performance.now() - openedAt;
    await flooding;
    expect(result).toEqual({ code: 1008, reason: 'message rate exceeded' });
    expect(twilio.closedRateLimited - before.closed).toBe(1);
    // Parsed at most the pre-start burst plus the sustained rate for the time it was open.
    const parsed = twilio.framesIn + twilio.droppedUnparsed - before.parsed;
    expect(parsed).toBeLessThanOrEqual(20 + Math.ceil((100 * openMs) / 1000) + 10);
    expect(twilio.droppedRateLimited - before.rateLimited).toBeGreaterThan(100);
    console.info(`flood: sent ${sent} messages, ${parsed} parsed, closed after ${Math.round(openMs)} ms`);

    // The good call is heard and answered.
    await talking;
    await until(() => good.heard.marks.some((m) => m.name === 'echo-1'), 'the echo of the good call');
    expect(good.heard.audio.length).toBeGreaterThan(20);
    good.stop();
    await good.closed;
  }, 20_000);
});

describe('the start deadline', () => {
  let server: ReturnType<typeof serve>;
  let release: () => void = () => {};
  const stuck = new Promise<boolean>((resolve) => {
    release = () => resolve(false);
  });
  beforeAll(() => {
    server = serve({ startTimeoutMs: 400, isAdmitted: () => stuck });
  });
  afterAll(async () => {
    release();
    await server.stop();
  });

  it('closes a socket that keeps sending valid messages but never starts', async () => {
    const { ws, closed } = await openWs(`${server.wsBase}/realtime/voice`, KEY_PROTOCOLS);
    const ticking = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send('{"t":"dtmf","digit":"2"}');
    }, 20);
    try {
      expect(await closed).toEqual({ code: 1008, reason: 'no start message' });
    } finally {
      clearInterval(ticking);
    }
  });

  it('closes a socket whose start never finishes setting up, with 1013', async () => {
    const callId = `CA${randomUUID().replaceAll('-', '')}`;
    const before = mediaMetrics.twilio.closedStartTimeout;
    const client = await twilioClient({
      baseWsUrl: server.wsBase,
      callId,
      token: mintToken(SECRET, { kind: 'stream', sub: callId, agentId: 'echo' }, 60),
    });
    client.start();
    expect(await client.closed).toEqual({ code: 1013, reason: 'session start timed out' });
    expect(mediaMetrics.twilio.closedStartTimeout - before).toBe(1);
    expect(server.media.sessions.has(callId)).toBe(false);
  });
});

describe('sockets not yet started, per client address', () => {
  let server: ReturnType<typeof serve>;
  beforeAll(() => {
    server = serve({ startTimeoutMs: 30_000, maxPendingPerAddress: 3 });
  });
  afterAll(() => server.stop());

  it('are capped: the next upgrade from that address gets 429 before any WebSocket exists', async () => {
    const held = await Promise.all(
      [0, 1, 2].map(() => openWs(`${server.wsBase}/realtime/voice`, KEY_PROTOCOLS)),
    );
    const refused = await rawUpgrade(server.port, '/realtime/voice', [
      `Sec-WebSocket-Protocol: sipai.v1, sipai.key.${API_KEY}`,
    ]);
    expect(refused).toMatch(/^HTTP\/1\.1 429/);
    expect(refused.toLowerCase()).toContain('retry-after:');
    expect(await rawUpgrade(server.port, '/telephony/twilio/stream')).toMatch(/^HTTP\/1\.1 429/);
    // Another client behind the same load balancer is not affected.
    expect(
      await rawUpgrade(server.port, '/telephony/twilio/stream', ['X-Forwarded-For: 203.0.113.7']),
    ).toMatch(/^HTTP\/1\.1 101/);

    // A socket that starts its call no longer counts; one that closes neither.
    held[0]!.ws.send(JSON.stringify({ t: 'start', callId: 'c-1', agentId: 'echo', sampleRate: 16000 }));
    await until(() => server.media.pendingFrom('127.0.0.1') === 2, 'the started socket to stop counting');
    held[1]!.ws.close();
    await until(() => server.media.pendingFrom('127.0.0.1') === 1, 'the closed socket to stop counting');
    expect(await rawUpgrade(server.port, '/telephony/twilio/stream')).toMatch(/^HTTP\/1\.1 101/);
    for (const { ws } of held) ws.close();
  });
});

describe('native subprotocol selection', () => {
  let server: ReturnType<typeof serve>;
  beforeAll(() => {
    server = serve();
  });
  afterAll(() => server.stop());

  const selected = (head: string) => /^sec-websocket-protocol:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? null;

  it('selects sipai.v1 and never answers with the key unless it is the only protocol offered', async () => {
    const both = await rawUpgrade(server.port, '/realtime/voice', [
      `Sec-WebSocket-Protocol: sipai.key.${API_KEY}, sipai.v1`,
    ]);
    expect(both).toMatch(/^HTTP\/1\.1 101/);
    expect(selected(both)).toBe('sipai.v1');

    const keyAndOther = await rawUpgrade(server.port, '/realtime/voice', [
      `Sec-WebSocket-Protocol: sipai.key.${API_KEY}, chat`,
    ]);
    expect(keyAndOther).not.toContain(API_KEY);
    expect(keyAndOther).toMatch(/^HTTP\/1\.1 400/);

    // A browser fails a handshake whose only offer goes unanswered: then the key is echoed.
    const keyOnly = await rawUpgrade(server.port, '/realtime/voice', [
      `Sec-WebSocket-Protocol: sipai.key.${API_KEY}`,
    ]);
    expect(keyOnly).toMatch(/^HTTP\/1\.1 101/);
    expect(selected(keyOnly)).toBe(`sipai.key.${API_KEY}`);

    const token = mintToken(SECRET, { kind: 'realtime', agentId: 'echo' }, 60);
    const tokenOnly = await rawUpgrade(server.port, `/realtime/voice?token=${token}`);
    expect(tokenOnly).toMatch(/^HTTP\/1\.1 101/);
    expect(selected(tokenOnly)).toBeNull();
  });
});
