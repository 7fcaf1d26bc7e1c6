/**
 * Deepgram live speech-to-text (`wss://api.deepgram.com/v1/listen`) for the `deepgram` provider.
 *
 * One WebSocket per call stream, opened by `open()` and kept for the whole call:
 * - audio goes in as binary frames: G.711 mu-law at 8 kHz (what the phone wire carries, half
 *   the bytes) or linear16 at 16 kHz, whichever rate the conversation hands us;
 * - Deepgram answers with `Results` (interim `is_final: false`, then `is_final: true` segments,
 *   `speech_final: true` at its own endpoint), `UtteranceEnd`, `SpeechStarted`, `Metadata`;
 * - `finalize()` (the conversation's end of turn) sends `{"type":"Finalize"}` and resolves with
 *   the `is_final` segments since the previous turn, joined, once Deepgram has flushed: the
 *   `from_finalize: true` result, or a `speech_final` / `UtteranceEnd` after the Finalize, or,
 *   since Deepgram does not promise a flush answer when little audio is buffered, a quiet
 *   `finalizeTimeoutMs` on a socket that is still talking;
 * - between turns no audio flows, so `{"type":"KeepAlive"}` goes out every `keepAliveMs` (Deepgram
 *   closes a socket after ~10 s without data);
 * - a socket that drops mid-call is reopened once, and the audio Deepgram had not yet finalised
 *   is sent again (and a pending Finalize), so the caller's words are not lost; a second failure
 *   (or a refusal: bad key, bad parameters, undecodable audio) fails the stream with
 *   `ProviderError`.
 *
 * Word timings are ms from the first sample pushed to the stream (across reconnects). The API key
 * travels only in the `Authorization: Token` header and never reaches a log or an error.
 */

import { encodeMulaw } from '../../../audio/g711.ts';
import type { Logger } from '../../../observability/log.ts';
import type { ProviderChoice } from '../../config.ts';
import type { ProviderEnv, ProviderRegistry } from '../../registry.ts';
import {
  ProviderError,
  type SpeechToText,
  type SttOptions,
  type SttStream,
  type Transcript,
  type WordTiming,
} from '../types.ts';

const PROVIDER = 'deepgram';

/** Deepgram's public endpoint; `DEEPGRAM_BASE_URL` points elsewhere (a proxy, a fake). */
export const DEEPGRAM_BASE_URL = 'wss://api.deepgram.com';

/** The rates this adapter streams natively: mu-law at 8 kHz, linear16 at 16 kHz. */
export const DEEPGRAM_RATES = [8000, 16000] as const;

export const DEEPGRAM_DEFAULT_MODEL = 'nova-3';

/** Deepgram's own endpoint silence (its `speech_final`), ms. */
export const DEEPGRAM_DEFAULT_ENDPOINTING_MS = 300;

/** Silence after the last word before `UtteranceEnd` (Deepgram's minimum is 1000), ms. */
export const DEEPGRAM_DEFAULT_UTTERANCE_END_MS = 1000;

/** Options that take several values: a comma-separated string becomes repeated parameters. */
const LIST_OPTIONS = new Set(['keywords', 'keyterm', 'search', 'replace', 'redact', 'tag']);

/** Query parameters the adapter owns: they follow the stream's rate, options cannot change them. */
const OWNED_PARAMS = new Set(['encoding', 'sample_rate', 'channels']);

/** Audio kept for a replay after a drop, at most (older unfinalised audio is dropped), ms. */
const MAX_REPLAY_MS = 30_000;

/** Close codes after which a reconnect cannot help (Deepgram: 1008 = audio it cannot decode). */
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008]);

