import { isDtmf } from '../audio/dtmf.ts';
import { signHeaders } from '../auth/standard-webhooks.ts';
import type { CallInfo } from './agent.ts';
import type { BrainOutput } from './brains/brain.ts';
import type { ToolRecord } from './config.ts';
import type { ToolCall, ToolSpec } from './providers/types.ts';

/** What running one tool call gave: text for the model, and maybe an action for the call. */
export interface ToolOutcome {
  /** The tool message content the model reads next (a JSON text). */
  content: string;
  ok: boolean;
  action?: Exclude<BrainOutput, { kind: 'text' }>;
}

export interface ToolRunnerOptions {
  /** Signs customer tool requests (Standard Webhooks); unsigned when absent. */
  signingSecret?: string;
  /** Longest a customer tool may take. Default 10 s. */
  timeoutMs?: number;
  /** Largest answer passed to the model, characters. Default 8000. */
  maxResultChars?: number;
  fetch?: typeof fetch;
}

const E164 = /^\+[1-9][0-9]{6,14}$/;
const SIP = /^sips?:[^\s@]+@[^\s]+$/;

/** Tools every `llm` agent has, carried out by the platform itself. */
export const BUILTIN_TOOLS: ToolSpec[] = [
  {
    name: 'end_call',
    description:
      'Hang up the call, after saying goodbye. Use when the caller is done or asks to end the call.',
    parameters: {
      type: 'object',
      properties: { reason: { type: 'string', description: 'Why the call ends, for the record.' } },
    },
  },
  {
    name: 'transfer_call',
    description: 'Transfer the caller to a phone number (E.164, e.g. +14155550100) or a SIP URI.',
    parameters: {
      type: 'object',
      properties: { to: { type: 'string', description: 'E.164 number or sip: URI.' } },
      required: ['to'],
    },
  },
  {
    name: 'send_dtmf',
    description: 'Press keys on the phone keypad (digits 0-9, * and #), e.g. to navigate a phone menu.',
    parameters: {
      type: 'object',
      properties: { digits: { type: 'string', description: 'Keys to press, e.g. "1" or "1234#".' } },
      required: ['digits'],
    },
  },
];

function parseArgs(call: ToolCall): Record<string, unknown> | null {
  try {
    const v = JSON.parse(call.arguments || '{}');
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const result = (value: unknown, ok = true): ToolOutcome => ({ content: JSON.stringify(value), ok });

/**
 * Runs the model's tool calls: the built-ins (end_call, transfer_call, send_dtmf) become actions
 * on the call; customer tools are HTTPS endpoints called with the arguments in a signed POST
 * and a timeout, whose JSON answer goes back to the model. Failures are reported to the model as
 * `{ "error": … }`, never thrown, so it can tell the caller.
 */
export class ToolRunner {
  private readonly byName: Map<string, ToolRecord>;
  private readonly fetch: typeof fetch;

  constructor(
    private readonly tools: readonly ToolRecord[],
    private readonly opts: ToolRunnerOptions = {},
  ) {
    this.byName = new Map(tools.map((t) => [t.name, t]));
    this.fetch = opts.fetch ?? fetch;
  }

  /** What the model is offered: the built-ins, then the agent's own tools. */
  specs(): ToolSpec[] {
    return [
      ...BUILTIN_TOOLS,
      ...this.tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters })),
    ];
  }

  async run(call: ToolCall, ctx: { call: CallInfo; signal: AbortSignal }): Promise<ToolOutcome> {
    const args = parseArgs(call);
    if (args === null) return result({ error: 'arguments are not a JSON object' }, false);
    switch (call.name) {
      case 'end_call':
        return {
          ...result({ ok: true }),
          action: {
            kind: 'hangup',
            reason: typeof args.reason === 'string' ? args.reason : 'the agent ended the call',
          },
        };
      case 'transfer_call': {
        const to = typeof args.to === 'string' ? args.to.trim() : '';
        if (!E164.test(to) && !SIP.test(to))
          return result({ error: 'to must be an E.164 number or a sip: URI' }, false);
        return { ...result({ ok: true }), action: { kind: 'transfer', to } };
      }
      case 'send_dtmf': {
        const digits = typeof args.digits === 'string' ? args.digits.trim() : '';
        if (!isDtmf(digits) || digits.length > 32)
          return result({ error: 'digits must be 1-32 of 0-9, *, #' }, false);
        return { ...result({ ok: true }), action: { kind: 'dtmf', digits } };
      }
    }
    const tool = this.byName.get(call.name);
    if (!tool) return result({ error: `no tool named ${call.name}` }, false);
    return this.callWebhook(tool, args, ctx);
  }

  private async callWebhook(
    tool: ToolRecord,
    args: Record<string, unknown>,
    ctx: { call: CallInfo; signal: AbortSignal },
  ): Promise<ToolOutcome> {
    const { call } = ctx;
    const body = JSON.stringify({
      tool: tool.name,
      arguments: args,
      call: {
        callId: call.callId,
        agentId: call.agentId,
        direction: call.direction,
        from: call.from,
        to: call.to,
      },
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'sipai-tools/1',
      ...(this.opts.signingSecret ? signHeaders(this.opts.signingSecret, body) : {}),
    };
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await this.fetch(tool.webhookUrl, {
        method: 'POST',
        headers,
        body,
        signal,
        redirect: 'error',
      });
      const text = await res.text();
      if (!res.ok)
        return result({ error: `the tool answered HTTP ${res.status}`, body: this.clip(text) }, false);
      return { content: this.clip(text || '{}'), ok: true };
    } catch (err) {
      if (ctx.signal.aborted) return result({ error: 'cancelled' }, false);
      const timedOut = (err as Error)?.name === 'TimeoutError';
      return result(
        {
          error: timedOut
            ? `the tool did not answer within ${timeoutMs} ms`
            : 'the tool could not be reached',
        },
        false,
      );
    }
  }

  private clip(text: string): string {
    const max = this.opts.maxResultChars ?? 8000;
    return text.length > max ? text.slice(0, max) : text;
  }
}
