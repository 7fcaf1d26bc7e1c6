import { randomUUID } from 'node:crypto';
import { decodeAlaw, decodeMulaw } from '../../../audio/g711.ts';
import type { ProviderChoice } from '../../config.ts';
import type { Availability, ProviderEnv, ProviderRegistry } from '../../registry.ts';
import { type AudioChunk, ProviderError, type TextToSpeech, type WordTiming } from '../types.ts';

/**
 * ElevenLabs streaming speech over the multi-context WebSocket
 * (`/v1/text-to-speech/{voice_id}/multi-stream-input`): one socket per call, one context per
 * utterance, text sent as it comes and audio yielded as it arrives, with the vendor's character
 * alignment turned into word timings so the played text is known to the word on barge-in.
 */

const PROVIDER = 'elevenlabs';

/** The vendor's default host; `/v1/text-to-speech/...` is appended. */
export const ELEVENLABS_BASE_URL = 'wss://api.elevenlabs.io';
/** Low-latency model meant for conversational agents. */
export const DEFAULT_ELEVENLABS_MODEL = 'eleven_flash_v2_5';
/** A premade voice every account has (used when the agent names none). */
export const DEFAULT_ELEVENLABS_VOICE = '21m00Tcm4TlvDq8ikWAM';

/** Output formats this adapter decodes to PCM16: raw PCM at a rate, or G.711 at 8 kHz. */
export const ELEVENLABS_FORMATS = {
  pcm_8000: 8000,
  pcm_16000: 16000,
  pcm_22050: 22050,
  pcm_24000: 24000,
  pcm_44100: 44100,
  pcm_48000: 48000,
  ulaw_8000: 8000,
  alaw_8000: 8000,
} as const;
export type ElevenLabsFormat = keyof typeof ELEVENLABS_FORMATS;

/** `voice_settings` of a context (the vendor's names; omitted fields keep the voice's own). */
export interface ElevenLabsVoiceSettings {
  stability?: number;
  similarity_boost?: number;
  style?: number;
  use_speaker_boost?: boolean;
  speed?: number;
}

export interface ElevenLabsOptions {
  apiKey: string;
  /** Voice id (the agent's `voice`); default a premade voice. */
  voiceId?: string;
  /** `wss://api.elevenlabs.io` (an `https://` base is turned into `wss://`). */
  baseUrl?: string;
  /** Default `eleven_flash_v2_5`. */
  model?: string;
  /** Default `pcm_16000`; `ulaw_8000` suits 8 kHz calls (decoded to PCM16 here). */
  outputFormat?: ElevenLabsFormat;
  voiceSettings?: ElevenLabsVoiceSettings;
  /** ISO 639-1 code sent as `language_code` (multilingual models). */
  language?: string;
  /** Opening the socket, before a retryable `timeout`. */
  connectTimeoutMs?: number;
  /**
   * Longest wait for audio once text was flushed (and between audio messages once the text
   * ended) before a retryable `timeout`.
   */
  timeoutMs?: number;
  /** A context waiting for more text gets `{"text":""}` after this long without a message. */
  keepAliveMs?: number;
  /** The server's idle limit for the socket and its contexts, seconds (vendor max 180). */
  inactivityTimeoutSec?: number;
}

/** Keys of `ProviderChoice.options` that become `voice_settings` (snake or camel case). */
const VOICE_SETTING_KEYS: Record<string, keyof ElevenLabsVoiceSettings> = {
  stability: 'stability',
  similarity_boost: 'similarity_boost',
  similarityBoost: 'similarity_boost',
  style: 'style',
  use_speaker_boost: 'use_speaker_boost',
  useSpeakerBoost: 'use_speaker_boost',
  speed: 'speed',
};

/** A message from the server: audio with alignment, the end of a context, or an error. */
interface ServerMessage {
  audio?: string | null;
  isFinal?: boolean | null;
  contextId?: string;
  context_id?: string;
  normalizedAlignment?: RawAlignment | null;
  alignment?: RawAlignment | null;
  error?: string;
  message?: string;
  code?: number;
}

interface RawAlignment {
  chars?: string[];
  charStartTimesMs?: number[];
  charDurationsMs?: number[];
  /** The single-context API's spelling of the same fields. */
  charsStartTimesMs?: number[];
  charsDurationsMs?: number[];
}

