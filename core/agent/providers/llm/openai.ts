import { SseParser } from '../../../wire/sse.ts';
import type { ProviderChoice } from '../../config.ts';
import type { ProviderEnv } from '../../registry.ts';
import {
  type ChatMessage,
  type LanguageModel,
  type LlmChunk,
  ProviderError,
  type ToolSpec,
} from '../types.ts';

/**
 * OpenAI's Chat Completions API, streamed (`POST {base}/chat/completions`, `stream: true`,
 * server-sent events), for OpenAI itself and for any server speaking the same wire format
 * (Ollama, llama.cpp's server, vLLM, …). Plain `fetch` and a small SSE parser: nothing to
 * install, and the base URL points anywhere (a local fake in tests).
 */

/** Where OpenAI's API lives when `OPENAI_BASE_URL` is not set (as in the `openai` SDK). */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';
export const DEFAULT_CHAT_MODEL = 'gpt-4o-mini';
/** Longest wait for the connection, the response headers and the first bytes of the body. */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** Longest silence between two pieces of a body already streaming. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- HTTP shared with the TTS adapter

/** One streamed POST to an OpenAI-style endpoint. */
export interface StreamRequest {
  /** The provider's name, for errors. */
  provider: string;
  url: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  body: unknown;
  /** Aborting ends the body stream quietly and closes the connection. */
  signal: AbortSignal;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
}

/**
 * POSTs a JSON body and yields the response body's bytes as they arrive. Ends quietly (no throw)
 * when `signal` aborts; stopping the iteration closes the connection. Failures are
 * `ProviderError`s: `connect_failed` and `timeout` (retryable), `http_<status>` (retryable for
 * 408, 429 and 5xx), `stream_broken` (retryable).
 */
export async function* streamPost(req: StreamRequest): AsyncGenerator<Uint8Array> {
  const { provider, signal } = req;
  if (signal.aborted) return;
  const ctl = new AbortController();
  const onAbort = () => ctl.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, ms);
  };
  const timeout = (phase: string) =>
    new ProviderError(
      `${provider}: no ${phase} from ${displayUrl(req.url)} within ${phase === 'response' ? req.firstByteTimeoutMs : req.idleTimeoutMs} ms`,
      provider,
      true,
      'timeout',
    );
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (req.apiKey) headers.authorization = `Bearer ${req.apiKey}`;
  try {
    arm(req.firstByteTimeoutMs);
    let res: Response;
    try {
      res = await fetch(req.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(req.body),
        signal: ctl.signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      if (timedOut) throw timeout('response');
      throw new ProviderError(
        `${provider}: cannot reach ${displayUrl(req.url)} (${errorCode(err)})`,
        provider,
        true,
        'connect_failed',
      );
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      if (signal.aborted) return;
      throw httpError(provider, res.status, text, req.apiKey);
    }
    if (!res.body)
      throw new ProviderError(`${provider}: empty response body`, provider, true, 'bad_response');
    const reader = res.body.getReader();
    let first = true;
    try {
      for (;;) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch {
          if (signal.aborted) return;
          if (timedOut) throw timeout(first ? 'response' : 'data');
          throw new ProviderError(`${provider}: the response stream broke`, provider, true, 'stream_broken');
        }
        // Under Bun an aborted body may end as if complete.
        if (signal.aborted) return;
        if (timedOut) throw timeout(first ? 'response' : 'data');
        if (next.done) return;
        first = false;
        // Only the wait for the vendor is timed, not the consumer's work between reads.
        clearTimeout(timer);
        yield next.value;
        arm(req.idleTimeoutMs);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    ctl.abort();
  }
}

/** Statuses where the same request may succeed later. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * The `ProviderError` for an HTTP error response (`{"error":{"message","type","code"}}` from
 * OpenAI; anything from other servers). A refused key gets our own message, never the vendor's
 * (OpenAI's echoes part of the key); other vendor messages are kept, short, with key-like text
 * removed.
 */
export function httpError(provider: string, status: number, body: string, apiKey?: string): ProviderError {
  let vendorMessage = '';
  let vendorCode = '';
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; code?: unknown; type?: unknown } };
    if (typeof parsed.error?.message === 'string') vendorMessage = parsed.error.message;
    if (typeof parsed.error?.code === 'string') vendorCode = parsed.error.code;
    else if (typeof parsed.error?.type === 'string') vendorCode = parsed.error.type;
  } catch {
    vendorMessage = body;
  }
  const code = `http_${status}`;
  if (status === 401 || status === 403) {
    return new ProviderError(
      `${provider}: the API key was refused (HTTP ${status}${vendorCode ? ` ${scrub(vendorCode, apiKey)}` : ''})`,
      provider,
      false,
      code,
    );
  }
  // A spent quota answers 429 too, and waiting does not refill it.
  const retryable = retryableStatus(status) && vendorCode !== 'insufficient_quota';
  const detail = scrub(vendorMessage, apiKey);
  return new ProviderError(
    `${provider}: HTTP ${status}${detail ? `: ${detail}` : ''}`,
    provider,
    retryable,
    code,
  );
}

