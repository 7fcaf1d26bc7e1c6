import { randomUUID } from 'node:crypto';
import type { Server, ServerWebSocket } from 'bun';

/**
 * A local Deepgram live transcription endpoint (`GET /v1/listen` upgraded to a WebSocket),
 * speaking its wire format (developers.deepgram.com, "Live Audio" reference and the streaming
 * feature pages): `Authorization: Token <key>` checked at the upgrade (401 `INVALID_AUTH`
 * otherwise), binary audio in (`encoding` mulaw or linear16 at `sample_rate`), JSON control
 * messages `KeepAlive`, `Finalize`, `CloseStream`, and `Results` / `UtteranceEnd` / `Metadata`
 * out.
 *
 * Recognition is scripted: a test gives the words the "caller" says with their times on the
 * connection's audio timeline, and the fake answers as the audio advances, like Deepgram does:
 * interim results every `interimEveryMs` of audio while words are heard, an `is_final` +
 * `speech_final` result once `endpointing` ms of audio passed after the last heard word,
 * `UtteranceEnd` after `utterance_end_ms`, and on `Finalize` an `is_final` result with
 * `from_finalize: true` holding what was heard and not yet final (after `finalizeDelayMs`).
 * Load runs, whose audio timeline is not known in advance, set `finalizeText` instead of words.
 */

export interface FakeWord {
  word: string;
  /** Seconds on the connection's audio timeline. */
  start: number;
  end: number;
  confidence?: number;
}

export interface FakeDeepgramConnection {
  index: number;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  /** Binary audio frames as received. */
  audio: Uint8Array[];
  audioBytes: number;
  /** Parsed JSON text frames (`KeepAlive`, `Finalize`, `CloseStream`, …). */
  controls: Array<Record<string, unknown>>;
  /** Every message the fake sent, parsed. */
  sent: Array<Record<string, unknown>>;
  /** Audio received, seconds (from `audioBytes`, `encoding` and `sample_rate`). */
  readonly audioSec: number;
  closed: boolean;
  /** Sends a raw message (any shape) to the client. */
  send(message: Record<string, unknown>): void;
  /** Closes the socket from the server side (Deepgram uses 1011 for its network timeouts). */
  drop(code?: number, reason?: string): void;
}

/** Makes the next upgrades fail: with an HTTP status, or by never answering. */
export type DeepgramFault = { status: number } | 'hang';

export interface FakeDeepgram {
  /** `ws://127.0.0.1:<port>`: what `DEEPGRAM_BASE_URL` takes. */
  url: string;
  apiKey: string;
  connections: FakeDeepgramConnection[];
  /** The words each new connection hears (default for all connections). */
  words: FakeWord[];
  /** Words for one connection by index, overriding `words`. */
  wordsFor: Map<number, FakeWord[]>;
  /** Answer `Finalize` (default true). Deepgram does not promise to when little audio is buffered. */
  answerFinalize: boolean;
  /** Answer `Finalize` this long after it arrives, ms: the recogniser's flush time (default 0, at once). */
  finalizeDelayMs: number;
  /**
   * When set, a `Finalize` with no scripted words pending answers with these words, spread over
   * the audio received since the last final result (if any arrived): a caller who always says
   * the same thing, for load runs whose audio timeline is not known in advance (default null).
   */
  finalizeText: string | null;
  /** Keep each audio frame in `conn.audio` (default true); long load runs turn it off. */
  keepAudio: boolean;
  /** Send nothing at all (a hung server). */
  silent: boolean;
  interimEveryMs: number;
  /**
   * A socket that receives neither audio nor KeepAlive for this long is closed with 1011
   * `NET-0001`, as Deepgram does after ~10 s (default 10000).
   */
  idleTimeoutMs: number;
  /** Called after each audio frame is processed (to drop a socket mid-stream, say). */
  onAudio: ((conn: FakeDeepgramConnection) => void) | null;
  /** Applies to every following upgrade until cleared with `fault(null)`. */
  fault(fault: DeepgramFault | null): void;
  stop(): void;
}

const ENCODINGS: Record<string, number> = { linear16: 2, mulaw: 1, alaw: 1 };

interface ConnState {
  conn: FakeDeepgramConnection;
  ws: ServerWebSocket<ConnData> | null;
  requestId: string;
  words: FakeWord[];
  bytesPerSample: number;
  sampleRate: number;
  endpointingSec: number | null;
  utteranceEndSec: number | null;
  interim: boolean;
  punctuate: boolean;
  model: string;
  /** Words before this index were sent as final. */
  finalIndex: number;
  /** End of the audio the last final result covered, seconds. */
  finalEnd: number;
  lastInterimAt: number;
  utteranceEndDue: number | null;
  vadEvents: boolean;
  /** SpeechStarted was sent for the words being heard. */
  speechStarted: boolean;
  idleTimer: ReturnType<typeof setTimeout> | null;
}

interface ConnData {
  state: ConnState;
}

function deepgramError(status: number, errCode: string, errMsg: string): Response {
  return Response.json({ err_code: errCode, err_msg: errMsg, request_id: randomUUID() }, { status });
}