/** Character timing of one audio message, ms from that message's audio start. */
export interface CharAlignment {
  chars: string[];
  startsMs: number[];
  durationsMs: number[];
}

/** Reads the alignment of an audio message (normalized text preferred), or null. */
export function readAlignment(msg: {
  normalizedAlignment?: RawAlignment | null;
  alignment?: RawAlignment | null;
}): CharAlignment | null {
  for (const raw of [msg.normalizedAlignment, msg.alignment]) {
    if (!raw || !Array.isArray(raw.chars)) continue;
    const startsMs = raw.charStartTimesMs ?? raw.charsStartTimesMs;
    const durationsMs = raw.charDurationsMs ?? raw.charsDurationsMs;
    if (!Array.isArray(startsMs) || !Array.isArray(durationsMs)) continue;
    if (startsMs.length !== raw.chars.length || durationsMs.length !== raw.chars.length) continue;
    return { chars: raw.chars, startsMs, durationsMs };
  }
  return null;
}

/** A word cut by the end of an audio message, finished by the next one. */
export interface WordCarry {
  fragment: string;
}

const WORD_END = /[.!?,;:…"')\]]$/;
/** Longest unbroken run carried over to the next message as one word. */
const MAX_CARRY_CHARS = 32;

/**
 * Words of one audio message from its character alignment, timed from the message's start.
 * A word still open at the end of the message (no space or closing punctuation after it) is
 * carried into the next message and counted there, so a word is only ever "heard" once its last
 * sound has played; a carried word that the next message does not continue ends at its start.
 */
export function wordsOf(a: CharAlignment, carry: WordCarry): { text?: string; words: WordTiming[] } {
  const words: WordTiming[] = [];
  let current: WordTiming | null = null;
  if (carry.fragment) {
    if (a.chars.length > 0 && !/^\s+$/.test(a.chars[0]!)) {
      current = { word: carry.fragment, startMs: 0, endMs: 0 };
    } else {
      words.push({ word: carry.fragment, startMs: 0, endMs: 0 });
    }
    carry.fragment = '';
  }
  for (let i = 0; i < a.chars.length; i++) {
    const ch = a.chars[i]!;
    if (/^\s*$/.test(ch)) {
      if (current) words.push(current);
      current = null;
      continue;
    }
    const start = Math.max(0, a.startsMs[i]!);
    current ??= { word: '', startMs: start, endMs: start };
    current.word += ch;
    current.endMs = Math.max(current.endMs, start + Math.max(0, a.durationsMs[i]!));
  }
  if (current) {
    // A run too long to be one word (a script written without spaces) is not held back.
    if (WORD_END.test(current.word) || current.word.length >= MAX_CARRY_CHARS) words.push(current);
    else carry.fragment = current.word;
  }
  const text = words.map((w) => w.word).join(' ');
  return { text: text || undefined, words };
}

/** Decodes one base64 audio message to PCM16; `odd` carries a split sample between messages. */
function decodeAudio(b64: string, format: ElevenLabsFormat, odd: { byte: number | null }): Int16Array {
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  if (format === 'ulaw_8000' || format === 'alaw_8000') {
    const pcm = new Int16Array(bytes.length);
    (format === 'ulaw_8000' ? decodeMulaw : decodeAlaw)(bytes, pcm);
    return pcm;
  }
  let data = bytes;
  if (odd.byte !== null) {
    data = new Uint8Array(bytes.length + 1);
    data[0] = odd.byte;
    data.set(bytes, 1);
    odd.byte = null;
  }
  const count = data.length >> 1;
  if (data.length & 1) odd.byte = data[data.length - 1]!;
  const pcm = new Int16Array(count);
  const view = new DataView(data.buffer, data.byteOffset, count * 2);
  for (let i = 0; i < count; i++) pcm[i] = view.getInt16(2 * i, true);
  return pcm;
}

/** One utterance on the socket: what the server sent for it, waiting to be yielded. */
interface Context {
  id: string;
  events: ServerMessage[];
  failure: ProviderError | null;
  /** The server ended the context (`isFinal` after our `close_context`, or the socket closed). */
  ended: boolean;
  /** `close_context` was sent: the next `isFinal` ends it. */
  inputDone: boolean;
  /** Text was flushed and no audio came since: the wait for audio is timed. */
  awaitingAudio: boolean;
  wake: (() => void) | null;
  keepAlive: ReturnType<typeof setTimeout> | null;
}

/** Maps an error message of the server to a provider error. */
function serverError(msg: ServerMessage): ProviderError {
  const kind = String(msg.error ?? '');
  const text = typeof msg.message === 'string' ? msg.message.slice(0, 200) : kind;
  if (/api[_ ]?key|unauthori[sz]ed|authenticat|permission/i.test(`${kind} ${text}`)) {
    return new ProviderError(
      'ElevenLabs refused the API key (ELEVENLABS_API_KEY)',
      PROVIDER,
      false,
      'http_401',
    );
  }
  if (/quota|payment|credits/i.test(kind)) {
    return new ProviderError(`ElevenLabs: ${text}`, PROVIDER, false, 'quota_exceeded');
  }
  if (/invalid|not_found|unsupported/i.test(kind)) {
    return new ProviderError(`ElevenLabs: ${text}`, PROVIDER, false, 'bad_request');
  }
  return new ProviderError(`ElevenLabs: ${text || 'error'}`, PROVIDER, true, kind || 'provider_error');
}

/** The error for an upgrade refused with an HTTP status (Bun reports it in the error text). */
function upgradeError(status: number): ProviderError {
  if (status === 401 || status === 403) {
    return new ProviderError(
      `ElevenLabs refused the API key (ELEVENLABS_API_KEY): HTTP ${status}`,
      PROVIDER,
      false,
      `http_${status}`,
    );
  }
  const retryable = status === 408 || status === 429 || status >= 500;
  return new ProviderError(
    `ElevenLabs refused the connection: HTTP ${status}`,
    PROVIDER,
    retryable,
    `http_${status}`,
  );
}

/** Bun's WebSocket client, which takes request headers (the DOM typing does not say so). */
type BunWebSocket = new (url: string, options: { headers: Record<string, string> }) => WebSocket;

/** One open multi-context socket and the contexts running on it. */
class Connection {
  readonly contexts = new Map<string, Context>();
  closed = false;

  constructor(
    readonly ws: WebSocket,
    private readonly onClosed: (c: Connection) => void,
  ) {
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => this.lost(ev.code, ev.reason);
  }

  send(msg: Record<string, unknown>): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private receive(data: unknown): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer).toString('utf8'));
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const id = msg.contextId ?? msg.context_id;
    const ctx = id !== undefined ? this.contexts.get(id) : undefined;
    if (msg.error !== undefined && typeof msg.audio !== 'string') {
      const failure = serverError(msg);
      // An error without a (known) context concerns the whole socket.
      for (const c of ctx ? [ctx] : this.contexts.values()) fail(c, failure);
      return;
    }
    if (!ctx) return; // a context we already left (barge-in): its late audio is dropped
    ctx.events.push(msg);
    wakeUp(ctx);
  }

  private lost(code: number, reason: string): void {
    this.closed = true;
    this.onClosed(this);
    const failure = /api[_ ]?key|authenticat|unauthori[sz]ed/i.test(reason)
      ? new ProviderError('ElevenLabs refused the API key (ELEVENLABS_API_KEY)', PROVIDER, false, 'http_401')
      : new ProviderError(`ElevenLabs closed the connection (${code})`, PROVIDER, true, 'connection_lost');
    for (const ctx of this.contexts.values()) if (!ctx.ended) fail(ctx, failure);
  }
}

