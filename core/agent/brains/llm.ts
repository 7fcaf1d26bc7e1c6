import type { CallInfo } from '../agent.ts';
import type { AgentRecord } from '../config.ts';
import type { ChatMessage, LanguageModel, ToolCall } from '../providers/types.ts';
import type { ToolRunner } from '../tools.ts';
import {
  type Brain,
  type BrainInput,
  type BrainOutput,
  type BrainTurnContext,
  fillTemplate,
} from './brain.ts';

/** Tool rounds one reply may take before the brain stops asking the model. */
const MAX_TOOL_ROUNDS = 5;

/** How a phone agent should talk, whatever the customer's prompt says. */
const VOICE_RULES =
  'You are speaking on a live phone call. Answer in short spoken sentences: no lists, no markdown, ' +
  'no emoji. Use the end_call tool to hang up after saying goodbye, transfer_call to hand the caller ' +
  'to a person or number, and send_dtmf to press keypad keys.';

/**
 * The `llm` brain: the agent's prompt (with the call's context and a campaign contact's
 * variables) and the conversation the caller heard go to a language model whose reply streams
 * into speech; tool calls run in between (built-ins become call actions, customer tools are
 * signed HTTPS calls whose results go back to the model) until the model answers in words.
 */
export class LlmBrain implements Brain {
  readonly kind = 'llm';

  constructor(
    private readonly record: AgentRecord,
    private readonly model: LanguageModel,
    private readonly tools: ToolRunner,
  ) {}

  phrases(): string[] {
    return [];
  }

  greeting(call: CallInfo): string | null {
    const text = this.record.greeting === undefined ? '' : fillTemplate(this.record.greeting, call).trim();
    return text.length > 0 ? text : null;
  }

  /** The system message: the agent's prompt, the voice rules, and who is on the call. */
  systemPrompt(call: CallInfo): string {
    const prompt = fillTemplate(this.record.prompt ?? 'You are a helpful voice assistant.', call);
    const facts = [
      `This is an ${call.direction} call${call.from ? ` from ${call.from}` : ''}${call.to ? ` to ${call.to}` : ''}.`,
    ];
    const vars = Object.entries(call.variables);
    if (vars.length > 0)
      facts.push(`What we know about the caller: ${vars.map(([k, v]) => `${k}: ${v}`).join('; ')}.`);
    return `${prompt}\n\n${VOICE_RULES}\n${facts.join(' ')}`;
  }

  async *reply(input: BrainInput, ctx: BrainTurnContext): AsyncIterable<BrainOutput> {
    if (input.kind === 'speech' && input.rejected && input.text.length === 0) {
      yield { kind: 'text', text: 'Sorry, could you say that again?' };
      return;
    }
    // The history already holds this turn's words (and only what the caller heard of ours).
    const messages: ChatMessage[] = [
      { role: 'system', content: this.systemPrompt(ctx.call) },
      ...ctx.history,
    ];
    const specs = this.tools.specs();
    for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
      let text = '';
      const calls: ToolCall[] = [];
      for await (const chunk of this.model.complete(messages, { tools: specs, signal: ctx.signal })) {
        if (ctx.signal.aborted) return;
        if (chunk.kind === 'text') {
          text += chunk.text;
          yield { kind: 'text', text: chunk.text };
        } else {
          calls.push(chunk.call);
        }
      }
      if (ctx.signal.aborted || calls.length === 0) return;
      messages.push({ role: 'assistant', content: text, toolCalls: calls });
      let final = false;
      for (const call of calls) {
        ctx.event?.('tool.called', {
          name: call.name,
          id: call.id,
          arguments: call.arguments.slice(0, 2000),
        });
        const outcome = await this.tools.run(call, { call: ctx.call, signal: ctx.signal });
        ctx.event?.('tool.result', {
          name: call.name,
          id: call.id,
          ok: outcome.ok,
          result: outcome.content.slice(0, 2000),
        });
        messages.push({ role: 'tool', toolCallId: call.id, content: outcome.content });
        if (outcome.action) {
          yield outcome.action;
          if (outcome.action.kind !== 'dtmf') final = true;
        }
      }
      // After hanging up or transferring there is nobody left to answer.
      if (final) return;
    }
  }
}
