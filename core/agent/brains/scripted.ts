import type { CallInfo } from '../agent.ts';
import type { AgentRecord, IntentRecord } from '../config.ts';
import {
  type Brain,
  type BrainInput,
  type BrainOutput,
  type BrainTurnContext,
  fillTemplate,
} from './brain.ts';

/** What the scripted brain says when it did not understand. */
export const FALLBACK = 'Sorry, could you say that again?';
export const GOODBYE = 'Thank you for calling. Goodbye.';
const ANYTHING_ELSE = 'Is there anything else I can help you with?';
const NOBODY_FREE =
  "I'm sorry, there is nobody free to take your call right now. You can ask me about something else.";
const PUTTING_THROUGH = 'Let me put you through to someone who can help.';
/** Misses in a row before the brain offers a person or the keypad menu. */
const MAX_MISSES = 2;
/** Smallest word-overlap score at which a paraphrase counts as an intent (second pass). */
const FUZZY_THRESHOLD = 0.6;

/** Built-in meanings every scripted agent understands, with the phrases the recogniser accepts. */
const BUILTINS = {
  goodbye: ['goodbye', 'bye', 'bye bye', 'no thank you', 'no thanks', "that's all", 'that is all'],
  person: [
    'talk to a person',
    'a person',
    'speak to someone',
    'an operator',
    'operator',
    'representative',
    'a human',
  ],
  repeat: ['repeat that', 'say that again', 'can you repeat that', 'what did you say'],
  yes: ['yes', 'yes please', 'yeah', 'sure'],
  no: ['no', 'nope', 'no that is all'],
} as const;
type Builtin = keyof typeof BUILTINS;

/** Lower-case words, punctuation dropped (apostrophes kept): how phrases are compared. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/**
 * How well what was said matches an example phrase: the Dice coefficient of their word sets
 * (1 for the same words), or, when every word of a multi-word example was said ("…opening
 * hours please"), a containment score of 0.9.
 */
function overlap(said: string[], example: string[]): number {
  if (said.length === 0 || example.length === 0) return 0;
  const sa = new Set(said);
  const se = new Set(example);
  let shared = 0;
  for (const w of se) if (sa.has(w)) shared++;
  const dice = (2 * shared) / (sa.size + se.size);
  return se.size >= 2 && shared === se.size ? Math.max(dice, 0.9) : dice;
}

/**
 * The offline brain: a greeting, intents (the recogniser's grammar match, then a fuzzy match on
 * the words for text and second-pass speech), a fallback re-prompt, and after repeated misses a
 * transfer (when the agent has `transferTo`) or a keypad menu; goodbye hangs up; keypad digits
 * select intents. Everything it can say is in the agent's config.
 */
export class ScriptedBrain implements Brain {
  readonly kind = 'scripted';
  private misses = 0;
  private lastReply = '';
  private askedAnythingElse = false;

  constructor(private readonly config: AgentRecord) {}

  phrases(): string[] {
    const out = new Set<string>();
    for (const intent of this.config.intents) for (const e of intent.examples) out.add(words(e).join(' '));
    for (const list of Object.values(BUILTINS)) for (const p of list) out.add(p);
    return [...out].filter(Boolean);
  }

  greeting(call: CallInfo): string | null {
    const g = this.config.greeting;
    if (g === undefined) return 'Hello, how can I help you?';
    const text = fillTemplate(g, call).trim();
    return text.length > 0 ? text : null;
  }

  async *reply(input: BrainInput, _ctx: BrainTurnContext): AsyncIterable<BrainOutput> {
    yield* this.decide(input);
  }

  private *decide(input: BrainInput): Iterable<BrainOutput> {
    if (input.kind === 'dtmf') {
      yield* this.onDigit(input.text);
      return;
    }
    const said = words(input.text);
    const builtin = input.rejected ? null : this.builtin(said);
    if (builtin) {
      yield* this.onBuiltin(builtin);
      return;
    }
    const intent = this.match(said, input.rejected === true);
    if (intent) {
      yield* this.answer(intent);
      return;
    }
    yield* this.miss();
  }

  private builtin(said: string[]): Builtin | null {
    const phrase = said.join(' ');
    for (const [name, list] of Object.entries(BUILTINS) as [Builtin, readonly string[]][]) {
      if (list.includes(phrase)) return name;
    }
    return null;
  }

