import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CallInfo } from '../../../core/agent/agent.ts';
import type { BrainOutput } from '../../../core/agent/brains/brain.ts';
import { LlmBrain } from '../../../core/agent/brains/llm.ts';
import { parseAgentRecord } from '../../../core/agent/config.ts';
import { ResilientLanguageModel, resetBreakers } from '../../../core/agent/providers/llm/resilient.ts';
import {
  type ChatMessage,
  type LanguageModel,
  type LlmChunk,
  ProviderError,
} from '../../../core/agent/providers/types.ts';
import { ToolRunner } from '../../../core/agent/tools.ts';
import { verifySignature } from '../../../core/auth/standard-webhooks.ts';

const CALL: CallInfo = {
  callId: 'cal_1',
  agentId: 'agt_1',
  direction: 'inbound',
  from: '+14155550100',
  to: '+14155550123',
  provider: 'twilio',
  params: {},
  variables: { name: 'Ada' },
};
const SECRET = 'whsec_dGVzdC1zaWduaW5nLXNlY3JldC0wMTIzNDU2Nzg5';

/** A language model that answers from a script, one entry per request, and keeps the requests. */
class ScriptedModel implements LanguageModel {
  readonly requests: ChatMessage[][] = [];
  constructor(
    readonly name: string,
    private readonly script: (LlmChunk[] | Error)[],
  ) {}
  async *complete(messages: ChatMessage[]): AsyncIterable<LlmChunk> {
    this.requests.push(structuredClone(messages));
    const next = this.script.shift();
    if (!next) throw new Error('script exhausted');
    if (next instanceof Error) throw next;
    yield* next;
  }
}

/** A customer's tool endpoint on a real socket, verifying the platform's signature. */
let receiver: ReturnType<typeof Bun.serve>;
const received: { verified: boolean; body: Record<string, unknown> }[] = [];
beforeAll(() => {
  receiver = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = await req.text();
      const verified = verifySignature(SECRET, req.headers, body);
      received.push({ verified, body: JSON.parse(body) });
      const path = new URL(req.url).pathname;
      if (!verified) return new Response('bad signature', { status: 401 });
      if (path === '/fail') return new Response('boom', { status: 500 });
      if (path === '/slow') return new Promise<Response>(() => {});
      return Response.json({ available: true, time: '19:30' });
    },
  });
});
afterAll(() => receiver.stop(true));
beforeEach(() => {
  received.length = 0;
  resetBreakers();
});

const url = (path: string) => `http://127.0.0.1:${receiver.port}${path}`;

