import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../../core/auth/tokens.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { registry } from '../../../core/observability/metrics.ts';
import { isMediaPath, MediaServer } from '../../../core/realtime/index.ts';
import { mediaMetrics } from '../../../core/realtime/metrics.ts';
import { WsTransport } from '../../../core/realtime/ws-transport.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { MemoryStore } from '../../../core/store/index.ts';
import { createCodec } from '../../../core/wire/index.ts';
import { streamRealtime, twilioClient } from '../../support/media-clients.ts';

const SECRET = 'media-server-secret-0123456789';
const API_KEY = 'sk_test_media';

/** Sends a raw HTTP/1.1 upgrade request and returns the status line the server answered. */
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
      if (data.includes('\r\n')) {
        resolve(data.split('\r\n')[0]!);
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

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}

describe('MediaServer', () => {
  const store = new MemoryStore();
  const log = createLogger({ level: 'silent', service: 'test' });
  let media: MediaServer;
  let http: RunningHttpServer;
  let port: number;
  let wsBase: string;

  beforeAll(() => {
    media = new MediaServer({
      store,
      log,
      tokenSecrets: [SECRET],
      realtimeApiKey: API_KEY,
      maxBufferedBytes: 1 << 20,
      maxMessageBytes: 64 * 1024,
      idleTimeoutMs: 30_000,
      maxDurationMs: 60_000,
      startTimeoutMs: 500,
    });
    http = startHttpServer({
      port: 0,
      hostname: '127.0.0.1',
      log,
      plane: {
        fetch: (req, server) => {
          const url = new URL(req.url);
          return isMediaPath(url.pathname)
            ? media.upgrade(req, server, url)
            : new Response('nope', { status: 404 });
        },
        websocket: media.websocket,
      },
    });
    port = http.server.port!;
    wsBase = `ws://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await media.drain(0);
    await http.stop(0);
    await store.close();
  });

  it('refuses a native client without a key or token with 401 before the upgrade', async () => {
    expect(await rawUpgrade(port, '/realtime/voice')).toContain('401');
    expect(
      await rawUpgrade(port, '/realtime/voice', ['Sec-WebSocket-Protocol: sipai.v1, sipai.key.wrong']),
    ).toContain('401');
    expect(await rawUpgrade(port, '/v1/realtime/voice?token=v1.bad.token')).toContain('401');
    const forged = mintToken('another-secret-0123456789', { kind: 'realtime', agentId: 'echo' }, 60);
    expect(await rawUpgrade(port, `/realtime/voice?token=${forged}`)).toContain('401');
    // A stream token is not a realtime token.
    const stream = mintToken(SECRET, { kind: 'stream', sub: 'CA1', agentId: 'echo' }, 60);
    expect(await rawUpgrade(port, `/realtime/voice?token=${stream}`)).toContain('401');
    expect(
      await rawUpgrade(port, '/realtime/voice', [`Sec-WebSocket-Protocol: sipai.v1, sipai.key.${API_KEY}`]),
    ).toContain('101');
  });

  it('refuses a Jambonz stream without the audio.jambonz.org subprotocol', async () => {
    expect(await rawUpgrade(port, '/telephony/jambonz/stream')).toContain('401');
    expect(
      await rawUpgrade(port, '/telephony/jambonz/stream', ['Sec-WebSocket-Protocol: audio.jambonz.org']),
    ).toContain('101');
  });

  it('answers 426 to a plain GET on a media path', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/telephony/twilio/stream`);
    expect(res.status).toBe(426);
    expect(await res.json()).toMatchObject({ error: { code: 'upgrade_required' } });
  });

  it('closes a provider stream with 1008 when its token is missing, forged, or for another call', async () => {
    const callId = `CA${randomUUID().replaceAll('-', '')}`;
    for (const token of [
      undefined,
      'v1.garbage.token',
      mintToken('another-secret-0123456789', { kind: 'stream', sub: callId, agentId: 'echo' }, 60),
      mintToken(SECRET, { kind: 'stream', sub: 'CA-some-other-call', agentId: 'echo' }, 60),
    ]) {
      const client = await twilioClient({ baseWsUrl: wsBase, callId, token });
      client.start();
      const closed = await client.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toContain('stream token rejected');
    }
    expect(media.sessions.has(callId)).toBe(false);
  });

  it('closes a socket that never sends start with 1008', async () => {
    const { closed } = await openWs(`${wsBase}/telephony/twilio/stream`);
    expect((await closed).code).toBe(1008);
  });

  it('closes a socket that sends an oversized message with 1009', async () => {
    const { ws, closed } = await openWs(`${wsBase}/realtime/voice`, ['sipai.v1', `sipai.key.${API_KEY}`]);
    ws.send(new Uint8Array(200 * 1024));
    expect((await closed).code).toBe(1009);
  });

  it('counts and drops 10 MB of garbage, closes that socket, and keeps another call going', async () => {
    const callId = `CA${randomUUID().replaceAll('-', '')}`;
    const good = await twilioClient({
      baseWsUrl: wsBase,
      callId,
      token: mintToken(SECRET, { kind: 'stream', sub: callId, agentId: 'echo' }, 60),
    });
    good.start();
    // Dropped unread (over the socket's message rate) or unparsed: counted either way.
    const dropped = async () =>
      (await metricValue('sipai_ws_frames_dropped_total', { protocol: 'twilio', reason: 'unparsed' })) +
      (await metricValue('sipai_ws_frames_dropped_total', { protocol: 'twilio', reason: 'rate_limited' }));
    const before = await dropped();

    const { ws: bad, closed: badClosed } = await openWs(`${wsBase}/telephony/twilio/stream`);
    const junk = new Uint8Array(32 * 1024);
    for (let sent = 0; sent < 10 * 1024 * 1024 && bad.readyState === WebSocket.OPEN; sent += junk.length) {
      crypto.getRandomValues(junk);
      bad.send(sent % 2 ? junk : `{"event":"media","garbage":${sent}`);
    }
    expect((await badClosed).code).toBe(1008);
    expect((await dropped()) - before).toBeGreaterThan(50);

    // The good call still streams, is heard, and gets its echo back.
    const tone = new Int16Array(8000 * 0.6);
    for (let i = 0; i < tone.length; i++)
      tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    await streamRealtime(good, tone);
    await streamRealtime(good, new Int16Array(8000));
    const deadline = Date.now() + 5000;
    while (!good.heard.marks.length && Date.now() < deadline) await Bun.sleep(20);
    expect(good.heard.audio.length).toBeGreaterThan(20);
    expect(good.heard.marks.map((m) => m.name)).toContain('echo-1');
    good.stop();
    await good.closed;
  }, 20_000);
});

