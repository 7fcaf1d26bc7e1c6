import type { CallInfo } from '../agent.ts';
import type { ChatMessage } from '../providers/types.ts';

/** What the caller gave the agent in one turn. */
export interface BrainInput {
  /** `speech` (recognised), `dtmf` (a keypad digit), `text` (typed by a native client). */
  kind: 'speech' | 'dtmf' | 'text';
  text: string;
  /** The recogniser judged the speech out of what it understands: re-prompt, do not guess. */
  rejected?: boolean;
  confidence?: number;
}

/**
 * What a brain answers, streamed: pieces of text to speak (sentences or tokens; the voice splits
 * them into sentences), then at most one action once the words are spoken.
 */
export type BrainOutput =
  | { kind: 'text'; text: string }
  | { kind: 'hangup'; reason: string }
  | { kind: 'transfer'; to: string }
  /** Keypad tones, played in-band after the words before them. */
  | { kind: 'dtmf'; digits: string };

export interface BrainTurnContext {
  call: CallInfo;
  /** The conversation so far: the caller's words, and of the agent's only what was heard. */
  history: readonly ChatMessage[];
  /** Aborted when the caller interrupts or the call ends: stop producing. */
  signal: AbortSignal;
  /** Appends a step to the call's timeline (tool calls and their results). */
  event?(type: string, data?: Record<string, unknown>): void;
}

/**
 * The part of a conversational agent that decides what to say. The conversation around it
 * (core/agent/conversation.ts) owns listening, turn-taking, speaking and interruptions.
 */
export interface Brain {
  readonly kind: string;
  /** Phrases the caller is expected to say (a grammar recogniser constrains itself to them). */
  phrases(): string[];
  /** Said when the call connects; null to wait for the caller. */
  greeting(call: CallInfo): string | null;
  reply(input: BrainInput, ctx: BrainTurnContext): AsyncIterable<BrainOutput>;
}

/** Fills `{{name}}` placeholders from the call's variables; unknown ones become empty. */
export function fillTemplate(text: string, call: CallInfo): string {
  return text.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, key: string) => {
    const v = call.variables[key] ?? call.params[key];
    return v ?? '';
  });
}
