/**
 * A local OpenAI API server speaking the wire formats the adapters use, over a real socket:
 *
 * - `POST /v1/chat/completions` with `stream: true`: `text/event-stream`, one
 *   `data: {chat.completion.chunk}` event per step (shapes as in
 *   tests/fixtures/vendors/openai/chat-chunk-*.json), then `data: [DONE]`.
 * - `POST /v1/audio/speech` with `response_format: "pcm"`: raw 24 kHz s16le bytes, streamed in
 *   several body pieces.
 * - Errors: the status and `{"error":{"message","type","param","code"}}`; 401 when the Bearer key
 *   is wrong (when the fake has a key).
 *
 * Each request takes the next queued script (or the default); every request is recorded with its
 * headers, parsed body and whether the client closed the connection.
 */

export interface RecordedOpenAiRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  /** The client went away before the response ended (an abort, a timeout). */
  closed: boolean;
  /** The response was streamed to its end. */
  completed: boolean;
}

/** One step of a scripted chat stream. */
export type ChatStep =
  /** A `delta.content` event (the first event also carries `role: "assistant"`). */
  | { text: string }
  /** A `delta.tool_calls` event: pass `id` and `name` on a call's first piece only. */
  | { toolCall: { index: number; id?: string; name?: string; arguments?: string } }
  /** Several calls' pieces in one event. */
  | { toolCalls: Array<{ index: number; id?: string; name?: string; arguments?: string }> }
  /** The event with `finish_reason` and an empty delta. */
  | { finish: 'stop' | 'tool_calls' | 'length' }
  /** `data: [DONE]`. */
  | { done: true }
  /** Raw text written to the stream as is (a malformed event, a comment). */
  | { raw: string }
  /** A mid-stream error event. */
  | { errorEvent: { message: string; type: string } }
  /** Pauses the stream until `release()` (or the server stops). */
  | { hold: true };

export interface ChatScript {
  /** An error answer instead of a stream. */
  status?: number;
  error?: { message: string; type: string; code: string | null };
  /** Hold the response (no headers, no byte) until `release()`. */
  holdBeforeHeaders?: boolean;
  steps?: ChatStep[];
  /** Write each event in two pieces split mid-line, to exercise the client's buffering. */
  splitEvents?: boolean;
  /** The body's first byte waits until this long after the request arrived, ms: time to first token. */
  firstTokenDelayMs?: number;
}

export interface SpeechScript {
  status?: number;
  error?: { message: string; type: string; code: string | null };
  holdBeforeHeaders?: boolean;
  /** The audio; default: a ramp of `samples` samples. */
  pcm?: Int16Array;
  samples?: number;
  /** Byte sizes of the body pieces (the rest in one); odd sizes split samples. */
  pieces?: number[];
  /** Hold after the first piece until `release()`. */
  holdAfterFirst?: boolean;
  /** Pause between pieces, so they tend to reach the client as separate reads. */
  pieceDelayMs?: number;
  /** The body's first byte waits until this long after the request arrived, ms: time to first audio. */
  firstByteDelayMs?: number;
}

export interface FakeOpenAi {
  /** `http://127.0.0.1:<port>/v1`: what `OPENAI_BASE_URL` holds. */
  baseUrl: string;
  apiKey: string | null;
  requests: RecordedOpenAiRequest[];
  /** Queues scripts for the next chat requests, in order. */
  chat(...scripts: ChatScript[]): void;
  /** Queues scripts for the next speech requests, in order. */
  speech(...scripts: SpeechScript[]): void;
  /** Lets every held response go on. */
  release(): void;
  stop(): void;
}

const MODEL = 'gpt-4o-mini-2024-07-18';

/** A ramp the tests can check sample by sample. */
export function rampPcm(samples: number): Int16Array {
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++) pcm[i] = ((i * 97) % 65536) - 32768;
  return pcm;
}

export interface FakeOpenAiOptions {
  apiKey?: string | null;
  /** What a chat request gets when no script is queued (default: a `Hello.` stream). */
  chatDefault?: ChatScript;
  /** What a speech request gets when no script is queued (default: a 2,400-sample ramp). */
  speechDefault?: SpeechScript;
}