/** Vendor text made safe for an error message: no key, no key-like token, short. */
function scrub(text: string, apiKey?: string): string {
  let out = text;
  if (apiKey) out = out.split(apiKey).join('[redacted]');
  out = out
    .replace(/\bsk-[A-Za-z0-9_*.-]{3,}/g, 'sk-[redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  return out.length > 200 ? `${out.slice(0, 200)}…` : out;
}

/** A URL for messages: no credentials, no query. */
function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

/** `base` without trailing slashes, checked to be an http(s) URL; `path` appended. */
export function endpoint(provider: string, base: string, path: string): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new ProviderError(`${provider}: base URL is not a URL`, provider, false, 'bad_option');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ProviderError(`${provider}: base URL must be http or https`, provider, false, 'bad_option');
  }
  return `${base.replace(/\/+$/, '')}${path}`;
}

/** An option of the agent's provider choice with the type it must have, or a named error. */
export function option<T extends 'string' | 'number'>(
  provider: string,
  choice: ProviderChoice | undefined,
  key: string,
  type: T,
): (T extends 'string' ? string : number) | undefined {
  const v = choice?.options?.[key];
  if (v === undefined) return undefined;
  if (typeof v !== type) {
    throw new ProviderError(`${provider}: options.${key} must be a ${type}`, provider, false, 'bad_option');
  }
  return v as T extends 'string' ? string : number;
}

// ---------------------------------------------------------------- the language model

export interface OpenAiChatOptions {
  /** `openai` or `openai-compatible`: the name errors carry. */
  name?: string;
  /** Without `/chat/completions`; default `https://api.openai.com/v1`. */
  baseUrl?: string;
  /** Sent as a Bearer token when set (local servers need none). */
  apiKey?: string;
  model?: string;
  temperature?: number;
  /** Cap on the reply's tokens. */
  maxTokens?: number;
  /**
   * The request field carrying `maxTokens`: OpenAI's current `max_completion_tokens` (its
   * reasoning models refuse `max_tokens`), or `max_tokens`, which compatible servers know.
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** One tool call being assembled from its streamed pieces. */
interface PartialCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * A streaming chat model over OpenAI's Chat Completions wire format. Yields text deltas as they
 * arrive and each tool call once its arguments are complete (at the choice's `finish_reason`, or
 * at `[DONE]`); parallel calls are told apart by their `index` and come out in index order.
 */
export class OpenAiChat implements LanguageModel {
  readonly name: string;
  readonly model: string;
  private readonly url: string;
  private readonly opts: OpenAiChatOptions;

  constructor(opts: OpenAiChatOptions = {}) {
    this.name = opts.name ?? 'openai';
    this.model = opts.model ?? DEFAULT_CHAT_MODEL;
    this.url = endpoint(this.name, opts.baseUrl ?? OPENAI_BASE_URL, '/chat/completions');
    this.opts = opts;
  }