  /** Exact phrase first (what a grammar recogniser returns), then the closest paraphrase. */
  private match(said: string[], rejected: boolean): IntentRecord | null {
    if (said.length === 0) return null;
    const phrase = said.join(' ');
    if (!rejected) {
      for (const intent of this.config.intents) {
        if (intent.examples.some((e) => words(e).join(' ') === phrase)) return intent;
      }
    }
    let best: IntentRecord | null = null;
    let bestScore = 0;
    for (const intent of this.config.intents) {
      for (const e of intent.examples) {
        const score = overlap(said, words(e));
        if (score > bestScore) {
          bestScore = score;
          best = intent;
        }
      }
    }
    // A rejected recognition only counts when its words agree strongly with one phrase.
    const threshold = rejected ? 0.85 : FUZZY_THRESHOLD;
    return bestScore >= threshold ? best : null;
  }

  private *answer(intent: IntentRecord): Iterable<BrainOutput> {
    this.misses = 0;
    this.lastReply = intent.reply;
    if (intent.action === 'hangup') {
      yield { kind: 'text', text: intent.reply };
      yield { kind: 'hangup', reason: `intent ${intent.name}` };
      return;
    }
    if (intent.action === 'transfer' && this.config.transferTo) {
      yield { kind: 'text', text: intent.reply };
      yield { kind: 'transfer', to: this.config.transferTo };
      return;
    }
    this.askedAnythingElse = true;
    yield { kind: 'text', text: `${intent.reply} ` };
    yield { kind: 'text', text: ANYTHING_ELSE };
  }

  private *onBuiltin(name: Builtin): Iterable<BrainOutput> {
    this.misses = 0;
    switch (name) {
      case 'goodbye':
        yield { kind: 'text', text: GOODBYE };
        yield { kind: 'hangup', reason: 'caller said goodbye' };
        return;
      case 'person':
        yield* this.person();
        return;
      case 'repeat':
        yield { kind: 'text', text: this.lastReply || (this.greeting(EMPTY_CALL) ?? FALLBACK) };
        return;
      case 'yes':
        this.askedAnythingElse = false;
        yield { kind: 'text', text: 'Sure. What else can I help you with?' };
        return;
      case 'no':
        if (this.askedAnythingElse) {
          yield { kind: 'text', text: GOODBYE };
          yield { kind: 'hangup', reason: 'caller is done' };
          return;
        }
        yield* this.miss();
        return;
    }
  }

  private *person(): Iterable<BrainOutput> {
    if (this.config.transferTo) {
      yield { kind: 'text', text: PUTTING_THROUGH };
      yield { kind: 'transfer', to: this.config.transferTo };
      return;
    }
    this.lastReply = NOBODY_FREE;
    yield { kind: 'text', text: NOBODY_FREE };
  }

  private *onDigit(digit: string): Iterable<BrainOutput> {
    const intent = this.config.intents.find((i) => i.digit === digit);
    if (intent) {
      yield* this.answer(intent);
      return;
    }
    if (digit === '0') {
      yield* this.person();
      return;
    }
    yield { kind: 'text', text: this.menu() ?? FALLBACK };
  }

  /** The keypad menu, from intents that have a digit; null when none has. */
  private menu(): string | null {
    const items = this.config.intents.filter((i) => i.digit !== undefined);
    if (items.length === 0) return null;
    const parts = items.map((i) => `press ${i.digit} for ${i.name.replaceAll(/[-_]/g, ' ')}`);
    const person = this.config.transferTo ? ', or press 0 for a person' : '';
    return `You can also use your keypad: ${parts.join(', ')}${person}.`;
  }

  private *miss(): Iterable<BrainOutput> {
    this.misses++;
    if (this.misses < MAX_MISSES) {
      yield { kind: 'text', text: FALLBACK };
      return;
    }
    this.misses = 0;
    if (this.config.transferTo) {
      yield { kind: 'text', text: PUTTING_THROUGH };
      yield { kind: 'transfer', to: this.config.transferTo };
      return;
    }
    const menu = this.menu();
    yield { kind: 'text', text: menu ? `Sorry, I didn't catch that. ${menu}` : FALLBACK };
  }
}

const EMPTY_CALL: CallInfo = {
  callId: '',
  agentId: '',
  direction: 'inbound',
  provider: 'native',
  params: {},
  variables: {},
};
