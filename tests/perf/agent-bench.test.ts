import { describe, expect, it } from 'vitest';
import { pocketsphinxAvailable } from '../../core/agent/providers/stt/dictionary.ts';
import { sileroAvailable } from '../../core/agent/providers/vad/silero.ts';
import {
  makeClips,
  type RunResult,
  runConversations,
  type ServerKind,
} from '../../perf/local/agent-bench.ts';
import {
  Caller,
  type CallerIntent,
  DEMO_INTENTS,
  FRAME_MS,
  HOURS_INTENT,
  replyMatches,
  summarise,
} from '../../perf/scenarios/conversation.ts';
import { voicesAvailable } from '../support/voices.ts';

describe('the conversation scenario (pure caller logic)', () => {
  const hours = HOURS_INTENT;
  const said = (text: string) => JSON.stringify({ t: 'event', name: 'agent.said', data: { text } });

  it('waits for the greeting, speaks its clip, and times the reply from the end of speech', () => {
    const caller = new Caller({
      clipFrames: [3],
      intents: [hours],
      expectsGreeting: true,
      replyEnd: 'said',
      leadFrames: 0,
      turnTimeoutMs: 5000,
      greetingTimeoutMs: 5000,
      maxTurns: 1,
    });
    let now = 1000;
    const step = () => {
      const choice = caller.next(now);
      now += FRAME_MS;
      return choice.kind;
    };
    expect([step(), step()]).toEqual(['silence', 'silence']);
    caller.onText(said('Hello.'), now);
    // The pause after the greeting, then three speech frames.
    const kinds: string[] = [];
    for (let i = 0; i < 60 && !kinds.includes('speech'); i++) kinds.push(step());
    expect(kinds.at(-1)).toBe('speech');
    expect([step(), step()]).toEqual(['speech', 'speech']);
    const endOfSpeech = now - FRAME_MS; // when the last speech frame was sent
    expect(step()).toBe('silence');
    caller.onAudio(endOfSpeech + 600);
    caller.onAudio(endOfSpeech + 620);
    caller.onText(
      JSON.stringify({
        t: 'event',
        name: 'turn.latency',
        data: { turn: 1, endpointingMs: 500, sttMs: 0, llmFirstTokenMs: 0, ttsFirstAudioMs: 0, turnMs: 503 },
      }),
      endOfSpeech + 621,
    );
    caller.onText(said(`${hours.expect} Is there anything else I can help you with?`), endOfSpeech + 900);
    expect(caller.done).toBe(true);
    const [turn] = caller.turns;
    expect(turn?.endOfSpeechAt).toBe(endOfSpeech);
    expect(turn?.firstAudioAt).toBe(endOfSpeech + 600);
    expect(turn && replyMatches(turn)).toBe(true);
    const s = summarise(caller.turns, 0, Number.POSITIVE_INFINITY, 500);
    expect(s).toMatchObject({ turns: 1, completed: 1, rightReplies: 1 });
    expect(s.overhead.p50).toBe(3);
    expect(s.endToEnd.p50).toBe(600);
    expect(s.endToEndLessEndpointing.p50).toBe(100);
    expect(caller.errors).toEqual([]);
  });

  it('counts a reply for another intent as wrong, and a missing reply as timed out', () => {
    const caller = new Caller({
      clipFrames: [1, 1],
      intents: DEMO_INTENTS.slice(0, 2),
      expectsGreeting: false,
      replyEnd: 'said',
      leadFrames: 0,
      turnTimeoutMs: 1000,
      greetingTimeoutMs: 1000,
      maxTurns: 2,
    });
    caller.next(0);
    caller.onText(said(DEMO_INTENTS[1]!.expect), 700);
    for (let i = 1; i <= 200 && !caller.done; i++) caller.next(700 + i * FRAME_MS);
    expect(caller.done).toBe(true);
    const s = summarise(caller.turns, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 500);
    expect(s).toMatchObject({ turns: 2, completed: 1, rightReplies: 0 });
  });
});

