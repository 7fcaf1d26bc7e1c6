/**
 * scripts/smoke-ws.ts against a local server that speaks the native protocol's handshake
 * (docs/realtime-protocol.md): key as subprotocol, `start` first, then agent audio or an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smokeCall, voiceUrl } from '../../scripts/smoke-ws.ts';

const KEY = 'smoke-key-0123456789';
let server: ReturnType<typeof Bun.serve>;
const starts: unknown[] = [];

beforeAll(() => {
  // The agent id picks the answer: agt_text → agent_text, agt_missing → error, agt_silent →
  // nothing, anything else → one frame of audio.
  server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, srv) {
      const url = new URL(req.url);
      const offered = (req.headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim());
      if (url.pathname !== '/realtime/voice' || !offered.includes(`sipai.key.${KEY}`)) {
        return new Response('unauthorized', { status: 401 });
      }
      return srv.upgrade(req, { data: undefined, headers: { 'sec-websocket-protocol': 'sipai.v1' } })
        ? undefined
        : new Response('upgrade failed', { status: 400 });
    },
    websocket: {
      message(ws, raw) {
        const msg = JSON.parse(String(raw)) as { t: string; agentId?: string };
        if (msg.t !== 'start') return;
        starts.push(msg);
        if (msg.agentId === 'agt_silent') return;
        if (msg.agentId === 'agt_text')
          ws.send(JSON.stringify({ t: 'agent_text', text: 'Hello', final: true }));
        else if (msg.agentId === 'agt_missing') {
          ws.send(JSON.stringify({ t: 'error', code: 'agent_unavailable', message: 'no such agent' }));
        } else ws.send(new Uint8Array(640));
      },
    },
  });
});

afterAll(() => server.stop(true));

const base = () => `http://127.0.0.1:${server.port}`;

describe('smoke-ws', () => {
  it('turns the base URL into the voice WebSocket URL', () => {
    expect(voiceUrl('https://api.staging.voice.example.org')).toBe(
      'wss://api.staging.voice.example.org/realtime/voice',
    );
    expect(voiceUrl('http://127.0.0.1:3000/')).toBe('ws://127.0.0.1:3000/realtime/voice');
  });

  it('passes when the agent answers with audio, after a well-formed start', async () => {
    const result = await smokeCall({ baseUrl: base(), apiKey: KEY, agentId: 'agt_smoke', timeoutMs: 3000 });
    expect(result).toEqual({ ok: true, detail: 'agent audio received (640 bytes)' });
    expect(starts.at(-1)).toMatchObject({
      t: 'start',
      agentId: 'agt_smoke',
      sampleRate: 16000,
      encoding: 'pcm16',
    });
  });

  it('passes when the agent answers with text', async () => {
    const result = await smokeCall({ baseUrl: base(), apiKey: KEY, agentId: 'agt_text', timeoutMs: 3000 });
    expect(result.ok).toBe(true);
  });

  it('fails on a protocol error, a refused key, or silence', async () => {
    expect(
      await smokeCall({ baseUrl: base(), apiKey: KEY, agentId: 'agt_missing', timeoutMs: 3000 }),
    ).toEqual({
      ok: false,
      detail: 'error agent_unavailable: no such agent',
    });
    expect(
      (await smokeCall({ baseUrl: base(), apiKey: 'wrong', agentId: 'agt_smoke', timeoutMs: 3000 })).ok,
    ).toBe(false);
    expect(await smokeCall({ baseUrl: base(), apiKey: KEY, agentId: 'agt_silent', timeoutMs: 300 })).toEqual({
      ok: false,
      detail: 'no answer from the agent within 300 ms',
    });
  });
});
