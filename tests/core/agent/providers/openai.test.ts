import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOpenAiChat,
  createOpenAiCompatibleChat,
  OpenAiChat,
} from '../../../../core/agent/providers/llm/openai.ts';
import {
  createOpenAiTts,
  OpenAiTts,
  registerOpenAi,
  toPcm,
} from '../../../../core/agent/providers/tts/openai.ts';
import {
  type AudioChunk,
  type ChatMessage,
  type LlmChunk,
  ProviderError,
  type ToolSpec,
} from '../../../../core/agent/providers/types.ts';
import { ProviderRegistry, UnavailableError } from '../../../../core/agent/registry.ts';
import { SseParser } from '../../../../core/wire/sse.ts';
import { type FakeOpenAi, rampPcm, startFakeOpenAi } from '../../../fakes/openai.ts';

/*
 * Fixtures (tests/fixtures/vendors/openai), copied from OpenAI's documentation examples:
 * - chat-chunk-role/content/finish.json: the streamed `chat.completion.chunk` example of
 *   https://platform.openai.com/docs/api-reference/chat-streaming/streaming
 * - chat-chunk-tool-call-start/arguments.json: the streamed tool-call deltas (first piece with
 *   id, type and name; later pieces with only `index` and `function.arguments`) of
 *   https://platform.openai.com/docs/guides/function-calling#streaming
 * - chat-request.json: the `get_weather` request with the assistant's `tool_calls` turn and the
 *   `tool` result (`tool_call_id`) of https://platform.openai.com/docs/guides/function-calling,
 *   with `stream: true` as https://platform.openai.com/docs/api-reference/chat/create documents
 * - error-401.json, error-429.json: the error body `{"error":{"message","type","param","code"}}`
 *   of https://platform.openai.com/docs/guides/error-codes (the 401's masked key as OpenAI
 *   echoes it)
 * - speech-request.json: the request example of
 *   https://platform.openai.com/docs/api-reference/audio/createSpeech with `response_format:
 *   "pcm"` (https://platform.openai.com/docs/guides/text-to-speech#supported-output-formats:
 *   raw 24 kHz 16-bit signed little-endian samples, no header)
 */
const FIXTURES = join(import.meta.dirname, '../../../fixtures/vendors/openai');
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));

/** Keys and value types, recursively (arrays by their first element): what must not drift. */
function shapeOf(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length > 0 ? [shapeOf(v[0])] : [];
  if (typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, shapeOf(x)]),
    );
  }
  return typeof v;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

/** Polls `cond` on the event loop until it holds (the test timeout bounds the wait). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

/** A port nothing listens on (a server started and stopped). */
function closedPort(): number {
  const s = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('') });
  const port = s.port!;
  s.stop(true);
  return port;
}

const user = (content: string): ChatMessage => ({ role: 'user', content });
const signal = () => new AbortController().signal;

let fake: FakeOpenAi;
beforeAll(() => {
  fake = startFakeOpenAi();
});
afterAll(() => fake.stop());

const chat = (extra: Partial<ConstructorParameters<typeof OpenAiChat>[0]> = {}) =>
  new OpenAiChat({ baseUrl: fake.baseUrl, apiKey: fake.apiKey!, ...extra });
const tts = (extra: Partial<ConstructorParameters<typeof OpenAiTts>[0]> = {}) =>
  new OpenAiTts({ baseUrl: fake.baseUrl, apiKey: fake.apiKey!, ...extra });
const last = () => fake.requests.at(-1)!;