  /** The JSON body of one completion request. */
  requestBody(messages: ChatMessage[], tools?: ToolSpec[]): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      messages: messages.map((m) => toWire(this.name, m)),
      stream: true,
    };
    if (tools && tools.length > 0) {
      body.tools = tools.map((t) => ({
        type: 'function',
        function: { name: t.name, description: t.description, parameters: t.parameters },
      }));
    }
    if (this.opts.temperature !== undefined) body.temperature = this.opts.temperature;
    if (this.opts.maxTokens !== undefined)
      body[this.opts.maxTokensField ?? 'max_tokens'] = this.opts.maxTokens;
    return body;
  }

  async *complete(
    messages: ChatMessage[],
    opts: { tools?: ToolSpec[]; signal: AbortSignal },
  ): AsyncGenerator<LlmChunk> {
    const { signal } = opts;
    const body = this.requestBody(messages, opts.tools);
    const calls = new Map<number, PartialCall>();
    const sse = new SseParser();
    let finished = false;
    let done = false;
    const provider = this.name;

    function* completedCalls(): Generator<LlmChunk> {
      const ordered = [...calls.entries()].sort(([a], [b]) => a - b);
      calls.clear();
      for (const [, c] of ordered) yield { kind: 'tool_call', call: { ...c } };
    }

    /**
     * Where a piece without `index` belongs (some servers omit it and send calls whole): the call
     * with its id, else a new call when it has an id, else the latest call.
     */
    const indexWithout = (id: string | undefined): number => {
      const indexes = [...calls.keys()];
      const latest = indexes.length > 0 ? Math.max(...indexes) : -1;
      if (!id) return Math.max(latest, 0);
      for (const [i, c] of calls) if (c.id === id) return i;
      return latest + 1;
    };

    /** Handles one event; returns the chunks it completes. */
    const handle = (data: string): LlmChunk[] => {
      if (data === '[DONE]') {
        done = true;
        return [...completedCalls()];
      }
      let event: StreamEvent;
      try {
        event = JSON.parse(data) as StreamEvent;
      } catch {
        throw new ProviderError(`${provider}: unreadable stream event`, provider, true, 'bad_response');
      }
      if (event.error) {
        // Some servers report a failure mid-stream as an event rather than a status.
        const e = event.error;
        throw new ProviderError(
          `${provider}: stream error${typeof e.message === 'string' ? `: ${scrub(e.message, this.opts.apiKey)}` : ''}`,
          provider,
          e.type === 'server_error',
          'stream_error',
        );
      }
      const choice = event.choices?.[0];
      // A usage-only event (`stream_options.include_usage`) has no choice.
      if (!choice) return [];
      const out: LlmChunk[] = [];
      const delta = choice.delta ?? {};
      if (typeof delta.content === 'string' && delta.content.length > 0) {
        out.push({ kind: 'text', text: delta.content });
      }
      for (const piece of delta.tool_calls ?? []) {
        const index = typeof piece.index === 'number' ? piece.index : indexWithout(piece.id);
        let call = calls.get(index);
        if (!call) {
          call = { id: piece.id || `call_${index}`, name: '', arguments: '' };
          calls.set(index, call);
        }
        if (piece.id) call.id = piece.id;
        if (piece.function?.name) call.name += piece.function.name;
        if (piece.function?.arguments) call.arguments += piece.function.arguments;
      }
      if (choice.finish_reason) {
        finished = true;
        out.push(...completedCalls());
      }
      return out;
    };

    for await (const bytes of streamPost({
      provider,
      url: this.url,
      apiKey: this.opts.apiKey,
      body,
      signal,
      firstByteTimeoutMs: this.opts.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    })) {
      for (const { data } of sse.push(bytes)) {
        for (const chunk of handle(data)) {
          if (signal.aborted) return;
          yield chunk;
        }
        if (done) break;
      }
      if (done) break;
    }
    if (signal.aborted) return;
    if (!done) {
      for (const { data } of sse.end()) for (const chunk of handle(data)) yield chunk;
    }
    if (!done && !finished) {
      throw new ProviderError(
        `${provider}: the stream ended before the reply did`,
        provider,
        true,
        'incomplete',
      );
    }
    yield* completedCalls();
  }
}

