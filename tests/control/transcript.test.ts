import { describe, expect, it } from 'vitest';
import { latencySummary, type RecordedEvent, transcriptOf } from '../../control/modules/calls/timeline.ts';

const T0 = Date.parse('2026-01-05T09:30:00.000Z');

/** An event recorded `tMs` after the call started, as the recorder stores it. */
const ev = (
  type: string,
  tMs: number | null,
  data: Record<string, unknown> | null = null,
): RecordedEvent => ({
  type,
  at: new Date(T0 + (tMs ?? 0)),
  tMs,
  data,
});

describe('transcriptOf', () => {
  it('orders the caller’s and the agent’s words by when they started, with their spans and sources', () => {
    const events = [
      ev('call.started', 0, { protocol: 'native' }),
      // The greeting is recorded when it ends; the caller barged in before that.
      ev('transcript.partial', 2600, { text: 'when are', startMs: 2400 }),
      ev('agent.said', 3000, {
        text: 'Hello, Bella Pizza. How can I help?',
        interrupted: true,
        playedMs: 2500,
        totalMs: 3100,
        startMs: 100,
        endMs: 2600,
      }),
      ev('transcript.final', 3400, {
        text: 'when are you open',
        startMs: 2400,
        endMs: 3300,
        confidence: 0.82,
      }),
      ev('turn.latency', 3900, { turn: 1, endpointingMs: 500, sttMs: 40, ttsFirstAudioMs: 60, turnMs: 120 }),
      ev('agent.said', 6000, {
        text: 'We are open nine to five.',
        interrupted: false,
        playedMs: 2400,
        totalMs: 2400,
        startMs: 3500,
        endMs: 5900,
      }),
      ev('dtmf', 6500, { digit: '2' }),
      ev('user.text', 7000, { text: 'thanks' }),
      ev('transcript.final', 8200, { text: 'zorblax', startMs: 7500, endMs: 8000, rejected: true }),
      ev('transcript.final', 9000, { text: '  ', startMs: 8500, endMs: 8900, rejected: true }),
    ];

    expect(transcriptOf(events)).toEqual([
      {
        role: 'agent',
        text: 'Hello, Bella Pizza. How can I help?',
        at: '2026-01-05T09:30:00.100Z',
        startMs: 100,
        endMs: 2600,
        interrupted: true,
      },
      {
        role: 'user',
        text: 'when are you open',
        at: '2026-01-05T09:30:02.400Z',
        startMs: 2400,
        endMs: 3300,
        source: 'speech',
      },
      {
        role: 'agent',
        text: 'We are open nine to five.',
        at: '2026-01-05T09:30:03.500Z',
        startMs: 3500,
        endMs: 5900,
        interrupted: false,
      },
      { role: 'user', text: '2', at: '2026-01-05T09:30:06.500Z', startMs: 6500, endMs: 6500, source: 'dtmf' },
      {
        role: 'user',
        text: 'thanks',
        at: '2026-01-05T09:30:07.000Z',
        startMs: 7000,
        endMs: 7000,
        source: 'text',
      },
      {
        role: 'user',
        text: 'zorblax',
        at: '2026-01-05T09:30:07.500Z',
        startMs: 7500,
        endMs: 8000,
        source: 'speech',
        rejected: true,
      },
    ]);
  });

  it('leaves out events that carry no words, and keeps recording order where times are unknown', () => {
    const events = [
      ev('turn.completed', 1000, { turn: 1, endpointingMs: 500, text: 'not a transcript event' }),
      ev('agent.speaking', 1100, { ms: 700 }),
      ev('user.text', null, { text: 'first' }),
      ev('user.text', null, { text: 'second' }),
      ev('agent.said', null, { text: 'third' }),
    ];
    expect(transcriptOf(events).map((e) => [e.role, e.text, e.startMs])).toEqual([
      ['user', 'first', null],
      ['user', 'second', null],
      ['agent', 'third', null],
    ]);
  });
});

describe('latencySummary', () => {
  it('reads turn.latency events alone when the call has them, so timings are not counted twice', () => {
    const events = [
      ev('turn.completed', 1000, { turn: 1, speechMs: 900, endpointingMs: 500 }),
      ev('turn.latency', 1200, {
        turn: 1,
        endpointingMs: 500,
        sttMs: 40,
        ttsFirstAudioMs: 60,
        turnMs: 110,
      }),
      ev('turn.completed', 4000, { turn: 2, speechMs: 700, endpointingMs: 700 }),
      ev('turn.latency', 4300, {
        turn: 2,
        endpointingMs: 700,
        sttMs: 60,
        llmFirstTokenMs: 300,
        ttsFirstAudioMs: 80,
        turnMs: 150,
      }),
    ];
    expect(latencySummary(events)).toEqual({
      turns: 2,
      endpointingMs: { count: 2, p50: 500, p95: 700, max: 700, mean: 600 },
      sttMs: { count: 2, p50: 40, p95: 60, max: 60, mean: 50 },
      llmFirstTokenMs: { count: 1, p50: 300, p95: 300, max: 300, mean: 300 },
      ttsFirstAudioMs: { count: 2, p50: 60, p95: 80, max: 80, mean: 70 },
      turnMs: { count: 2, p50: 110, p95: 150, max: 150, mean: 130 },
    });
  });

  it('counts the turns turn.latency reports when no turn.completed is recorded', () => {
    const events = [
      ev('turn.latency', 1200, { turn: 1, endpointingMs: 400, turnMs: 100 }),
      ev('turn.latency', 2200, { turn: 2, endpointingMs: 600, turnMs: 300 }),
      ev('turn.latency', 3200, { turn: 3, endpointingMs: 500, turnMs: 200 }),
    ];
    const summary = latencySummary(events);
    expect(summary.turns).toBe(3);
    expect(summary.turnMs).toEqual({ count: 3, p50: 200, p95: 300, max: 300, mean: 200 });
  });

  it('still reads older timelines from every event', () => {
    const events = [
      ev('turn.completed', 1000, { turn: 1, endpointingMs: 450 }),
      ev('turn.completed', 2000, { turn: 2, endpointingMs: 550 }),
    ];
    expect(latencySummary(events)).toMatchObject({
      turns: 2,
      endpointingMs: { count: 2, p50: 450, max: 550 },
      turnMs: null,
    });
  });
});