describe('the fake against the vendor fixtures', () => {
  async function events(script: Parameters<FakeOpenAi['chat']>[0]): Promise<string[]> {
    fake.chat(script);
    const res = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('hi')], stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sse = new SseParser();
    return [...sse.push(new Uint8Array(await res.arrayBuffer())), ...sse.end()].map((e) => e.data);
  }

  it('streams chunks shaped like the documented chat.completion.chunk events', async () => {
    const out = await events({
      steps: [
        { text: 'Hello' },
        { text: ' there' },
        { toolCall: { index: 0, id: 'call_1', name: 'get_weather', arguments: '' } },
        { toolCall: { index: 0, arguments: '{"location":' } },
        { finish: 'stop' },
        { done: true },
      ],
    });
    expect(out).toHaveLength(6);
    const [role, content, start, args, finish, done] = out.map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
    expect(shapeOf(role)).toEqual(shapeOf(fixture('chat-chunk-role')));
    expect(shapeOf(content)).toEqual(shapeOf(fixture('chat-chunk-content')));
    expect(shapeOf(start)).toEqual(shapeOf(fixture('chat-chunk-tool-call-start')));
    expect(shapeOf(args)).toEqual(shapeOf(fixture('chat-chunk-tool-call-arguments')));
    expect(shapeOf(finish)).toEqual(shapeOf(fixture('chat-chunk-finish')));
    expect(done).toBe('[DONE]');
  });

  it('answers errors with the documented error body', async () => {
    const bad = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-wrong-key-123456', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(bad.status).toBe(401);
    expect(shapeOf(await bad.json())).toEqual(shapeOf(fixture('error-401')));

    fake.chat({ status: 429 });
    const limited = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(limited.status).toBe(429);
    expect(shapeOf(await limited.json())).toEqual(shapeOf(fixture('error-429')));
  });
});