describe('the conversation scenario: late replies and filler lines', () => {
  it('credits a late reply to the turn that timed out, and skips a filler line', () => {
    const [hours, location] = DEMO_INTENTS as [CallerIntent, CallerIntent];
    const caller = new Caller({
      clipFrames: [1, 1],
      intents: [hours, location],
      expectsGreeting: false,
      replyEnd: 'said',
      leadFrames: 0,
      turnTimeoutMs: 1000,
      greetingTimeoutMs: 1000,
      maxTurns: 2,
    });
    const event = (name: string, data: Record<string, unknown>) => JSON.stringify({ t: 'event', name, data });
    let now = 0;
    const until = (cond: () => boolean) => {
      for (let i = 0; i < 500 && !cond(); i++) {
        now += FRAME_MS;
        caller.next(now);
      }
    };
    caller.next(now); // turn 1 (hours) spoken; its reply never comes in time
    until(() => caller.turns.length === 2);
    // Turn 2 (location) is waiting: the late hours reply arrives, then a filler, then its own.
    caller.onText(event('agent.said', { text: hours.expect }), now);
    caller.onText(event('agent.filler', { text: 'One moment, please.' }), now);
    caller.onText(event('agent.said', { text: 'One moment, please.' }), now);
    expect(caller.done).toBe(false);
    caller.onText(event('agent.said', { text: location.expect }), now);
    expect(caller.done).toBe(true);
    const [first, second] = caller.turns;
    expect(first).toMatchObject({ completed: false, saidText: null });
    expect(second).toMatchObject({ completed: true, saidText: location.expect, fillers: 1 });
    const s = summarise(caller.turns, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 500);
    expect(s).toMatchObject({ turns: 2, completed: 1, rightReplies: 1, withFiller: 1 });
  });
});

/** Sanity of a short run: every call talked, every turn answered (rightly), nothing failed. */
function expectSane(r: RunResult, calls: number, turns: number) {
  expect(r.errors).toEqual([]);
  expect(r.connected).toBe(calls);
  expect(r.summary.turns).toBe(calls * turns);
  expect(r.summary.completed).toBe(calls * turns);
  expect(r.summary.endToEnd.count).toBe(calls * turns);
  // Heard after the endpointing silence: the caller's clock and the server's agree on order.
  expect(r.summary.endToEnd.p50).toBeGreaterThan(300);
  expect(r.serverCpuPct).toBeGreaterThan(0);
  expect(r.serverRssMb).toBeGreaterThan(10);
}

describe.skipIf(!voicesAvailable.flite)('the agent benchmark, quick scenario over real sockets', () => {
  const clips = voicesAvailable.flite ? makeClips([HOURS_INTENT]) : [];
  const run = (kind: ServerKind, calls: number, maxTurns: number, turnTimeoutMs = 10_000) =>
    runConversations({ kind, calls, clips, windowMs: 0, warmupMs: 0, maxTurns, turnTimeoutMs });

  it('echo agent: each turn is echoed back after the endpointing silence', async () => {
    const r = await run('echo', 2, 1);
    expectSane(r, 2, 1);
    expect(r.summary.overhead.count).toBe(0); // the echo agent reports no turn.latency
  }, 60_000);

  it('scripted agent with zero providers (energy VAD): overhead is measured on every turn', async () => {
    const r = await run('zero-energy', 2, 2);
    expectSane(r, 2, 2);
    expect(r.summary.rightReplies).toBe(4);
    expect(r.summary.overhead.count).toBe(4);
    expect(r.summary.overhead.p50).toBeGreaterThanOrEqual(0);
    expect(r.summary.sttMs.count).toBe(4);
  }, 60_000);

  it.skipIf(!sileroAvailable().ok)(
    'scripted agent with zero providers (Silero VAD) hears the clip',
    async () => {
      const r = await run('zero-silero', 1, 2);
      expectSane(r, 1, 2);
      expect(r.summary.rightReplies).toBe(2);
      expect(r.summary.overhead.count).toBe(2);
    },
    60_000,
  );
});

describe.skipIf(!voicesAvailable.flite || !pocketsphinxAvailable().ok || !sileroAvailable().ok)(
  'the offline capacity scenario (pocketsphinx + flite + Silero)',
  () => {
    it('a caller asks an intent and the demo agent answers it', async () => {
      const r = await runConversations({
        kind: 'offline',
        calls: 1,
        clips: makeClips(DEMO_INTENTS.slice(0, 1)),
        windowMs: 0,
        warmupMs: 0,
        maxTurns: 1,
        turnTimeoutMs: 20_000,
      });
      expectSane(r, 1, 1);
      expect(r.summary.rightReplies).toBe(1);
      expect(r.summary.turnMs.count).toBe(1);
      expect(r.summary.sttMs.count).toBe(1);
    }, 90_000);
  },
);