describe('WsTransport', () => {
  it('closes a client that stopped reading with 1008 once its unread bytes pass the bound', () => {
    const closes: [number, string][] = [];
    let buffered = 0;
    const fakeSocket = {
      send(msg: string | Uint8Array) {
        buffered += typeof msg === 'string' ? msg.length : msg.byteLength;
        return -1;
      },
      getBufferedAmount: () => buffered,
      close(code: number, reason: string) {
        closes.push([code, reason]);
      },
    };
    const codec = createCodec('native');
    expect(codec.parse('{"t":"start","callId":"c1","agentId":"echo","sampleRate":16000}')).toMatchObject({
      kind: 'start',
    });
    const metrics = mediaMetrics.native;
    const transport = new WsTransport(fakeSocket as never, codec, metrics, 16 * 1024);
    const frame = {
      kind: 'audio_out' as const,
      encoding: 'pcm16' as const,
      sampleRate: 16000,
      data: new Uint8Array(640),
    };
    for (let i = 0; i < 100; i++) transport.send(frame);
    expect(closes).toEqual([[1008, 'client not reading']]);
    // Nothing more is written after the close: memory stays bounded.
    expect(buffered).toBeLessThanOrEqual(16 * 1024 + 640);
  });
});

describe('MediaServer.drain', () => {
  it('refuses new streams with 503 and ends live calls after the grace period', async () => {
    const store = new MemoryStore();
    const log = createLogger({ level: 'silent', service: 'test' });
    const media = new MediaServer({
      store,
      log,
      tokenSecrets: [SECRET],
      maxBufferedBytes: 1 << 20,
      maxMessageBytes: 65536,
      idleTimeoutMs: 30_000,
      maxDurationMs: 60_000,
    });
    const http = startHttpServer({
      port: 0,
      hostname: '127.0.0.1',
      log,
      plane: {
        fetch: (req, server) => media.upgrade(req, server, new URL(req.url)),
        websocket: media.websocket,
      },
    });
    const wsBase = `ws://127.0.0.1:${http.server.port}`;
    const callId = `CA${randomUUID().replaceAll('-', '')}`;
    const client = await twilioClient({
      baseWsUrl: wsBase,
      callId,
      token: mintToken(SECRET, { kind: 'stream', sub: callId, agentId: 'echo' }, 60),
    });
    client.start();
    while (!media.sessions.has(callId)) await Bun.sleep(10);

    const draining = media.drain(300);
    expect(await rawUpgrade(http.server.port!, '/telephony/twilio/stream')).toContain('503');
    const started = Date.now();
    await draining;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await client.closed).code).toBe(1000);
    const ended = (await store.range(`call:${callId}:timeline`)).at(-1);
    expect(ended?.fields.type).toBe('call.ended');
    expect(JSON.parse(ended!.fields.data!)).toMatchObject({ reason: 'server_shutdown' });
    await http.stop(0);
    await store.close();
  });
});