/** The parts of a `chat.completion.chunk` event this adapter reads. */
interface StreamEvent {
  choices?: Array<{
    delta?: {
      content?: string | null;
      tool_calls?: Array<{
        index?: number;
        id?: string;
        type?: string;
        function?: { name?: string; arguments?: string };
      }>;
    };
    finish_reason?: string | null;
  }>;
  error?: { message?: unknown; type?: unknown; code?: unknown };
}

/** Our message → OpenAI's (`tool_calls` on assistant turns, `tool_call_id` on tool results). */
function toWire(provider: string, m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'assistant': {
      if (!m.toolCalls?.length) return { role: 'assistant', content: m.content };
      return {
        role: 'assistant',
        content: m.content === '' ? null : m.content,
        tool_calls: m.toolCalls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.arguments },
        })),
      };
    }
    case 'tool':
      if (!m.toolCallId) {
        throw new ProviderError(
          `${provider}: a tool message has no toolCallId`,
          provider,
          false,
          'bad_request',
        );
      }
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
    default:
      return { role: m.role, content: m.content };
  }
}

// ---------------------------------------------------------------- factories

/** The chat-model options an agent's `llm` choice may carry, typed. */
function chatOptionsOf(name: string, choice: ProviderChoice | undefined): OpenAiChatOptions {
  return {
    name,
    model: choice?.model || undefined,
    temperature: option(name, choice, 'temperature', 'number'),
    maxTokens: option(name, choice, 'maxTokens', 'number'),
    firstByteTimeoutMs: option(name, choice, 'timeoutMs', 'number'),
    idleTimeoutMs: option(name, choice, 'idleTimeoutMs', 'number'),
  };
}

/**
 * `llm: {provider: 'openai'}`: OpenAI itself, at `OPENAI_BASE_URL` (default
 * `https://api.openai.com/v1`) with `OPENAI_API_KEY`. Options: `temperature`, `maxTokens`,
 * `timeoutMs` (connect and first byte, default 10 s), `idleTimeoutMs` (between pieces, 30 s).
 */
export function createOpenAiChat(choice: ProviderChoice | undefined, env: ProviderEnv): OpenAiChat {
  const key = env.OPENAI_API_KEY;
  if (!key) throw new ProviderError('openai: OPENAI_API_KEY is not set', 'openai', false, 'missing_key');
  return new OpenAiChat({
    ...chatOptionsOf('openai', choice),
    baseUrl: env.OPENAI_BASE_URL || OPENAI_BASE_URL,
    apiKey: key,
    maxTokensField: 'max_completion_tokens',
  });
}

/**
 * `llm: {provider: 'openai-compatible', options: {baseUrl}}`: any server speaking the Chat
 * Completions wire format (Ollama `http://host:11434/v1`, llama.cpp, vLLM). With
 * `options.baseUrl` the request goes there with `options.apiKey` if the agent gives one, and
 * never with the deployment's key; without it, to `OPENAI_BASE_URL` with `OPENAI_API_KEY`.
 * Always reported available (availability sees only the env, not the agent's options): an
 * unreachable server fails at call time with a retryable `connect_failed` naming the URL.
 */
export function createOpenAiCompatibleChat(choice: ProviderChoice | undefined, env: ProviderEnv): OpenAiChat {
  const name = 'openai-compatible';
  const baseUrl = option(name, choice, 'baseUrl', 'string');
  const agentKey = option(name, choice, 'apiKey', 'string');
  return new OpenAiChat({
    ...chatOptionsOf(name, choice),
    baseUrl: baseUrl || env.OPENAI_BASE_URL || OPENAI_BASE_URL,
    apiKey: baseUrl ? agentKey : agentKey || env.OPENAI_API_KEY,
    maxTokensField: 'max_tokens',
  });
}