export interface DeepgramSttOptions {
  apiKey: string;
  /** `wss://api.deepgram.com` by default; `/v1/listen` is appended. */
  baseUrl?: string;
  /** Default `nova-3`; `SttOptions.model` (the agent's `stt.model`) wins. */
  model?: string;
  /**
   * Extra query parameters (the agent's `stt.options`): `endpointing` (ms or false),
   * `utterance_end_ms`, `smart_format`, `keyterm` (nova-3) / `keywords` (nova-2, comma-separated)…
   */
  options?: Record<string, string | number | boolean>;
  /** WebSocket upgrade deadline, ms (default 5000). */
  connectTimeoutMs?: number;
  /** How long `finalize` waits for Deepgram's flush before deciding, ms (default 2000). */
  finalizeTimeoutMs?: number;
  /** A KeepAlive goes out when nothing was sent for this long, ms (default 5000). */
  keepAliveMs?: number;
  logger?: Logger;
}

/** The `deepgram` speech-to-text provider: Deepgram's live WebSocket API (see the file's docblock). */
export class DeepgramStt implements SpeechToText {
  readonly name = PROVIDER;
  readonly sampleRates = DEEPGRAM_RATES;

  constructor(private readonly opts: DeepgramSttOptions) {}

  async open(opts: SttOptions): Promise<SttStream> {
    if (!this.opts.apiKey) {
      throw new ProviderError('deepgram: DEEPGRAM_API_KEY is not set', PROVIDER, false, 'missing_key');
    }
    if (opts.sampleRate !== 8000 && opts.sampleRate !== 16000) {
      throw new ProviderError(
        `deepgram streams 8000 or 16000 Hz audio, not ${opts.sampleRate}`,
        PROVIDER,
        false,
        'unsupported_rate',
      );
    }
    const url = listenUrl(this.opts, opts);
    const settings: StreamSettings = {
      url,
      apiKey: this.opts.apiKey,
      sampleRate: opts.sampleRate,
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 5000,
      finalizeTimeoutMs: this.opts.finalizeTimeoutMs ?? 2000,
      keepAliveMs: this.opts.keepAliveMs ?? 5000,
      logger: this.opts.logger,
    };
    const ws = await connect(settings);
    return new DeepgramStream(settings, ws);
  }
}

/**
 * The request URL: `{base}/v1/listen?model&language&encoding&sample_rate&channels&interim_results
 * &endpointing&utterance_end_ms&vad_events`, then the agent's options.
 */
export function listenUrl(provider: DeepgramSttOptions, opts: SttOptions): string {
  const base = (provider.baseUrl || DEEPGRAM_BASE_URL).replace(/\/+$/, '').replace(/^http/, 'ws');
  const options = { ...provider.options, ...opts.options };
  const params = new URLSearchParams();
  params.set('model', opts.model || provider.model || DEEPGRAM_DEFAULT_MODEL);
  if (opts.language) params.set('language', opts.language);
  params.set('encoding', opts.sampleRate === 8000 ? 'mulaw' : 'linear16');
  params.set('sample_rate', String(opts.sampleRate));
  params.set('channels', '1');
  params.set('interim_results', 'true');
  params.set('endpointing', String(DEEPGRAM_DEFAULT_ENDPOINTING_MS));
  params.set('utterance_end_ms', String(DEEPGRAM_DEFAULT_UTTERANCE_END_MS));
  params.set('vad_events', 'true');
  for (const [key, value] of Object.entries(options)) {
    if (OWNED_PARAMS.has(key) || key === 'model') continue;
    if (LIST_OPTIONS.has(key) && typeof value === 'string') {
      params.delete(key);
      for (const item of value.split(',')) if (item.trim()) params.append(key, item.trim());
    } else {
      params.set(key, String(value));
    }
  }
  return `${base}/v1/listen?${params}`;
}

/**
 * Registers the `deepgram` speech-to-text provider, available where `DEEPGRAM_API_KEY` is set;
 * `DEEPGRAM_BASE_URL` overrides the endpoint.
 */
