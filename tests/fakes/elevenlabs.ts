import type { ServerWebSocket } from 'bun';
import { encodeAlaw, encodeMulaw } from '../../core/audio/g711.ts';

/**
 * A local ElevenLabs multi-context text-to-speech server
 * (`/v1/text-to-speech/{voice_id}/multi-stream-input`, elevenlabs.io/docs/api-reference/
 * text-to-speech/v-1-text-to-speech-voice-id-multi-stream-input): `xi-api-key` checked at the
 * upgrade (401 otherwise), contexts opened by their first text, text buffered until `flush`,
 * then answered with base64 audio (a tone in the requested `output_format`) and the character
 * alignment of the text received; `close_context` drops unflushed text and ends the context
 * with `isFinal`; `close_socket` ends them all and closes. Everything received is recorded.
 */

export interface RecordedUpgrade {
  path: string;
  voiceId: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

export interface RecordedMessage {
  /** Which connection (0-based, in order of upgrade). */
  conn: number;
  msg: Record<string, unknown>;
}

/** What the server does; tests change it between steps. */
export interface ElevenLabsScript {
  /** The key the upgrade accepts. */
  apiKey: string;
  /** Audio messages per flush (the text is cut across them by characters, mid-word too). */
  chunksPerFlush: number;
  /** Audio per character of text. */
  msPerChar: number;
  /** Before each audio message. */
  delayMs: number;
  /** Never answers: no audio, no `isFinal` (to time out the client). */
  silent: boolean;
  /** Audio messages are held until this resolves (tests order events without sleeping). */
  gate: Promise<void> | null;
  /** Drops the socket abruptly after this many audio messages on it. */
  dropAfterAudio: number | null;
  /** Answers the next flush with this error message instead of audio, then closes with 1008. */
  errorOnFlush: Record<string, unknown> | null;
  /**
   * Closes the socket (1008, as the vendor does) when an open context receives nothing for this
   * long: the vendor's `inactivity_timeout`, scaled down for tests.
   */
  contextInactivityMs: number | null;
}

export interface FakeElevenLabs {
  /** `ws://127.0.0.1:<port>`: the client appends `/v1/text-to-speech/...`. */
  url: string;
  script: ElevenLabsScript;
  upgrades: RecordedUpgrade[];
  /** Client messages, in order. */
  received: RecordedMessage[];
  /** Server messages as sent, in order (parsed). */
  sent: RecordedMessage[];
  /** Audio bytes sent per context id, concatenated (decoded from base64). */
  audio: Map<string, number[]>;
  /** Upgrade attempts refused for the key. */
  refused: number;
  /** Sockets currently open. */
  open(): number;
  /** Drops every open socket abruptly. */
  dropAll(): void;
  stop(): void;
}

interface FakeContext {
  id: string;
  buffer: string;
  chain: Promise<void>;
  closed: boolean;
  phase: number;
  idle: ReturnType<typeof setTimeout> | null;
}

interface Conn {
  index: number;
  format: string;
  rate: number;
  contexts: Map<string, FakeContext>;
  audioSent: number;
}

const FORMAT_RATE = /^(pcm|ulaw|alaw)_(\d+)$/;

const defaults = (): ElevenLabsScript => ({
  apiKey: 'test-key',
  chunksPerFlush: 2,
  msPerChar: 40,
  delayMs: 0,
  silent: false,
  gate: null,
  dropAfterAudio: null,
  errorOnFlush: null,
  contextInactivityMs: null,
});

/** A tone (440 Hz) of `samples` samples from `phase`, in the wire's format. */
function tone(format: string, rate: number, samples: number, phase: number): Uint8Array {
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++)
    pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (phase + i)) / rate));
  if (format.startsWith('ulaw')) {
    const out = new Uint8Array(samples);
    encodeMulaw(pcm, out);
    return out;
  }
  if (format.startsWith('alaw')) {
    const out = new Uint8Array(samples);
    encodeAlaw(pcm, out);
    return out;
  }
  return new Uint8Array(pcm.buffer);
}