function wakeUp(ctx: Context): void {
  const w = ctx.wake;
  ctx.wake = null;
  w?.();
}

function fail(ctx: Context, failure: ProviderError): void {
  ctx.failure ??= failure;
  wakeUp(ctx);
}

/** Where a piece of text may be cut for the server: after the last sentence end, else the last space. */
function cutPoints(text: string): { sentence: number; word: number } {
  let sentence = -1;
  for (let i = 0; i < text.length - 1; i++) {
    if (/[.!?]/.test(text[i]!) && /\s/.test(text[i + 1]!)) sentence = i + 2;
  }
  const space = Math.max(text.lastIndexOf(' '), text.lastIndexOf('\n'), text.lastIndexOf('\t'));
  return { sentence, word: space >= 0 ? space + 1 : -1 };
}

/**
 * ElevenLabs text-to-speech over the multi-context WebSocket. One instance serves one call: the
 * socket opens on the first `synthesize` (or `warm`) and stays up for the call; each
 * `synthesize` is one context, aborted with `close_context` on barge-in while the socket stays.
 */
export class ElevenLabsTts implements TextToSpeech {
  readonly name = PROVIDER;
  readonly sampleRate: number;
  readonly voiceId: string;
  readonly model: string;
  readonly outputFormat: ElevenLabsFormat;
  private readonly url: string;
  private readonly apiKey: string;
  private readonly voiceSettings: ElevenLabsVoiceSettings | undefined;
  private readonly connectTimeoutMs: number;
  private readonly timeoutMs: number;
  private readonly keepAliveMs: number;
  private connection: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private shut = false;