export function registerDeepgram(registry: ProviderRegistry, logger?: Logger): ProviderRegistry {
  return registry.speechToText(
    PROVIDER,
    (choice: ProviderChoice | undefined, env: ProviderEnv) =>
      new DeepgramStt({
        apiKey: env.DEEPGRAM_API_KEY ?? '',
        baseUrl: env.DEEPGRAM_BASE_URL,
        model: choice?.model,
        options: choice?.options,
        logger,
      }),
    (env) => (env.DEEPGRAM_API_KEY ? { ok: true } : { ok: false, missing: 'DEEPGRAM_API_KEY is not set' }),
  );
}

// ---------------------------------------------------------------- connection

interface StreamSettings {
  url: string;
  apiKey: string;
  sampleRate: number;
  connectTimeoutMs: number;
  finalizeTimeoutMs: number;
  keepAliveMs: number;
  logger: Logger | undefined;
}

/** A refused upgrade as the conversation expects it: key refusals and bad requests are final. */
function upgradeError(status: number): ProviderError {
  const code = `http_${status}`;
  if (status === 401 || status === 403) {
    return new ProviderError(`deepgram refused the API key (HTTP ${status})`, PROVIDER, false, code);
  }
  const retryable = status === 408 || status === 429 || status >= 500;
  return new ProviderError(`deepgram refused the connection (HTTP ${status})`, PROVIDER, retryable, code);
}

/** Opens the socket, or rejects with a `ProviderError` (status-aware where the runtime says it). */
function connect(s: StreamSettings): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      // Bun's WebSocket takes request headers (the DOM typing does not know them).
      const BunWebSocket = WebSocket as unknown as new (
        url: string,
        init: { headers: Record<string, string> },
      ) => WebSocket;
      ws = new BunWebSocket(s.url, { headers: { Authorization: `Token ${s.apiKey}` } });
    } catch (err) {
      reject(
        new ProviderError(
          `deepgram: bad endpoint URL (${err instanceof Error ? err.name : 'error'})`,
          PROVIDER,
          false,
          'bad_url',
        ),
      );
      return;
    }
    ws.binaryType = 'arraybuffer';
    let failure = '';
    const timer = setTimeout(() => {
      cleanup();
      ws.close();
      reject(
        new ProviderError(
          `deepgram did not accept the connection within ${s.connectTimeoutMs} ms`,
          PROVIDER,
          true,
          'timeout',
        ),
      );
    }, s.connectTimeoutMs);
    const onOpen = () => {
      cleanup();
      resolve(ws);
    };
    const onError = (event: Event) => {
      failure = (event as ErrorEvent).message ?? '';
    };
    const onClose = () => {
      cleanup();
      // Bun reports a refused upgrade as "Expected 101 status code: 401".
      const status = /status code:?\s*(\d{3})/i.exec(failure)?.[1];
      reject(
        status
          ? upgradeError(Number(status))
          : new ProviderError('deepgram: could not connect', PROVIDER, true, 'connect_failed'),
      );
    };
    const cleanup = () => {
      clearTimeout(timer);
      ws.removeEventListener('open', onOpen);
      ws.removeEventListener('error', onError);
      ws.removeEventListener('close', onClose);
    };
    ws.addEventListener('open', onOpen);
    ws.addEventListener('error', onError);
    ws.addEventListener('close', onClose);
  });
}

// ---------------------------------------------------------------- wire shapes

interface DeepgramWord {
  word: string;
  start: number;
  end: number;
  confidence?: number;
  punctuated_word?: string;
}

interface DeepgramResults {
  type: 'Results';
  start?: number;
  duration?: number;
  is_final?: boolean;
  speech_final?: boolean;
  from_finalize?: boolean;
  channel?: { alternatives?: Array<{ transcript?: string; confidence?: number; words?: DeepgramWord[] }> };
}

interface Segment {
  text: string;
  confidence: number | undefined;
  words: WordTiming[];
}

interface PendingFinalize {
  resolve: (t: Transcript) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | null;
  /** A server message arrived since the Finalize went out (the socket is alive). */
  heard: boolean;
  cleanup: () => void;
}

interface SentChunk {
  /** Position in the stream, samples. */
  at: number;
  bytes: Uint8Array<ArrayBuffer>;
  samples: number;
}