/** Starts the fake on a free port; `script` overrides the defaults. */
export function startFakeElevenLabs(script: Partial<ElevenLabsScript> = {}): FakeElevenLabs {
  const state: FakeElevenLabs = {
    url: '',
    script: { ...defaults(), ...script },
    upgrades: [],
    received: [],
    sent: [],
    audio: new Map(),
    refused: 0,
    open: () => sockets.size,
    dropAll: () => {
      for (const ws of sockets) ws.terminate();
    },
    stop: () => {
      for (const ws of sockets) ws.terminate();
      server.stop(true);
    },
  };
  const sockets = new Set<ServerWebSocket<Conn>>();
  let connections = 0;

  const send = (ws: ServerWebSocket<Conn>, msg: Record<string, unknown>) => {
    if (ws.readyState !== 1) return;
    state.sent.push({ conn: ws.data.index, msg });
    ws.send(JSON.stringify(msg));
  };

  const touch = (ws: ServerWebSocket<Conn>, ctx: FakeContext) => {
    if (ctx.idle) clearTimeout(ctx.idle);
    ctx.idle = null;
    const ms = state.script.contextInactivityMs;
    if (ms === null || ctx.closed) return;
    ctx.idle = setTimeout(() => {
      ws.close(
        1008,
        'Have not received a new text input within the timeout of 20 seconds. Streaming input terminated.',
      );
    }, ms);
  };

  /** Speaks the context's buffered text: audio messages with alignment. */
  const speak = async (ws: ServerWebSocket<Conn>, ctx: FakeContext) => {
    const text = ctx.buffer.replace(/\s+/g, ' ').trimStart();
    ctx.buffer = '';
    if (!/\S/.test(text)) return;
    const script = state.script;
    if (script.errorOnFlush) {
      send(ws, { ...script.errorOnFlush, contextId: ctx.id });
      ws.close(1008, String(script.errorOnFlush.message ?? 'error'));
      return;
    }
    if (script.silent) return;
    const chars = Array.from(text);
    const per = Math.ceil(chars.length / Math.max(1, script.chunksPerFlush));
    for (let at = 0; at < chars.length; at += per) {
      if (script.gate) await script.gate;
      if (script.delayMs > 0) await Bun.sleep(script.delayMs);
      if (ws.readyState !== 1) return;
      const part = chars.slice(at, at + per);
      const starts = part.map((_, i) => i * script.msPerChar);
      const durations = part.map(() => script.msPerChar);
      const samples = Math.round((part.length * script.msPerChar * ws.data.rate) / 1000);
      const bytes = tone(ws.data.format, ws.data.rate, samples, ctx.phase);
      ctx.phase += samples;
      const kept = state.audio.get(ctx.id) ?? [];
      for (const b of bytes) kept.push(b);
      state.audio.set(ctx.id, kept);
      const alignment = { charStartTimesMs: starts, charDurationsMs: durations, chars: part };
      send(ws, {
        audio: Buffer.from(bytes).toString('base64'),
        normalizedAlignment: alignment,
        alignment,
        contextId: ctx.id,
      });
      ws.data.audioSent++;
      if (script.dropAfterAudio !== null && ws.data.audioSent >= script.dropAfterAudio) {
        ws.terminate();
        return;
      }
    }
  };

  const finish = (ws: ServerWebSocket<Conn>, ctx: FakeContext) => {
    if (ctx.idle) clearTimeout(ctx.idle);
    ctx.idle = null;
    if (state.script.silent) return;
    send(ws, { isFinal: true, contextId: ctx.id });
    ws.data.contexts.delete(ctx.id);
  };

  const onMessage = (ws: ServerWebSocket<Conn>, raw: string | Buffer) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(String(raw));
    } catch {
      send(ws, {
        message:
          'Could not parse input message, make sure it is a json and follows the schema outlined in protocol.',
        error: 'invalid_input_message',
        code: 1008,
      });
      return;
    }
    state.received.push({ conn: ws.data.index, msg });
    if (msg.close_socket === true) {
      const all = [...ws.data.contexts.values()];
      void Promise.all(
        all.map((ctx) => {
          ctx.closed = true;
          ctx.chain = ctx.chain.then(() => finish(ws, ctx));
          return ctx.chain;
        }),
      ).then(() => ws.close(1000));
      return;
    }
    const id = typeof msg.context_id === 'string' ? msg.context_id : 'default';
    let ctx = ws.data.contexts.get(id);
    if (!ctx) {
      if (msg.close_context === true) return;
      ctx = { id, buffer: '', chain: Promise.resolve(), closed: false, phase: 0, idle: null };
      ws.data.contexts.set(id, ctx);
    }
    const c = ctx;
    touch(ws, c);
    if (msg.close_context === true) {
      c.closed = true;
      c.buffer = ''; // unflushed text is dropped; flushed audio still goes out
      c.chain = c.chain.then(() => finish(ws, c));
      return;
    }
    if (typeof msg.text === 'string') c.buffer += msg.text;
    if (msg.flush === true) c.chain = c.chain.then(() => speak(ws, c));
  };

  const server = Bun.serve<Conn>({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, srv) {
      const url = new URL(req.url);
      const m = /^\/v1\/text-to-speech\/([^/]+)\/multi-stream-input$/.exec(url.pathname);
      if (!m)
        return Response.json({ detail: { status: 'not_found', message: 'Not found' } }, { status: 404 });
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      state.upgrades.push({
        path: url.pathname,
        voiceId: decodeURIComponent(m[1]!),
        query: Object.fromEntries(url.searchParams),
        headers,
      });
      if (req.headers.get('xi-api-key') !== state.script.apiKey) {
        state.refused++;
        return Response.json(
          { detail: { status: 'invalid_api_key', message: 'Invalid API key' } },
          { status: 401 },
        );
      }
      const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
      const rate = FORMAT_RATE.exec(format);
      if (!rate) {
        return Response.json(
          { detail: { status: 'invalid_output_format', message: `unsupported by this fake: ${format}` } },
          { status: 400 },
        );
      }
      const data: Conn = {
        index: connections++,
        format,
        rate: Number(rate[2]),
        contexts: new Map(),
        audioSent: 0,
      };
      if (srv.upgrade(req, { data })) return undefined;
      return new Response('upgrade required', { status: 426 });
    },
    websocket: {
      open(ws) {
        sockets.add(ws);
      },
      message: onMessage,
      close(ws) {
        sockets.delete(ws);
        for (const ctx of ws.data.contexts.values()) if (ctx.idle) clearTimeout(ctx.idle);
      },
    },
  });
  state.url = `ws://127.0.0.1:${server.port}`;
  return state;
}