  constructor(opts: ElevenLabsOptions) {
    if (!opts.apiKey)
      throw new ProviderError('ELEVENLABS_API_KEY is not set', PROVIDER, false, 'missing_key');
    const format = opts.outputFormat ?? 'pcm_16000';
    if (!(format in ELEVENLABS_FORMATS)) {
      throw new ProviderError(
        `ElevenLabs outputFormat ${format} is not supported (use ${Object.keys(ELEVENLABS_FORMATS).join(', ')})`,
        PROVIDER,
        false,
        'bad_config',
      );
    }
    this.apiKey = opts.apiKey;
    this.outputFormat = format;
    this.sampleRate = ELEVENLABS_FORMATS[format];
    this.voiceId = opts.voiceId || DEFAULT_ELEVENLABS_VOICE;
    this.model = opts.model || DEFAULT_ELEVENLABS_MODEL;
    this.voiceSettings =
      opts.voiceSettings && Object.keys(opts.voiceSettings).length > 0 ? opts.voiceSettings : undefined;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.keepAliveMs = opts.keepAliveMs ?? 10_000;
    const base = (opts.baseUrl || ELEVENLABS_BASE_URL).replace(/^http/, 'ws').replace(/\/+$/, '');
    const query = new URLSearchParams({
      model_id: this.model,
      output_format: format,
      inactivity_timeout: String(opts.inactivityTimeoutSec ?? 180),
      sync_alignment: 'true',
    });
    if (opts.language) query.set('language_code', opts.language);
    this.url = `${base}/v1/text-to-speech/${encodeURIComponent(this.voiceId)}/multi-stream-input?${query}`;
  }

  /** Opens the socket ahead of the first reply. */
  async warm(): Promise<void> {
    await this.connect();
  }