describe('OpenAiChat', () => {
  it('sends the documented request: path, Bearer key, model, stream, messages', async () => {
    await collect(
      chat().complete([{ role: 'system', content: 'Be brief.' }, user('Hi')], { signal: signal() }),
    );
    const req = last();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      stream: true,
    });
  });

  it('sends tool calls, tool results and tools exactly as the documented request', async () => {
    const doc = fixture('chat-request') as {
      messages: Array<{ content: string }>;
      tools: Array<{ function: ToolSpec }>;
    };
    const messages: ChatMessage[] = [
      { role: 'system', content: doc.messages[0]!.content },
      user(doc.messages[1]!.content),
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_12345xyz', name: 'get_weather', arguments: '{"location":"Paris, France"}' }],
      },
      { role: 'tool', content: '14 degrees', toolCallId: 'call_12345xyz' },
    ];
    const tools: ToolSpec[] = doc.tools.map((t) => t.function);
    await collect(chat().complete(messages, { tools, signal: signal() }));
    expect(last().body).toEqual(doc);
    expect(shapeOf(last().body)).toEqual(shapeOf(doc));
  });

  it('yields text deltas as they arrive, before the stream ends', async () => {
    fake.chat({
      steps: [{ text: 'Hel' }, { hold: true }, { text: 'lo.' }, { finish: 'stop' }, { done: true }],
    });
    const it = chat()
      .complete([user('Hi')], { signal: signal() })
      [Symbol.asyncIterator]();
    // The first piece comes while the fake still holds the rest.
    expect((await it.next()).value).toEqual({ kind: 'text', text: 'Hel' });
    expect(last().completed).toBe(false);
    fake.release();
    expect((await it.next()).value).toEqual({ kind: 'text', text: 'lo.' });
    expect((await it.next()).done).toBe(true);
  });

  it('reads events cut anywhere across body pieces', async () => {
    fake.chat({
      splitEvents: true,
      steps: [{ text: 'One, ' }, { text: 'two.' }, { finish: 'stop' }, { done: true }],
    });
    const out = await collect(chat().complete([user('Count')], { signal: signal() }));
    expect(out).toEqual([
      { kind: 'text', text: 'One, ' },
      { kind: 'text', text: 'two.' },
    ]);
  });

  it('assembles parallel tool calls from interleaved pieces and yields them whole at finish_reason', async () => {
    fake.chat({
      steps: [
        { text: 'Let me check.' },
        { toolCall: { index: 0, id: 'call_a', name: 'get_weather', arguments: '' } },
        { toolCall: { index: 1, id: 'call_b', name: 'get_time', arguments: '{"tz"' } },
        { toolCall: { index: 0, arguments: '{"location":' } },
        {
          toolCalls: [
            { index: 1, arguments: ':"CET"}' },
            { index: 0, arguments: '"Paris"}' },
          ],
        },
        { finish: 'tool_calls' },
        { hold: true },
        { done: true },
      ],
    });
    const out: LlmChunk[] = [];
    for await (const c of chat().complete([user('Weather and time?')], { signal: signal() })) {
      out.push(c);
      // Both calls are out at finish_reason, while [DONE] is still held back.
      if (out.length === 3) fake.release();
    }
    expect(out).toEqual([
      { kind: 'text', text: 'Let me check.' },
      { kind: 'tool_call', call: { id: 'call_a', name: 'get_weather', arguments: '{"location":"Paris"}' } },
      { kind: 'tool_call', call: { id: 'call_b', name: 'get_time', arguments: '{"tz":"CET"}' } },
    ]);
  });

  it('yields a tool call at [DONE] when no finish_reason came', async () => {
    fake.chat({
      steps: [{ toolCall: { index: 0, id: 'call_x', name: 'hang_up', arguments: '{}' } }, { done: true }],
    });
    const out = await collect(chat().complete([user('Bye')], { signal: signal() }));
    expect(out).toEqual([{ kind: 'tool_call', call: { id: 'call_x', name: 'hang_up', arguments: '{}' } }]);
  });

  it('takes whole tool calls without an index (servers that omit it)', async () => {
    const event = (delta: unknown) =>
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'llama3.2', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    fake.chat({
      steps: [
        {
          raw: event({
            role: 'assistant',
            content: '',
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"x":1}' } },
              { id: 'call_2', type: 'function', function: { name: 'hang_up', arguments: '{}' } },
            ],
          }),
        },
        { finish: 'tool_calls' },
        { done: true },
      ],
    });
    expect(await collect(chat().complete([user('Go')], { signal: signal() }))).toEqual([
      { kind: 'tool_call', call: { id: 'call_1', name: 'lookup', arguments: '{"x":1}' } },
      { kind: 'tool_call', call: { id: 'call_2', name: 'hang_up', arguments: '{}' } },
    ]);
  });

  it('refuses an unreadable event', async () => {
    fake.chat({ steps: [{ text: 'Hi' }, { raw: 'data: {not json\n\n' }, { done: true }] });
    const err = await failure(collect(chat().complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe('bad_response');
  });

  it('passes temperature, the token cap and the model from the agent choice', async () => {
    const env = { OPENAI_API_KEY: fake.apiKey!, OPENAI_BASE_URL: fake.baseUrl };
    const choice = {
      provider: 'openai',
      model: 'gpt-4.1-mini',
      options: { temperature: 0.2, maxTokens: 150 },
    };
    await collect(createOpenAiChat(choice, env).complete([user('Hi')], { signal: signal() }));
    expect(last().body).toMatchObject({
      model: 'gpt-4.1-mini',
      temperature: 0.2,
      max_completion_tokens: 150,
    });

    const compat = createOpenAiCompatibleChat(
      { provider: 'openai-compatible', model: 'llama3.2', options: { baseUrl: fake.baseUrl, maxTokens: 99 } },
      {},
    );
    const noKey = startFakeOpenAi({ apiKey: null });
    try {
      const local = createOpenAiCompatibleChat(
        {
          provider: 'openai-compatible',
          model: 'llama3.2',
          options: { baseUrl: noKey.baseUrl, maxTokens: 99 },
        },
        {},
      );
      expect(await collect(local.complete([user('Hi')], { signal: signal() }))).toEqual([
        { kind: 'text', text: 'Hello.' },
      ]);
      expect(noKey.requests[0]!.body).toMatchObject({ model: 'llama3.2', max_tokens: 99 });
    } finally {
      noKey.stop();
    }
    // With a key-checking server and no key, the refusal is reported as such.
    const refused = await failure(collect(compat.complete([user('Hi')], { signal: signal() })));
    expect(refused.code).toBe('http_401');
  });

  it('never sends the deployment key to an agent-given base URL', async () => {
    const other = startFakeOpenAi({ apiKey: null });
    try {
      const env = { OPENAI_API_KEY: 'sk-deployment-secret-key', OPENAI_BASE_URL: fake.baseUrl };
      const viaAgent = createOpenAiCompatibleChat(
        { provider: 'openai-compatible', options: { baseUrl: other.baseUrl } },
        env,
      );
      await collect(viaAgent.complete([user('Hi')], { signal: signal() }));
      expect(other.requests[0]!.headers.authorization).toBeUndefined();

      const withOwnKey = createOpenAiCompatibleChat(
        { provider: 'openai-compatible', options: { baseUrl: other.baseUrl, apiKey: 'agent-own-key' } },
        env,
      );
      await collect(withOwnKey.complete([user('Hi')], { signal: signal() }));
      expect(other.requests[1]!.headers.authorization).toBe('Bearer agent-own-key');

      // Without an agent base URL it is the deployment's OpenAI endpoint and key.
      const deployment = createOpenAiCompatibleChat(
        { provider: 'openai-compatible' },
        { OPENAI_API_KEY: fake.apiKey!, OPENAI_BASE_URL: fake.baseUrl },
      );
      await collect(deployment.complete([user('Hi')], { signal: signal() }));
      expect(last().headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    } finally {
      other.stop();
    }
  });

  it('ends quietly on abort mid-stream and closes the connection', async () => {
    fake.chat({
      steps: [{ text: 'Hello' }, { hold: true }, { text: ' never' }, { finish: 'stop' }, { done: true }],
    });
    const ac = new AbortController();
    const out: LlmChunk[] = [];
    for await (const c of chat().complete([user('Hi')], { signal: ac.signal })) {
      out.push(c);
      ac.abort();
    }
    expect(out).toEqual([{ kind: 'text', text: 'Hello' }]);
    const req = last();
    // The fake notices the closed connection while it still holds the rest of the stream.
    await until(() => req.closed);
    fake.release();
    expect(req.completed).toBe(false);
  });

  it('ends quietly on abort while waiting for the first byte', async () => {
    fake.chat({ holdBeforeHeaders: true });
    const ac = new AbortController();
    const run = collect(chat().complete([user('Hi')], { signal: ac.signal }));
    const before = fake.requests.length;
    await until(() => fake.requests.length > before);
    ac.abort();
    expect(await run).toEqual([]);
    fake.release();
  });

  it('stops the request when the consumer stops iterating', async () => {
    fake.chat({ steps: [{ text: 'a' }, { hold: true }, { text: 'b' }, { finish: 'stop' }, { done: true }] });
    for await (const _ of chat().complete([user('Hi')], { signal: signal() })) break;
    const req = last();
    // The fake notices the closed connection while it still holds the rest of the stream.
    await until(() => req.closed);
    fake.release();
    expect(req.completed).toBe(false);
  });

  it.each([
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [408, true],
    [429, true],
    [500, true],
    [503, true],
  ])('HTTP %i is a ProviderError http_<status>, retryable: %s', async (status, retryable) => {
    fake.chat({ status });
    const err = await failure(collect(chat().complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe(`http_${status}`);
    expect(err.retryable).toBe(retryable);
    expect(err.provider).toBe('openai');
  });

  it('says a refused key was refused, without echoing any part of it', async () => {
    const key = 'sk-proj-this-is-not-the-right-key-0123';
    const err = await failure(
      collect(
        new OpenAiChat({ baseUrl: fake.baseUrl, apiKey: key }).complete([user('Hi')], { signal: signal() }),
      ),
    );
    expect(err.code).toBe('http_401');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/API key was refused/);
    expect(err.message).not.toMatch(/sk-|0123/);
  });

  it('does not retry a spent quota (429 insufficient_quota)', async () => {
    fake.chat({
      status: 429,
      error: {
        message: 'You exceeded your current quota',
        type: 'insufficient_quota',
        code: 'insufficient_quota',
      },
    });
    const err = await failure(collect(chat().complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe('http_429');
    expect(err.retryable).toBe(false);
  });

  it('reports an unreachable server as retryable connect_failed naming its URL', async () => {
    const port = closedPort();
    const model = createOpenAiCompatibleChat(
      { provider: 'openai-compatible', options: { baseUrl: `http://127.0.0.1:${port}/v1` } },
      {},
    );
    const err = await failure(collect(model.complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe('connect_failed');
    expect(err.retryable).toBe(true);
    expect(err.provider).toBe('openai-compatible');
    expect(err.message).toContain(`http://127.0.0.1:${port}/v1/chat/completions`);
  });

  it('times out waiting for the first byte (retryable timeout)', async () => {
    fake.chat({ holdBeforeHeaders: true });
    const err = await failure(
      collect(chat({ firstByteTimeoutMs: 50 }).complete([user('Hi')], { signal: signal() })),
    );
    fake.release();
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
  });

  it('times out when a started stream stalls, after yielding what came', async () => {
    fake.chat({ steps: [{ text: 'Hi' }, { hold: true }, { finish: 'stop' }, { done: true }] });
    const out: LlmChunk[] = [];
    const err = await failure(
      (async () => {
        for await (const c of chat({ idleTimeoutMs: 50 }).complete([user('Hi')], { signal: signal() }))
          out.push(c);
      })(),
    );
    fake.release();
    expect(out).toEqual([{ kind: 'text', text: 'Hi' }]);
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
  });

  it('treats a stream cut before its end as a retryable failure', async () => {
    fake.chat({ steps: [{ text: 'Half a' }] });
    const err = await failure(collect(chat().complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe('incomplete');
    expect(err.retryable).toBe(true);
  });

  it('reports an error event sent mid-stream', async () => {
    fake.chat({
      steps: [{ text: 'Hi' }, { errorEvent: { message: 'The server overloaded', type: 'server_error' } }],
    });
    const err = await failure(collect(chat().complete([user('Hi')], { signal: signal() })));
    expect(err.code).toBe('stream_error');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('overloaded');
  });

  it('refuses a tool message without its call id before sending anything', async () => {
    const before = fake.requests.length;
    const err = await failure(
      collect(chat().complete([user('Hi'), { role: 'tool', content: 'x' }], { signal: signal() })),
    );
    expect(err.code).toBe('bad_request');
    expect(fake.requests.length).toBe(before);
  });
});

describe('OpenAiTts', () => {
  it('sends the documented request per sentence, with the Bearer key', async () => {
    await collect(tts({ voice: 'coral' }).synthesize('Hello there. How are you?', signal()));
    const [a, b] = fake.requests.slice(-2);
    for (const req of [a!, b!]) {
      expect(req.path).toBe('/v1/audio/speech');
      expect(req.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
      expect(shapeOf(req.body)).toEqual(shapeOf(fixture('speech-request')));
    }
    expect(a!.body).toEqual({
      model: 'gpt-4o-mini-tts',
      input: 'Hello there.',
      voice: 'coral',
      response_format: 'pcm',
    });
    expect(b!.body).toMatchObject({ input: 'How are you?' });
  });

  it('streams the PCM in pieces, keeping odd bytes for the next piece, text on each first chunk', async () => {
    const first = rampPcm(3001);
    const second = rampPcm(1200).map((s) => -s);
    fake.speech(
      { pcm: first, pieces: [1, 2, 999, 3000], pieceDelayMs: 2 },
      { pcm: second, pieces: [7, 1001], pieceDelayMs: 2 },
    );
    const chunks = await collect(tts().synthesize('One sentence. Another one.', signal()));
    expect(chunks.every((c) => c.sampleRate === 24000)).toBe(true);
    const texts = chunks.map((c) => c.text);
    expect(texts.filter((t) => t !== undefined)).toEqual(['One sentence.', 'Another one.']);
    // How many chunks each sentence makes depends on how TCP delivers the pieces (the test
    // below pins streaming down with a held body); the samples must come out exact either way.
    const secondStart = texts.indexOf('Another one.');
    const join = (cs: AudioChunk[]) => Int16Array.from(cs.flatMap((c) => [...c.pcm]));
    expect(join(chunks.slice(0, secondStart))).toEqual(first);
    expect(join(chunks.slice(secondStart))).toEqual(second);
  });

  it('yields audio before the sentence body ends', async () => {
    fake.speech({ samples: 4800, pieces: [960], holdAfterFirst: true });
    const it = tts().synthesize('Hold on.', signal())[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value.pcm.length).toBe(480);
    expect(first.value.text).toBe('Hold on.');
    expect(last().completed).toBe(false);
    fake.release();
    let rest = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) rest += r.value.pcm.length;
    expect(rest).toBe(4800 - 480);
  });

  it('speaks a streamed text as its sentences complete', async () => {
    async function* pieces() {
      yield 'Good ';
      yield 'morning. How';
      yield ' can I help?';
    }
    const chunks = await collect(tts().synthesize(pieces(), signal()));
    expect(chunks.map((c) => c.text).filter(Boolean)).toEqual(['Good morning.', 'How can I help?']);
  });

  it('stops quietly on abort, closing the request and starting no other sentence', async () => {
    fake.speech({ samples: 4800, pieces: [960], holdAfterFirst: true });
    const ac = new AbortController();
    const before = fake.requests.length;
    const out: AudioChunk[] = [];
    for await (const c of tts().synthesize('First sentence. Second sentence.', ac.signal)) {
      out.push(c);
      ac.abort();
    }
    expect(out).toHaveLength(1);
    const req = fake.requests[before]!;
    await until(() => req.closed);
    fake.release();
    expect(fake.requests.length).toBe(before + 1);
  });

  it('reports a refused key without the key, and 5xx as retryable', async () => {
    const key = 'sk-wrong-tts-key-98765';
    const err = await failure(
      collect(new OpenAiTts({ baseUrl: fake.baseUrl, apiKey: key }).synthesize('Hi.', signal())),
    );
    expect(err.code).toBe('http_401');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toMatch(/sk-|98765/);

    fake.speech({ status: 503 });
    const down = await failure(collect(tts().synthesize('Hi.', signal())));
    expect(down.code).toBe('http_503');
    expect(down.retryable).toBe(true);
  });

  it('times out waiting for the first byte', async () => {
    fake.speech({ holdBeforeHeaders: true });
    const err = await failure(collect(tts({ firstByteTimeoutMs: 50 }).synthesize('Hi.', signal())));
    fake.release();
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
  });

  it('takes the agent voice and the default model from the factory', async () => {
    const env = { OPENAI_API_KEY: fake.apiKey!, OPENAI_BASE_URL: fake.baseUrl };
    const voice = createOpenAiTts({ provider: 'openai', options: { speed: 1.2 } }, 'nova', env);
    await collect(voice.synthesize('Hi.', signal()));
    expect(last().body).toEqual({
      model: 'gpt-4o-mini-tts',
      input: 'Hi.',
      voice: 'nova',
      response_format: 'pcm',
      speed: 1.2,
    });
    expect(createOpenAiTts(undefined, undefined, env).voice).toBe('alloy');
  });

  it('joins samples split across pieces (little-endian)', () => {
    const [a, carry] = toPcm(null, new Uint8Array([0x01, 0x02, 0xff]));
    expect([...a]).toEqual([0x0201]);
    const [b, none] = toPcm(carry, new Uint8Array([0xff]));
    expect([...b]).toEqual([-1]);
    expect(none).toBeNull();
  });
});

describe('registerOpenAi', () => {
  const registry = registerOpenAi(new ProviderRegistry());

  it('needs OPENAI_API_KEY for openai, names it when missing', () => {
    expect(() => registry.require('llm', 'openai', {})).toThrow(UnavailableError);
    expect(() => registry.require('llm', 'openai', {})).toThrow('llm openai: OPENAI_API_KEY is not set');
    expect(() => registry.require('tts', 'openai', {})).toThrow('tts openai: OPENAI_API_KEY is not set');
    expect(registry.require('llm', 'openai', { OPENAI_API_KEY: 'k' })).toBeTypeOf('function');
  });

  it('always offers openai-compatible', () => {
    const create = registry.require('llm', 'openai-compatible', {});
    const model = create(
      { provider: 'openai-compatible', options: { baseUrl: 'http://127.0.0.1:11434/v1' } },
      {},
    );
    expect(model.name).toBe('openai-compatible');
  });

  it('builds working providers from the env', async () => {
    const env = { OPENAI_API_KEY: fake.apiKey!, OPENAI_BASE_URL: fake.baseUrl };
    const llm = registry.require('llm', 'openai', env)({ provider: 'openai' }, env);
    expect(await collect(llm.complete([user('Hi')], { signal: signal() }))).toEqual([
      { kind: 'text', text: 'Hello.' },
    ]);
    const voice = registry.require('tts', 'openai', env)({ provider: 'openai' }, undefined, env);
    expect(voice.sampleRate).toBe(24000);
    expect((await collect(voice.synthesize('Hi.', signal()))).length).toBeGreaterThan(0);
  });

  it('refuses an option of the wrong type, naming it', () => {
    const create = registry.require('llm', 'openai-compatible', {});
    expect(() => create({ provider: 'openai-compatible', options: { temperature: 'hot' } }, {})).toThrow(
      'options.temperature must be a number',
    );
    expect(() => create({ provider: 'openai-compatible', options: { baseUrl: 'file:///etc' } }, {})).toThrow(
      'base URL must be http or https',
    );
  });
});
