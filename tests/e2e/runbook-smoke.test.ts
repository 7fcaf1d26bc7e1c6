import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEntry, startEntry } from '../support/processes.ts';

/**
 * The runbook's WebSocket smoke test, verbatim:
 *   wscat -c "wss://HOST/realtime/voice?callId=smoke-1" -s "<REALTIME_API_KEY>"
 *   > {"t":"start","callId":"smoke-1","agentId":"smoke-agent"}
 * `-s` offers the key itself as the only subprotocol, and wscat (the `ws` client) fails a
 * handshake whose server does not select the protocol it offered.
 */
const KEY = 'rk_runbook_smoke_0123456789abcdef';
const SMOKE_START = '{"t":"start","callId":"smoke-1","agentId":"smoke-agent"}';

interface Smoke {
  ws: WebSocket;
  texts: Record<string, unknown>[];
  audioBytes: () => number;
  closed: Promise<{ code: number; reason: string }>;
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** What `wscat -c <url> -s <protocol>` does: one subprotocol offered, opened or failed. */
function wscat(url: string, protocol: string): Promise<Smoke> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [protocol]);
    ws.binaryType = 'arraybuffer';
    const texts: Record<string, unknown>[] = [];
    let audio = 0;
    const closed = new Promise<{ code: number; reason: string }>((done) => {
      ws.addEventListener('close', (e) => done({ code: e.code, reason: e.reason }));
    });
    ws.addEventListener('message', (e) => {
      if (e.data instanceof ArrayBuffer) audio += e.data.byteLength;
      else texts.push(JSON.parse(String(e.data)) as Record<string, unknown>);
    });
    ws.addEventListener('open', () => resolve({ ws, texts, audioBytes: () => audio, closed }));
    ws.addEventListener('error', () => reject(new Error(`handshake to ${url} failed`)));
  });
}

/** 20 ms of a 440 Hz tone, pcm16 at 16 kHz (640 bytes), as a client's microphone sends it. */
function toneFrame(): ArrayBuffer {
  const samples = new Int16Array(320);
  for (let i = 0; i < samples.length; i++)
    samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16000));
  return samples.buffer;
}

describe('runbook: wscat smoke test against npm start (raw key as the subprotocol)', () => {
  let app: RunningEntry;
  let wsBase: string;

  beforeAll(async () => {
    app = startEntry('local.ts', {
      PORT: '0',
      PGLITE_DATA_DIR: 'memory://',
      REALTIME_API_KEY: KEY,
      LOG_LEVEL: 'debug',
    });
    const [, base] = await app.waitFor(/sipai is up on (http:\/\/\S+)/, 60_000);
    wsBase = base!.replace(/^http/, 'ws');
  }, 90_000);

  afterAll(async () => {
    if (app?.proc.exitCode === null) await app.stop('SIGKILL');
  });

  it('answers the runbook start for an unknown agent with a clear error, then closes 1008', async () => {
    const smoke = await wscat(`${wsBase}/realtime/voice?callId=smoke-1`, KEY);
    // The key was selected back: a `ws`/wscat client would otherwise have failed the handshake.
    expect(smoke.ws.protocol).toBe(KEY);
    smoke.ws.send(SMOKE_START);
    const closed = await smoke.closed;
    expect(smoke.texts).toEqual([{ t: 'error', code: 'forbidden', message: 'unknown agent smoke-agent' }]);
    expect(closed.code).toBe(1008);
  });

  it('streams audio back from a built-in agent over the same handshake', async () => {
    const smoke = await wscat(`${wsBase}/realtime/voice?callId=smoke-1`, KEY);
    smoke.ws.send('{"t":"start","callId":"smoke-1","agentId":"loopback"}');
    await until(() => smoke.texts.some((m) => m.t === 'event' && m.name === 'call.started'), 'call.started');
    const frame = toneFrame();
    for (let i = 0; i < 25; i++) smoke.ws.send(frame);
    await until(() => smoke.audioBytes() >= frame.byteLength, 'audio from the loopback agent');
    expect(smoke.texts.filter((m) => m.t === 'error')).toEqual([]);
    smoke.ws.send('{"t":"stop"}');
    await smoke.closed;
  });

  it('still takes sipai.v1 + sipai.key.<key>, refuses a wrong raw key, and never logs the key', async () => {
    const prefixed = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${wsBase}/realtime/voice`, ['sipai.v1', `sipai.key.${KEY}`]);
      ws.addEventListener('open', () => resolve(ws));
      ws.addEventListener('error', () => reject(new Error('prefixed key refused')));
    });
    expect(prefixed.protocol).toBe('sipai.v1');
    prefixed.close();

    await expect(wscat(`${wsBase}/realtime/voice?callId=smoke-1`, `${KEY}x`)).rejects.toThrow(
      /handshake .* failed/,
    );
    expect(app.output()).not.toContain(KEY);
  });
});