// ---------------------------------------------------------------- stream

class DeepgramStream implements SttStream {
  onTranscript?: (t: Transcript) => void;
  private ws: WebSocket | null;
  private state: 'open' | 'reconnecting' | 'failed' | 'closed' = 'open';
  private failure: ProviderError | null = null;
  /** `is_final` segments of the current turn. */
  private segments: Segment[] = [];
  private interim = '';
  /** The segments up to this count were already announced as an early final. */
  private announced = 0;
  private pending: PendingFinalize | null = null;
  /** A Finalize went out on the current socket and is unanswered. */
  private finalizeSent = false;
  /** Stream position the pending Finalize flushes up to, samples. */
  private finalizeAt = 0;
  /** Stream position Deepgram's final results cover, samples. */
  private covered = 0;
  /** Samples pushed since the stream opened. */
  private pushedSamples = 0;
  /** Stream position where the current socket's timeline starts, samples. */
  private socketBase = 0;
  /** Audio Deepgram has not finalised yet (replayed after a reconnect). */
  private unfinalised: SentChunk[] = [];
  private unfinalisedSamples = 0;
  private lastSentAt = performance.now();
  /** A reconnect may be tried (reset once a reconnected socket has produced results). */
  private mayReconnect = true;
  private readonly keepAlive: ReturnType<typeof setInterval>;

  constructor(
    private readonly s: StreamSettings,
    ws: WebSocket,
  ) {
    this.ws = ws;
    this.attach(ws);
    this.keepAlive = setInterval(() => this.tick(), Math.max(10, Math.floor(s.keepAliveMs / 5)));
    (this.keepAlive as { unref?: () => void }).unref?.();
  }