  /** Ends the call's socket: `close_socket`, then the socket itself if the server lingers. */
  close(): void {
    this.shut = true;
    const conn = this.connection;
    this.connection = null;
    this.connecting = null;
    if (!conn) return;
    for (const ctx of conn.contexts.values()) {
      ctx.ended = true;
      wakeUp(ctx);
    }
    conn.send({ close_socket: true });
    const force = setTimeout(() => conn.ws.close(1000), 2_000);
    force.unref?.();
    conn.ws.addEventListener('close', () => clearTimeout(force));
  }

  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    return this.run(text, signal);
  }

  private async *run(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncGenerator<AudioChunk> {
    if (signal.aborted) return;
    if (typeof text === 'string' && !/\S/.test(text)) return;
    const conn = await this.connectUnlessAborted(signal);
    if (!conn) return;

    const ctx: Context = {
      id: randomUUID(),
      events: [],
      failure: null,
      ended: false,
      inputDone: false,
      awaitingAudio: false,
      wake: null,
      keepAlive: null,
    };
    conn.contexts.set(ctx.id, ctx);
    const onAbort = () => wakeUp(ctx);
    signal.addEventListener('abort', onAbort, { once: true });

    const send = (msg: Record<string, unknown>) => {
      if (!conn.send({ ...msg, context_id: ctx.id })) return;
      this.armKeepAlive(conn, ctx);
    };
    send(this.voiceSettings ? { text: ' ', voice_settings: this.voiceSettings } : { text: ' ' });

    const source = typeof text === 'string' ? null : text[Symbol.asyncIterator]();
    let spoke = false;
    const produce = async () => {
      let pending = '';
      let unflushed = false;
      const emit = (piece: string, flush: boolean) => {
        if (!piece && !flush) return;
        if (/\S/.test(piece)) spoke = true;
        if (flush) ctx.awaitingAudio = ctx.awaitingAudio || unflushed || /\S/.test(piece);
        send(flush ? { text: piece, flush: true } : { text: piece });
        unflushed = !flush;
      };
      const push = (piece: string) => {
        pending += piece;
        const { sentence, word } = cutPoints(pending);
        if (sentence > 0) {
          emit(pending.slice(0, sentence), true);
          pending = pending.slice(sentence);
          const rest = cutPoints(pending).word;
          if (rest > 0) {
            emit(pending.slice(0, rest), false);
            pending = pending.slice(rest);
          }
        } else if (word > 0) {
          emit(pending.slice(0, word), false);
          pending = pending.slice(word);
        }
      };
      try {
        if (source === null) push(text as string);
        else {
          for (;;) {
            const next = await source.next();
            if (next.done || signal.aborted || ctx.failure || ctx.ended) break;
            push(next.value);
          }
        }
        if (signal.aborted || ctx.failure || ctx.ended) return;
        const tail = pending.trim();
        if (tail) emit(`${tail} `, true);
        else if (unflushed && spoke) {
          send({ flush: true });
          ctx.awaitingAudio = true;
        }
        ctx.inputDone = true;
        send({ close_context: true });
        if (!spoke) ctx.ended = true; // nothing to say: no need to wait for the server
        wakeUp(ctx);
      } catch (err) {
        fail(
          ctx,
          err instanceof ProviderError
            ? err
            : new ProviderError(`text stream failed: ${err}`, PROVIDER, false),
        );
      }
    };
    void produce();

    const odd = { byte: null as number | null };
    const carry: WordCarry = { fragment: '' };
    try {
      for (;;) {
        if (signal.aborted) return;
        const msg = ctx.events.shift();
        if (msg) {
          if (typeof msg.audio === 'string' && msg.audio.length > 0) {
            ctx.awaitingAudio = false;
            const pcm = decodeAudio(msg.audio, this.outputFormat, odd);
            const alignment = readAlignment(msg);
            const { text: said, words } = alignment
              ? wordsOf(alignment, carry)
              : { text: undefined, words: [] };
            if (pcm.length > 0) {
              yield {
                pcm,
                sampleRate: this.sampleRate,
                ...(said ? { text: said } : {}),
                ...(words.length ? { words } : {}),
              };
            }
          }
          // The context ends with the `isFinal` that follows our `close_context` (sent once the
          // text ended and was flushed); one arriving earlier does not end the utterance.
          if (msg.isFinal === true && ctx.inputDone) {
            ctx.ended = true;
            return;
          }
          continue;
        }
        if (ctx.failure) throw ctx.failure;
        if (ctx.ended) return;
        const timed = ctx.awaitingAudio || ctx.inputDone;
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = timed ? setTimeout(() => resolve(true), this.timeoutMs) : null;
          ctx.wake = () => {
            if (timer) clearTimeout(timer);
            resolve(false);
          };
        });
        if (timedOut && ctx.events.length === 0 && !ctx.failure && !ctx.ended && !signal.aborted) {
          throw new ProviderError(
            `ElevenLabs sent no audio for ${this.timeoutMs} ms`,
            PROVIDER,
            true,
            'timeout',
          );
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (ctx.keepAlive) clearTimeout(ctx.keepAlive);
      ctx.keepAlive = null;
      if (!ctx.ended && !conn.closed) conn.send({ context_id: ctx.id, close_context: true });
      ctx.ended = true;
      ctx.wake = null;
      conn.contexts.delete(ctx.id);
      // Ends the caller's text stream when we stopped before it did (not awaited: it may be
      // stalled in a read we cannot interrupt).
      if (source?.return) void Promise.resolve(source.return(undefined)).catch(() => {});
    }
  }

  /** Re-arms the context's keep-alive: `{"text":""}` after `keepAliveMs` without a message. */
  private armKeepAlive(conn: Connection, ctx: Context): void {
    if (ctx.keepAlive) clearTimeout(ctx.keepAlive);
    ctx.keepAlive = null;
    if (ctx.inputDone || ctx.ended) return;
    ctx.keepAlive = setTimeout(() => {
      ctx.keepAlive = null;
      if (ctx.ended || ctx.inputDone || !conn.send({ text: '', context_id: ctx.id })) return;
      this.armKeepAlive(conn, ctx);
    }, this.keepAliveMs);
    ctx.keepAlive.unref?.();
  }

  private async connectUnlessAborted(signal: AbortSignal): Promise<Connection | null> {
    const opening = this.connect();
    let onAbort = () => {};
    const aborted = new Promise<null>((resolve) => {
      onAbort = () => resolve(null);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([opening, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A connect we stopped waiting for still settles; its failure is reported to the next caller.
      opening.catch(() => {});
    }
  }

  /** The open socket, opening it when there is none (the previous one dropped or idled out). */
  private connect(): Promise<Connection> {
    if (this.shut)
      return Promise.reject(new ProviderError('ElevenLabs voice is closed', PROVIDER, false, 'closed'));
    if (this.connection && !this.connection.closed) return Promise.resolve(this.connection);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private open(): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      let ws: WebSocket;
      try {
        // Bun's client takes headers: the key travels in `xi-api-key`, never in the URL.
        ws = new (WebSocket as unknown as BunWebSocket)(this.url, { headers: { 'xi-api-key': this.apiKey } });
      } catch {
        reject(new ProviderError('ElevenLabs: bad base URL', PROVIDER, false, 'bad_config'));
        return;
      }
      let settled = false;
      const timer = setTimeout(() => {
        settle(
          new ProviderError(
            `ElevenLabs did not answer within ${this.connectTimeoutMs} ms`,
            PROVIDER,
            true,
            'timeout',
          ),
        );
        ws.close();
      }, this.connectTimeoutMs);
      const settle = (err: ProviderError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.onopen = null;
        ws.onerror = null;
        if (err) {
          reject(err);
          return;
        }
        if (this.shut) {
          ws.close(1000);
          reject(new ProviderError('ElevenLabs voice is closed', PROVIDER, false, 'closed'));
          return;
        }
        const conn = new Connection(ws, (c) => {
          if (this.connection === c) this.connection = null;
        });
        this.connection = conn;
        resolve(conn);
      };
      ws.onopen = () => settle(null);
      ws.onerror = (ev) => {
        const status = /status code:?\s*(\d{3})/i.exec(String((ev as ErrorEvent).message ?? ''))?.[1];
        settle(
          status
            ? upgradeError(Number(status))
            : new ProviderError('ElevenLabs: could not connect', PROVIDER, true, 'connect_failed'),
        );
      };
      ws.onclose = (ev) => {
        settle(
          new ProviderError(
            `ElevenLabs closed the connection (${ev.code})`,
            PROVIDER,
            true,
            'connect_failed',
          ),
        );
      };
    });
  }
}

/** Builds the adapter's options from the agent's `tts` choice, its voice and the deployment env. */
export function elevenLabsOptions(
  choice: ProviderChoice | undefined,
  voice: string | undefined,
  env: ProviderEnv,
): ElevenLabsOptions {
  const o = choice?.options ?? {};
  const voiceSettings: ElevenLabsVoiceSettings = {};
  for (const [key, field] of Object.entries(VOICE_SETTING_KEYS)) {
    const v = o[key];
    if (v === undefined) continue;
    if (field === 'use_speaker_boost') voiceSettings[field] = v === true || v === 'true';
    else if (Number.isFinite(Number(v))) voiceSettings[field] = Number(v);
  }
  const num = (key: string) =>
    o[key] !== undefined && Number.isFinite(Number(o[key])) ? Number(o[key]) : undefined;
  return {
    apiKey: env.ELEVENLABS_API_KEY ?? '',
    voiceId: voice ?? (typeof o.voice === 'string' ? o.voice : undefined),
    baseUrl: env.ELEVENLABS_BASE_URL,
    model: choice?.model,
    outputFormat: typeof o.outputFormat === 'string' ? (o.outputFormat as ElevenLabsFormat) : undefined,
    voiceSettings,
    language: typeof o.language === 'string' ? o.language : undefined,
    timeoutMs: num('timeoutMs'),
    connectTimeoutMs: num('connectTimeoutMs'),
    keepAliveMs: num('keepAliveMs'),
    inactivityTimeoutSec: num('inactivityTimeoutSec'),
  };
}

/** Whether the deployment can use ElevenLabs: its key is set. */
export function elevenLabsAvailable(env: ProviderEnv): Availability {
  return env.ELEVENLABS_API_KEY ? { ok: true } : { ok: false, missing: 'ELEVENLABS_API_KEY is not set' };
}

/** Registers the `elevenlabs` voice (the lead calls this from the default registry). */
export function registerElevenLabs(registry: ProviderRegistry): ProviderRegistry {
  return registry.textToSpeech(
    PROVIDER,
    (choice, voice, env) => new ElevenLabsTts(elevenLabsOptions(choice, voice, env)),
    elevenLabsAvailable,
  );
}
