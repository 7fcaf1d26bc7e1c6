import { describe, expect, it } from 'vitest';
import type { CallInfo } from '../../../core/agent/agent.ts';
import type { BrainInput, BrainOutput } from '../../../core/agent/brains/brain.ts';
import { FALLBACK, GOODBYE, ScriptedBrain } from '../../../core/agent/brains/scripted.ts';
import { type AgentRecord, parseAgentRecord } from '../../../core/agent/config.ts';

const CALL: CallInfo = {
  callId: 'c1',
  agentId: 'a1',
  direction: 'inbound',
  provider: 'native',
  params: {},
  variables: { name: 'Ada' },
};

function brain(overrides: Partial<AgentRecord> = {}) {
  const parsed = parseAgentRecord('a1', {
    brain: 'scripted',
    greeting: 'Hello {{name}}, how can I help?',
    intents: [
      {
        name: 'hours',
        examples: ['what are your opening hours', 'when are you open'],
        reply: 'Nine to five.',
        digit: '1',
      },
      { name: 'location', examples: ['where are you located'], reply: 'Market Street.', digit: '2' },
      { name: 'cancel', examples: ['cancel my order'], reply: 'Cancelled. Bye.', action: 'hangup' },
    ],
    ...overrides,
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return new ScriptedBrain(parsed.record);
}

async function reply(b: ScriptedBrain, input: BrainInput): Promise<{ text: string; action?: BrainOutput }> {
  let text = '';
  let action: BrainOutput | undefined;
  for await (const out of b.reply(input, { call: CALL, history: [], signal: new AbortController().signal })) {
    if (out.kind === 'text') text += out.text;
    else action = out;
  }
  return { text: text.trim(), action };
}

const speech = (text: string, rejected = false): BrainInput => ({ kind: 'speech', text, rejected });

describe('ScriptedBrain', () => {
  it('greets with the call variables filled in and gives the recogniser every phrase it understands', () => {
    const b = brain();
    expect(b.greeting(CALL)).toBe('Hello Ada, how can I help?');
    const phrases = b.phrases();
    expect(phrases).toContain('what are your opening hours');
    expect(phrases).toContain('goodbye');
    expect(phrases).toContain('talk to a person');
  });

  it('answers an intent phrase, and a typed paraphrase that contains it', async () => {
    const b = brain();
    expect((await reply(b, speech('what are your opening hours'))).text).toBe(
      'Nine to five. Is there anything else I can help you with?',
    );
    expect((await reply(b, { kind: 'text', text: 'Hi, where are you located please?' })).text).toContain(
      'Market Street.',
    );
  });

  it('re-prompts on a rejected or unknown utterance, then offers the keypad menu', async () => {
    const b = brain();
    expect((await reply(b, speech('', true))).text).toBe(FALLBACK);
    const second = await reply(b, speech('the weather is lovely'));
    expect(second.text).toBe(
      "Sorry, I didn't catch that. You can also use your keypad: press 1 for hours, press 2 for location.",
    );
  });

  it('transfers after repeated misses, and on "a person", when the agent has a transfer target', async () => {
    const b = brain({ transferTo: '+14155550199' });
    await reply(b, speech('blah'));
    const second = await reply(b, speech('blah blah'));
    expect(second.action).toEqual({ kind: 'transfer', to: '+14155550199' });
    expect((await reply(b, speech('talk to a person'))).action).toEqual({
      kind: 'transfer',
      to: '+14155550199',
    });
  });

  it('apologises for "a person" without a transfer target', async () => {
    const out = await reply(brain(), speech('a person'));
    expect(out.action).toBeUndefined();
    expect(out.text).toContain('nobody free');
  });

  it('hangs up after goodbye, after "no" to "anything else", and after an intent whose action is hangup', async () => {
    expect(await reply(brain(), speech('goodbye'))).toEqual({
      text: GOODBYE,
      action: { kind: 'hangup', reason: 'caller said goodbye' },
    });
    const b = brain();
    await reply(b, speech('when are you open'));
    expect((await reply(b, speech('no'))).action).toMatchObject({ kind: 'hangup' });
    expect((await reply(brain(), speech('cancel my order'))).action).toMatchObject({ kind: 'hangup' });
  });

  it('takes keypad digits: an intent by its digit, the menu for an unknown one', async () => {
    const b = brain();
    expect((await reply(b, { kind: 'dtmf', text: '2' })).text).toContain('Market Street.');
    expect((await reply(b, { kind: 'dtmf', text: '7' })).text).toBe(
      'You can also use your keypad: press 1 for hours, press 2 for location.',
    );
  });

  it('repeats its last answer', async () => {
    const b = brain();
    await reply(b, speech('when are you open'));
    expect((await reply(b, speech('repeat that'))).text).toBe('Nine to five.');
  });
});