export function startFakeDeepgram(opts: { apiKey?: string } = {}): FakeDeepgram {
  const apiKey = opts.apiKey ?? `dg_${randomUUID().replaceAll('-', '')}`;
  const connections: FakeDeepgramConnection[] = [];
  const hung: Array<() => void> = [];
  let currentFault: DeepgramFault | null = null;

  const fake: FakeDeepgram = {
    url: '',
    apiKey,
    connections,
    words: [],
    wordsFor: new Map(),
    answerFinalize: true,
    finalizeDelayMs: 0,
    finalizeText: null,
    keepAudio: true,
    silent: false,
    interimEveryMs: 250,
    idleTimeoutMs: 10_000,
    onAudio: null,
    fault(f) {
      currentFault = f;
    },
    stop() {
      for (const release of hung.splice(0)) release();
      server.stop(true);
    },
  };

  const emit = (s: ConnState, message: Record<string, unknown>) => {
    if (fake.silent || !s.ws || s.conn.closed) return;
    s.conn.sent.push(message);
    s.ws.send(JSON.stringify(message));
  };

  /** Sends a `Results`; `scripted` words advance the connection's place in its word list. */
  const results = (
    s: ConnState,
    words: FakeWord[],
    flags: { isFinal: boolean; speechFinal: boolean; fromFinalize: boolean },
    scripted = true,
  ) => {
    const audioSec = s.conn.audioSec;
    const shown = words.map((w) => ({
      word: w.word.toLowerCase(),
      start: w.start,
      end: w.end,
      confidence: w.confidence ?? 0.98,
      ...(s.punctuate ? { punctuated_word: w.word } : {}),
    }));
    const confidence = shown.length ? Math.min(...shown.map((w) => w.confidence)) : 0;
    emit(s, {
      type: 'Results',
      channel_index: [0, 1],
      duration: Math.max(0, audioSec - s.finalEnd),
      start: s.finalEnd,
      is_final: flags.isFinal,
      speech_final: flags.speechFinal,
      channel: {
        alternatives: [
          {
            transcript: shown.map((w) => (s.punctuate ? w.punctuated_word : w.word)).join(' '),
            confidence,
            words: shown,
          },
        ],
      },
      metadata: {
        request_id: s.requestId,
        model_info: { name: `general-${s.model}`, version: '2025-01-01.0', arch: s.model },
        model_uuid: '00000000-0000-4000-8000-000000000000',
      },
      from_finalize: flags.fromFinalize,
    });
    if (flags.isFinal) {
      if (scripted) s.finalIndex += words.length;
      s.finalEnd = audioSec;
      s.speechStarted = false;
      const last = words.at(-1);
      if (last && s.utteranceEndSec !== null) s.utteranceEndDue = last.end + s.utteranceEndSec;
    }
  };

  /** Words heard (started) and not yet final. */
  const heard = (s: ConnState) => {
    const out: FakeWord[] = [];
    for (let i = s.finalIndex; i < s.words.length && s.words[i]!.start < s.conn.audioSec; i++) {
      out.push(s.words[i]!);
    }
    return out;
  };

  /** Answers a `Finalize`: the words heard and not yet final, else `finalizeText` (see there). */
  const answerFinalize = (s: ConnState) => {
    const pending = heard(s);
    const flags = { isFinal: true, speechFinal: false, fromFinalize: true };
    const from = s.finalEnd;
    const to = s.conn.audioSec;
    if (pending.length > 0 || fake.finalizeText === null || to <= from) {
      results(s, pending, flags);
      return;
    }
    const text = fake.finalizeText.split(/\s+/).filter(Boolean);
    const step = (to - from) / Math.max(1, text.length);
    const words = text.map((word, i) => ({ word, start: from + i * step, end: from + (i + 0.9) * step }));
    results(s, words, flags, false);
  };

  /** Restarts the idle deadline (audio or KeepAlive arrived). */
  const touch = (s: ConnState) => {
    if (s.idleTimer) clearTimeout(s.idleTimer);
    s.idleTimer = setTimeout(() => s.conn.drop(1011, 'NET-0001'), fake.idleTimeoutMs);
  };

  const onAudio = (s: ConnState) => {
    const now = s.conn.audioSec;
    const pending = heard(s);
    const next = s.words[s.finalIndex + pending.length];
    const last = pending.at(-1);
    if (pending.length > 0 && s.vadEvents && !s.speechStarted) {
      s.speechStarted = true;
      emit(s, { type: 'SpeechStarted', channel: [0, 1], timestamp: pending[0]!.start });
    }
    if (
      last &&
      s.endpointingSec !== null &&
      last.end + s.endpointingSec <= now &&
      !(next && next.start < now)
    ) {
      results(s, pending, { isFinal: true, speechFinal: true, fromFinalize: false });
    } else if (pending.length > 0 && s.interim && (now - s.lastInterimAt) * 1000 >= fake.interimEveryMs) {
      s.lastInterimAt = now;
      results(s, pending, { isFinal: false, speechFinal: false, fromFinalize: false });
    }
    if (s.utteranceEndDue !== null && now >= s.utteranceEndDue && heard(s).length === 0) {
      const lastWord = s.words[s.finalIndex - 1];
      emit(s, { type: 'UtteranceEnd', channel: [0, 1], last_word_end: lastWord?.end ?? 0 });
      s.utteranceEndDue = null;
    }
  };

  const server: Server<ConnData> = Bun.serve<ConnData>({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname !== '/v1/listen') return new Response('Not Found', { status: 404 });
      if (currentFault === 'hang') {
        return new Promise<Response>((resolve) =>
          hung.push(() => resolve(new Response(null, { status: 503 }))),
        );
      }
      if (currentFault) return deepgramError(currentFault.status, 'FAULT', 'Injected fault.');
      if (req.headers.get('authorization') !== `Token ${apiKey}`) {
        return deepgramError(401, 'INVALID_AUTH', 'Invalid credentials.');
      }
      if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
        return deepgramError(426, 'UPGRADE_REQUIRED', 'Expected a WebSocket upgrade.');
      }
      const q = url.searchParams;
      const encoding = q.get('encoding') ?? 'linear16';
      const sampleRate = Number(q.get('sample_rate') ?? 16000);
      if (!(encoding in ENCODINGS) || !Number.isInteger(sampleRate) || sampleRate <= 0) {
        return deepgramError(400, 'Bad Request', 'Invalid encoding or sample_rate.');
      }
      if (q.get('channels') !== null && q.get('channels') !== '1') {
        return deepgramError(400, 'Bad Request', 'This fake takes one channel.');
      }
      const index = connections.length;
      const conn: FakeDeepgramConnection = {
        index,
        path: url.pathname,
        query: q,
        headers: Object.fromEntries(req.headers),
        audio: [],
        audioBytes: 0,
        controls: [],
        sent: [],
        get audioSec() {
          return this.audioBytes / ENCODINGS[encoding]! / sampleRate;
        },
        closed: false,
        send(message) {
          state.ws?.send(JSON.stringify(message));
        },
        drop(code = 1011, reason = 'NET-0001') {
          conn.closed = true;
          state.ws?.close(code, reason);
        },
      };
      const endpointing = q.get('endpointing');
      const utteranceEnd = q.get('utterance_end_ms');
      const state: ConnState = {
        conn,
        ws: null,
        requestId: randomUUID(),
        words: fake.wordsFor.get(index) ?? fake.words,
        bytesPerSample: ENCODINGS[encoding]!,
        sampleRate,
        endpointingSec: endpointing === 'false' ? null : Number(endpointing ?? 10) / 1000,
        utteranceEndSec: utteranceEnd ? Number(utteranceEnd) / 1000 : null,
        interim: q.get('interim_results') === 'true',
        punctuate: q.get('smart_format') === 'true' || q.get('punctuate') === 'true',
        model: q.get('model') ?? 'base',
        finalIndex: 0,
        finalEnd: 0,
        lastInterimAt: 0,
        utteranceEndDue: null,
        vadEvents: q.get('vad_events') === 'true',
        speechStarted: false,
        idleTimer: null,
      };
      connections.push(conn);
      if (srv.upgrade(req, { data: { state } })) return;
      return deepgramError(400, 'Bad Request', 'Upgrade failed.');
    },
    websocket: {
      open(ws) {
        ws.data.state.ws = ws;
        touch(ws.data.state);
      },
      message(ws, message) {
        const s = ws.data.state;
        if (typeof message !== 'string') {
          touch(s);
          const bytes = new Uint8Array(message);
          if (fake.keepAudio) s.conn.audio.push(bytes);
          s.conn.audioBytes += bytes.length;
          onAudio(s);
          fake.onAudio?.(s.conn);
          return;
        }
        let control: Record<string, unknown>;
        try {
          control = JSON.parse(message);
        } catch {
          ws.close(1008, 'DATA-0000');
          return;
        }
        s.conn.controls.push(control);
        if (control.type === 'KeepAlive') touch(s);
        if (control.type === 'Finalize') {
          if (!fake.answerFinalize) return;
          if (fake.finalizeDelayMs > 0) setTimeout(() => answerFinalize(s), fake.finalizeDelayMs);
          else answerFinalize(s);
        } else if (control.type === 'CloseStream') {
          const pending = heard(s);
          if (pending.length > 0)
            results(s, pending, { isFinal: true, speechFinal: true, fromFinalize: false });
          emit(s, {
            type: 'Metadata',
            transaction_key: 'deprecated',
            request_id: s.requestId,
            sha256: '0'.repeat(64),
            created: new Date().toISOString(),
            duration: s.conn.audioSec,
            channels: 1,
          });
          s.conn.closed = true;
          ws.close(1000);
        }
      },
      close(ws) {
        if (ws.data.state.idleTimer) clearTimeout(ws.data.state.idleTimer);
        ws.data.state.conn.closed = true;
        ws.data.state.ws = null;
      },
    },
  });
  fake.url = `ws://127.0.0.1:${server.port}`;
  return fake;
}