export function startFakeOpenAi(opts: FakeOpenAiOptions = {}): FakeOpenAi {
  const apiKey = opts.apiKey === undefined ? 'sk-test-fake-openai-key' : opts.apiKey;
  const requests: RecordedOpenAiRequest[] = [];
  const chatScripts: ChatScript[] = [];
  const speechScripts: SpeechScript[] = [];
  let gate = Promise.withResolvers<void>();
  const held = () => gate.promise;

  const errorResponse = (status: number, error: { message: string; type: string; code: string | null }) =>
    Response.json(
      { error: { message: error.message, type: error.type, param: null, code: error.code } },
      { status },
    );

  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: MODEL,
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });

  const toolPiece = (p: { index: number; id?: string; name?: string; arguments?: string }) =>
    p.id !== undefined
      ? {
          index: p.index,
          id: p.id,
          type: 'function',
          function: { name: p.name ?? '', arguments: p.arguments ?? '' },
        }
      : { index: p.index, function: { arguments: p.arguments ?? '' } };

  /** The SSE text of one step, or a hold marker. */
  const render = (step: ChatStep, first: boolean): string | 'hold' => {
    const event = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
    if ('text' in step)
      return event(chunk(first ? { role: 'assistant', content: step.text } : { content: step.text }));
    if ('toolCall' in step) return event(chunk({ tool_calls: [toolPiece(step.toolCall)] }));
    if ('toolCalls' in step) return event(chunk({ tool_calls: step.toolCalls.map(toolPiece) }));
    if ('finish' in step) return event(chunk({}, step.finish));
    if ('done' in step) return 'data: [DONE]\n\n';
    if ('raw' in step) return step.raw;
    if ('errorEvent' in step) return event({ error: { ...step.errorEvent, param: null, code: null } });
    return 'hold';
  };

  /**
   * A body streamed from `parts` (strings or bytes; `'hold'` waits for `release()`), its first
   * byte not before `firstAt` (`performance.now()` ms).
   */
  const streamed = (
    record: RecordedOpenAiRequest,
    parts: Array<string | Uint8Array | 'hold'>,
    contentType: string,
    pieceDelayMs = 0,
    firstAt = 0,
  ): Response => {
    const encoder = new TextEncoder();
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (i === 0) {
          const waitMs = firstAt - performance.now();
          if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        }
        for (;;) {
          if (record.closed) return;
          if (i >= parts.length) {
            record.completed = true;
            controller.close();
            return;
          }
          const part = parts[i++]!;
          if (part === 'hold') {
            await held();
            continue;
          }
          if (pieceDelayMs > 0 && i > 1) await new Promise((r) => setTimeout(r, pieceDelayMs));
          controller.enqueue(typeof part === 'string' ? encoder.encode(part) : part);
          return;
        }
      },
      cancel() {
        record.closed = true;
      },
    });
    return new Response(body, { headers: { 'content-type': contentType } });
  };

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const arrivedAt = performance.now();
      const url = new URL(req.url);
      const raw = await req.text();
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      const record: RecordedOpenAiRequest = {
        method: req.method,
        path: url.pathname,
        headers,
        body,
        closed: false,
        completed: false,
      };
      requests.push(record);
      req.signal.addEventListener('abort', () => {
        record.closed = true;
      });

      const isChat = url.pathname === '/v1/chat/completions';
      const isSpeech = url.pathname === '/v1/audio/speech';
      if (req.method !== 'POST' || (!isChat && !isSpeech)) {
        return errorResponse(404, {
          message: 'Unknown request URL',
          type: 'invalid_request_error',
          code: 'unknown_url',
        });
      }
      if (apiKey !== null && headers.authorization !== `Bearer ${apiKey}`) {
        return errorResponse(401, {
          message: `Incorrect API key provided: ${maskKey(headers.authorization?.replace(/^Bearer /, '') ?? '')}.`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        });
      }
      if (body === undefined) {
        return errorResponse(400, {
          message: 'We could not parse the JSON body',
          type: 'invalid_request_error',
          code: null,
        });
      }

      if (isChat) {
        const script = chatScripts.shift() ??
          opts.chatDefault ?? {
            steps: [{ text: 'Hello.' }, { finish: 'stop' }, { done: true }],
          };
        if (script.holdBeforeHeaders) await held();
        if (script.status) return errorResponse(script.status, script.error ?? defaultError(script.status));
        const parts: Array<string | 'hold'> = [];
        let first = true;
        for (const step of script.steps ?? []) {
          const text = render(step, first && 'text' in step);
          if ('text' in step) first = false;
          if (text !== 'hold' && script.splitEvents && text.length > 8) {
            const cut = Math.floor(text.length / 2);
            parts.push(text.slice(0, cut), text.slice(cut));
          } else {
            parts.push(text);
          }
        }
        return streamed(
          record,
          parts,
          'text/event-stream; charset=utf-8',
          0,
          arrivedAt + (script.firstTokenDelayMs ?? 0),
        );
      }

      const script = speechScripts.shift() ?? opts.speechDefault ?? {};
      if (script.holdBeforeHeaders) await held();
      if (script.status) return errorResponse(script.status, script.error ?? defaultError(script.status));
      const pcm = script.pcm ?? rampPcm(script.samples ?? 2400);
      const bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
      const parts: Array<Uint8Array | 'hold'> = [];
      let at = 0;
      for (const size of script.pieces ?? [1001, 2000]) {
        if (at >= bytes.length) break;
        parts.push(bytes.slice(at, at + size));
        at += size;
        if (script.holdAfterFirst && parts.length === 1) parts.push('hold');
      }
      if (at < bytes.length) parts.push(bytes.slice(at));
      return streamed(
        record,
        parts,
        'application/octet-stream',
        script.pieceDelayMs,
        arrivedAt + (script.firstByteDelayMs ?? 0),
      );
    },
  });

  return {
    baseUrl: `http://127.0.0.1:${server.port}/v1`,
    apiKey,
    requests,
    chat: (...scripts) => chatScripts.push(...scripts),
    speech: (...scripts) => speechScripts.push(...scripts),
    release: () => {
      gate.resolve();
      gate = Promise.withResolvers<void>();
    },
    stop: () => {
      gate.resolve();
      server.stop(true);
    },
  };
}

/** OpenAI's way of echoing a wrong key: its start and end around stars. */
function maskKey(key: string): string {
  return key.length > 8 ? `${key.slice(0, 3)}${'*'.repeat(8)}${key.slice(-4)}` : '********';
}

function defaultError(status: number): { message: string; type: string; code: string | null } {
  if (status === 429)
    return { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500)
    return {
      message: 'The server had an error while processing your request.',
      type: 'server_error',
      code: null,
    };
  return { message: 'Invalid request', type: 'invalid_request_error', code: null };
}