function record(tools: { name: string; path: string }[] = []) {
  const parsed = parseAgentRecord('agt_1', {
    brain: 'llm',
    prompt: 'You are the front desk of Bella Pizza. The caller is {{name}}.',
    tools: tools.map((t) => ({
      name: t.name,
      description: 'Checks a table.',
      parameters: { type: 'object', properties: { time: { type: 'string' } } },
      webhookUrl: url(t.path),
    })),
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.record;
}

async function collect(brain: LlmBrain, history: ChatMessage[], events: string[] = []) {
  const out: BrainOutput[] = [];
  const signal = new AbortController().signal;
  for await (const o of brain.reply(
    { kind: 'speech', text: history.at(-1)!.content },
    {
      call: CALL,
      history,
      signal,
      event: (type) => events.push(type),
    },
  )) {
    out.push(o);
  }
  return out;
}

const text = (out: BrainOutput[]) =>
  out
    .filter((o) => o.kind === 'text')
    .map((o) => (o as { text: string }).text)
    .join('');

describe('LlmBrain with tools', () => {
  it('calls a customer tool with a signed request and speaks the model’s answer to its result', async () => {
    const model = new ScriptedModel('m', [
      [
        { kind: 'text', text: 'Let me check. ' },
        { kind: 'tool_call', call: { id: 'c1', name: 'check_table', arguments: '{"time":"19:30"}' } },
      ],
      [{ kind: 'text', text: 'Yes, 7:30 is free.' }],
    ]);
    const brain = new LlmBrain(
      record([{ name: 'check_table', path: '/ok' }]),
      model,
      new ToolRunner(record([{ name: 'check_table', path: '/ok' }]).tools, { signingSecret: SECRET }),
    );
    const events: string[] = [];
    const out = await collect(brain, [{ role: 'user', content: 'is there a table at half seven' }], events);
    expect(text(out)).toBe('Let me check. Yes, 7:30 is free.');
    expect(received).toHaveLength(1);
    expect(received[0]!.verified).toBe(true);
    expect(received[0]!.body).toMatchObject({
      tool: 'check_table',
      arguments: { time: '19:30' },
      call: { callId: 'cal_1' },
    });
    // The second request carries the tool call and its result, after the system prompt and history.
    const second = model.requests[1]!;
    expect(second[0]!.role).toBe('system');
    expect(second[0]!.content).toContain('The caller is Ada.');
    expect(second[0]!.content).toContain('from +14155550100');
    expect(second.at(-2)).toMatchObject({
      role: 'assistant',
      toolCalls: [{ id: 'c1', name: 'check_table' }],
    });
    expect(second.at(-1)).toMatchObject({ role: 'tool', toolCallId: 'c1' });
    expect(JSON.parse(second.at(-1)!.content)).toEqual({ available: true, time: '19:30' });
    expect(events).toEqual(['tool.called', 'tool.result']);
  });

  it('reports a failing, slow or unknown tool to the model instead of throwing', async () => {
    const tools = [
      { name: 'fail', path: '/fail' },
      { name: 'slow', path: '/slow' },
    ];
    const model = new ScriptedModel('m', [
      [
        { kind: 'tool_call', call: { id: 'a', name: 'fail', arguments: '{}' } },
        { kind: 'tool_call', call: { id: 'b', name: 'slow', arguments: '{}' } },
        { kind: 'tool_call', call: { id: 'c', name: 'nope', arguments: '{}' } },
        { kind: 'tool_call', call: { id: 'd', name: 'transfer_call', arguments: '{"to":"not a number"}' } },
      ],
      [{ kind: 'text', text: 'Sorry, I could not check.' }],
    ]);
    const brain = new LlmBrain(
      record(tools),
      model,
      new ToolRunner(record(tools).tools, { signingSecret: SECRET, timeoutMs: 200 }),
    );
    const out = await collect(brain, [{ role: 'user', content: 'check please' }]);
    expect(text(out)).toBe('Sorry, I could not check.');
    const results = model.requests[1]!.filter((m) => m.role === 'tool').map(
      (m) => JSON.parse(m.content).error,
    );
    expect(results[0]).toBe('the tool answered HTTP 500');
    expect(results[1]).toBe('the tool did not answer within 200 ms');
    expect(results[2]).toBe('no tool named nope');
    expect(results[3]).toBe('to must be an E.164 number or a sip: URI');
    expect(out.filter((o) => o.kind !== 'text')).toEqual([]);
  });

  it('turns the built-in tools into call actions and stops after a hang-up or transfer', async () => {
    const model = new ScriptedModel('m', [
      [
        { kind: 'text', text: 'Pressing one. ' },
        { kind: 'tool_call', call: { id: 'a', name: 'send_dtmf', arguments: '{"digits":"1"}' } },
      ],
      [
        { kind: 'text', text: 'Goodbye!' },
        { kind: 'tool_call', call: { id: 'b', name: 'end_call', arguments: '{"reason":"done"}' } },
      ],
    ]);
    const brain = new LlmBrain(record(), model, new ToolRunner([]));
    const out = await collect(brain, [{ role: 'user', content: 'navigate the menu then hang up' }]);
    expect(out.filter((o) => o.kind !== 'text')).toEqual([
      { kind: 'dtmf', digits: '1' },
      { kind: 'hangup', reason: 'done' },
    ]);
    expect(model.requests).toHaveLength(2);
  });
});

describe('ResilientLanguageModel', () => {
  const ok: LlmChunk[] = [{ kind: 'text', text: 'hi' }];
  const run = async (m: LanguageModel) => {
    let out = '';
    for await (const c of m.complete([], { signal: new AbortController().signal }))
      if (c.kind === 'text') out += c.text;
    return out;
  };
  const noSleep = async () => {};

  it('retries a retryable failure before any output', async () => {
    const primary = new ScriptedModel('p', [new ProviderError('500', 'p', true, 'http_500'), ok]);
    expect(await run(new ResilientLanguageModel([primary], { sleep: noSleep }))).toBe('hi');
    expect(primary.requests).toHaveLength(2);
  });

  it('moves to the fallback at once on a refused key, and fails with the last error when all fail', async () => {
    const primary = new ScriptedModel('p2', [new ProviderError('key refused', 'p2', false, 'http_401')]);
    const fallback = new ScriptedModel('f2', [ok]);
    expect(await run(new ResilientLanguageModel([primary, fallback], { sleep: noSleep }))).toBe('hi');
    expect(primary.requests).toHaveLength(1);
    const dead = new ScriptedModel('p3', [new ProviderError('key refused', 'p3', false, 'http_401')]);
    await expect(run(new ResilientLanguageModel([dead], { sleep: noSleep }))).rejects.toThrow('key refused');
  });

  it('opens the circuit after repeated failures so later calls skip the dead provider', async () => {
    let t = 0;
    const now = () => t;
    const down = () => new ProviderError('down', 'p4', true, 'http_503');
    const primary = new ScriptedModel('p4', Array.from({ length: 6 }, down));
    const fallback = new ScriptedModel('f4', [ok, ok, ok]);
    const opts = { sleep: noSleep, attempts: 3, breakerFailures: 2, openMs: 1000, now };
    await run(new ResilientLanguageModel([primary, fallback], opts));
    await run(new ResilientLanguageModel([primary, fallback], opts));
    expect(primary.requests).toHaveLength(6);
    // Open: the third call goes straight to the fallback.
    await run(new ResilientLanguageModel([primary, fallback], opts));
    expect(primary.requests).toHaveLength(6);
    expect(fallback.requests).toHaveLength(3);
    t = 2000;
    const recovered = new ScriptedModel('p4', [ok]);
    expect(await run(new ResilientLanguageModel([recovered], opts))).toBe('hi');
  });

  it('treats no first chunk within the timeout as a retryable failure', async () => {
    const hanging: LanguageModel = {
      name: 'hang',
      async *complete(_m, req) {
        await new Promise<void>((r) => req.signal.addEventListener('abort', () => r()));
        yield* [];
      },
    };
    const fallback = new ScriptedModel('f5', [ok]);
    expect(
      await run(
        new ResilientLanguageModel([hanging, fallback], {
          sleep: noSleep,
          attempts: 1,
          firstChunkTimeoutMs: 50,
        }),
      ),
    ).toBe('hi');
  });
});