  push(pcm: Int16Array): void {
    if (this.state === 'failed' || this.state === 'closed' || pcm.length === 0) return;
    let bytes: Uint8Array<ArrayBuffer>;
    if (this.s.sampleRate === 8000) {
      bytes = new Uint8Array(pcm.length);
      encodeMulaw(pcm, bytes);
    } else {
      // linear16 is little-endian, like every platform Bun runs on; copied: `pcm` may be reused.
      bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength).slice();
    }
    this.unfinalised.push({ at: this.pushedSamples, bytes, samples: pcm.length });
    this.unfinalisedSamples += pcm.length;
    this.pushedSamples += pcm.length;
    const maxSamples = (MAX_REPLAY_MS / 1000) * this.s.sampleRate;
    while (this.unfinalisedSamples > maxSamples && this.unfinalised.length > 1) {
      this.unfinalisedSamples -= this.unfinalised.shift()!.samples;
    }
    if (this.state === 'open' && this.ws) this.send(bytes);
  }

  finalize(signal?: AbortSignal): Promise<Transcript> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.state === 'closed') {
      return Promise.reject(new ProviderError('deepgram stream is closed', PROVIDER, false, 'closed'));
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) {
      return Promise.reject(new ProviderError('deepgram: finalize already pending', PROVIDER, false));
    }
    return new Promise<Transcript>((resolve, reject) => {
      const pending: PendingFinalize = {
        resolve,
        reject,
        timer: null,
        heard: false,
        cleanup: () => {
          signal?.removeEventListener('abort', onAbort);
          if (pending.timer) clearTimeout(pending.timer);
          pending.timer = null;
        },
      };
      const onAbort = () => {
        if (this.pending !== pending) return;
        this.pending = null;
        this.finalizeSent = false;
        pending.cleanup();
        this.resetTurn();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending = pending;
      if (this.covered >= this.pushedSamples - this.tolerance()) {
        // Deepgram has finalised every sample already: nothing to flush.
        this.completeTurn();
        return;
      }
      if (this.state === 'open') this.sendFinalize();
      // While reconnecting, the Finalize goes out after the replay.
    });
  }

  close(): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    clearInterval(this.keepAlive);
    this.failPending(new ProviderError('deepgram stream is closed', PROVIDER, false, 'closed'));
    const ws = this.ws;
    this.ws = null;
    if (ws && wasOpen) {
      try {
        ws.send(JSON.stringify({ type: 'CloseStream' }));
        ws.close(1000);
      } catch {
        // Already closing.
      }
    }
    this.unfinalised = [];
    this.unfinalisedSamples = 0;
  }

  // ------------------------------------------------------------ socket

  private attach(ws: WebSocket): void {
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === 'string') this.onMessage(event.data);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws || this.state === 'closed') return;
      this.onDrop(event.code);
    });
  }

  private send(data: Uint8Array<ArrayBuffer> | string): void {
    try {
      this.ws?.send(data);
      this.lastSentAt = performance.now();
    } catch {
      // A failed send shows up as the socket's close.
    }
  }

  private tick(): void {
    if (this.state !== 'open') return;
    if (performance.now() - this.lastSentAt >= this.s.keepAliveMs) this.send('{"type":"KeepAlive"}');
  }

  private sendFinalize(): void {
    const p = this.pending;
    if (!p) return;
    p.heard = false;
    this.finalizeSent = true;
    this.finalizeAt = this.pushedSamples;
    this.send('{"type":"Finalize"}');
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => this.onFinalizeTimeout(), this.s.finalizeTimeoutMs);
  }

  private onFinalizeTimeout(): void {
    const p = this.pending;
    if (!p) return;
    p.timer = null;
    if (p.heard) {
      // Deepgram is alive but had nothing to flush (it does not promise an answer then).
      this.completeTurn();
      return;
    }
    this.s.logger?.warn({ finalizeTimeoutMs: this.s.finalizeTimeoutMs }, 'stt finalize unanswered');
    // A socket that stopped answering counts as dropped.
    const ws = this.ws;
    this.onDrop(null);
    try {
      ws?.close();
    } catch {
      // Already closing.
    }
  }

  private onDrop(code: number | null): void {
    if (this.state !== 'open') return;
    this.finalizeSent = false;
    if (this.pending?.timer) {
      // Re-armed when the Finalize goes out again on the new socket.
      clearTimeout(this.pending.timer);
      this.pending.timer = null;
    }
    const fatal = code !== null && FATAL_CLOSE_CODES.has(code);
    this.s.logger?.warn({ closeCode: code, reconnect: this.mayReconnect && !fatal }, 'stt socket dropped');
    if (fatal) {
      this.fail(
        new ProviderError(`deepgram closed the stream (code ${code})`, PROVIDER, false, `ws_${code}`),
      );
      return;
    }
    if (!this.mayReconnect) {
      this.fail(
        new ProviderError(
          code === null ? 'deepgram stopped answering' : `deepgram dropped the stream (code ${code})`,
          PROVIDER,
          true,
          code === null ? 'timeout' : 'dropped',
        ),
      );
      return;
    }
    this.mayReconnect = false;
    this.state = 'reconnecting';
    this.ws = null;
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    let ws: WebSocket;
    try {
      ws = await connect(this.s);
    } catch (err) {
      if (this.state !== 'reconnecting') return;
      this.fail(
        err instanceof ProviderError
          ? err
          : new ProviderError('deepgram: could not reconnect', PROVIDER, true, 'connect_failed'),
      );
      return;
    }
    if (this.state !== 'reconnecting') {
      ws.close(1000);
      return;
    }
    this.ws = ws;
    this.state = 'open';
    this.attach(ws);
    // The new socket's timeline starts at the oldest audio Deepgram had not finalised.
    this.socketBase = this.unfinalised[0]?.at ?? this.pushedSamples;
    for (const chunk of this.unfinalised) this.send(chunk.bytes);
    this.s.logger?.info(
      { replayedMs: Math.round((this.unfinalisedSamples * 1000) / this.s.sampleRate) },
      'stt socket reconnected',
    );
    if (this.pending) this.sendFinalize();
  }

  private fail(err: ProviderError): void {
    this.state = 'failed';
    this.failure = err;
    this.ws = null;
    clearInterval(this.keepAlive);
    this.unfinalised = [];
    this.unfinalisedSamples = 0;
    this.failPending(err);
  }

  private failPending(err: ProviderError): void {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    p.cleanup();
    p.reject(err);
  }

  // ------------------------------------------------------------ messages

  private onMessage(text: string): void {
    let msg: { type?: string };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (this.pending) this.pending.heard = true;
    if (msg.type === 'Results') this.onResults(msg as DeepgramResults);
    else if (msg.type === 'UtteranceEnd') this.onUtteranceEnd();
  }

  private onResults(r: DeepgramResults): void {
    const alt = r.channel?.alternatives?.[0];
    const text = (alt?.transcript ?? '').trim();
    if (r.is_final) {
      this.mayReconnect = true;
      this.confirm(r);
      this.interim = '';
      if (text) {
        const baseMs = (this.socketBase * 1000) / this.s.sampleRate;
        this.segments.push({
          text,
          confidence: alt?.confidence,
          words: (alt?.words ?? []).map((w) => ({
            word: w.punctuated_word ?? w.word,
            startMs: Math.round(baseMs + w.start * 1000),
            endMs: Math.round(baseMs + w.end * 1000),
          })),
        });
      }
      if (this.finalizeSent && (r.from_finalize || this.covered >= this.finalizeAt - this.tolerance())) {
        this.completeTurn();
        return;
      }
      if (r.speech_final) {
        this.endOfSpeech();
        return;
      }
      if (text) this.onTranscript?.({ text: this.joined(), final: false });
      return;
    }
    if (text && text !== this.interim) {
      this.interim = text;
      this.onTranscript?.({ text: `${this.joined()} ${text}`.trim(), final: false });
    }
  }

  private onUtteranceEnd(): void {
    this.endOfSpeech();
  }

  /** Deepgram saw the caller stop (`speech_final` or `UtteranceEnd`). */
  private endOfSpeech(): void {
    if (this.pending && this.finalizeSent) {
      this.completeTurn();
      return;
    }
    if (this.segments.length > this.announced) {
      this.announced = this.segments.length;
      this.onTranscript?.(this.transcript());
    }
  }

  /** Drops replay audio that a final result covers. */
  private confirm(r: DeepgramResults): void {
    if (r.start === undefined || r.duration === undefined) return;
    const covered = this.socketBase + Math.floor((r.start + r.duration) * this.s.sampleRate);
    this.covered = Math.max(this.covered, covered);
    while (this.unfinalised.length > 0) {
      const first = this.unfinalised[0]!;
      if (first.at + first.samples > covered) break;
      this.unfinalised.shift();
      this.unfinalisedSamples -= first.samples;
    }
  }

  private completeTurn(): void {
    const p = this.pending;
    this.pending = null;
    this.finalizeSent = false;
    const transcript = this.transcript();
    this.resetTurn();
    if (!p) return;
    p.cleanup();
    p.resolve(transcript);
  }

  private resetTurn(): void {
    this.segments = [];
    this.interim = '';
    this.announced = 0;
  }

  /** Slack on Deepgram's float second offsets when comparing positions: 20 ms, in samples. */
  private tolerance(): number {
    return this.s.sampleRate / 50;
  }

  private joined(): string {
    return this.segments.map((s) => s.text).join(' ');
  }

  /** The turn so far as one final transcript: segments joined, confidence weighted by words. */
  private transcript(): Transcript {
    const text = this.joined();
    if (!text) return { text: '', final: true };
    let weight = 0;
    let sum = 0;
    for (const s of this.segments) {
      if (s.confidence === undefined) continue;
      const w = Math.max(1, s.words.length);
      weight += w;
      sum += s.confidence * w;
    }
    return {
      text,
      final: true,
      ...(weight > 0 ? { confidence: sum / weight } : {}),
      words: this.segments.flatMap((s) => s.words),
    };
  }
}
