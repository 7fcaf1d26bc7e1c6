import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentRecord, parseAgentRecord } from '../../core/agent/config.ts';
import { pocketsphinxAvailable } from '../../core/agent/providers/stt/dictionary.ts';
import { ttsAvailable } from '../../core/agent/providers/tts/availability.ts';
import { agentReadiness, cachedChecks, INSTALLED } from '../../core/agent/readiness.ts';

/** A record as core reads it: defaults applied by core's own parser. */
function record(fields: Record<string, unknown>): AgentRecord {
  const parsed = parseAgentRecord('agt_test', fields);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.record;
}

const hours = {
  name: 'hours',
  examples: ['what are your opening hours', 'when are you open'],
  reply: 'Nine to five.',
};

// These run against the engines installed here (the Debian packages the project lists).
const installed = pocketsphinxAvailable().ok && ttsAvailable('flite').ok;

describe.skipIf(!installed)('agentReadiness on this machine', () => {
  const saved = process.env.POCKETSPHINX_MODEL_DIR;
  const temps: string[] = [];
  afterEach(() => {
    if (saved === undefined) delete process.env.POCKETSPHINX_MODEL_DIR;
    else process.env.POCKETSPHINX_MODEL_DIR = saved;
    for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('finds a scripted agent on the offline defaults ready', () => {
    expect(agentReadiness(record({ brain: 'scripted', intents: [hours] }), {})).toEqual({
      ready: true,
      warnings: [],
    });
    expect(
      agentReadiness(
        record({ brain: 'scripted', stt: { provider: 'pocketsphinx' }, tts: { provider: 'flite' } }),
        {},
      ),
    ).toEqual({ ready: true, warnings: [] });
  });

  it('names the words of an intent the recogniser’s dictionary lacks', () => {
    const result = agentReadiness(
      record({
        brain: 'scripted',
        intents: [
          hours,
          { name: 'menu', examples: ['do you sell zorblax', 'zorblax and qwertyx'], reply: 'No.' },
        ],
      }),
      {},
    );
    expect(result).toEqual({
      ready: false,
      warnings: [`intent "menu": the recogniser's dictionary lacks "zorblax", "qwertyx"`],
    });
  });

  it('names the missing Debian package when the recogniser’s model is not there', () => {
    const empty = mkdtempSync(join(tmpdir(), 'sipai-no-model-'));
    temps.push(empty);
    process.env.POCKETSPHINX_MODEL_DIR = empty;
    const result = agentReadiness(record({ brain: 'scripted', intents: [hours] }), {});
    expect(result).toEqual({
      ready: false,
      warnings: ['stt pocketsphinx: Debian package pocketsphinx-en-us is not installed'],
    });
  });

  it('checks the agent’s voice against the voices flite has', () => {
    expect(agentReadiness(record({ brain: 'scripted', voice: 'kal16' }), {}).warnings).toEqual([]);
    expect(agentReadiness(record({ brain: 'scripted', voice: 'zorblax' }), {}).warnings).toEqual([
      'tts flite: flite voice zorblax is not installed',
    ]);
  });

  it('names a missing voice package (a check that reports it missing)', () => {
    const result = agentReadiness(
      record({ brain: 'scripted', tts: { provider: 'festival' } }),
      {},
      {
        ...INSTALLED,
        ttsAvailable: (name) => (name === 'festival' ? { ok: false, missing: 'festival' } : { ok: true }),
      },
    );
    expect(result).toEqual({
      ready: false,
      warnings: ['tts festival: Debian package festival is not installed'],
    });
  });

  it('names the unset key of each vendor provider and fallback, and the llm brain’s defaults', () => {
    const vendor = record({
      brain: 'scripted',
      stt: { provider: 'deepgram', fallback: 'pocketsphinx' },
      tts: { provider: 'elevenlabs', fallback: 'openai' },
    });
    expect(agentReadiness(vendor, { ELEVENLABS_API_KEY: 'set' }).warnings).toEqual([
      'stt deepgram: DEEPGRAM_API_KEY is not set',
      'tts fallback openai: OPENAI_API_KEY is not set',
    ]);

    const llm = record({ brain: 'llm', llm: { provider: 'openai' }, prompt: 'Be brief.' });
    expect(agentReadiness(llm, {})).toEqual({
      ready: false,
      warnings: [
        'llm openai: OPENAI_API_KEY is not set',
        'stt deepgram: DEEPGRAM_API_KEY is not set',
        'tts openai: OPENAI_API_KEY is not set',
      ],
    });
    expect(agentReadiness(llm, { OPENAI_API_KEY: 'sk-test', DEEPGRAM_API_KEY: 'dg-test' })).toEqual({
      ready: true,
      warnings: [],
    });
    // A self-hosted model carries its own URL and key: nothing to set on the deployment.
    const local = record({
      brain: 'llm',
      llm: { provider: 'openai-compatible' },
      prompt: 'Be brief.',
      tts: { provider: 'flite' },
    });
    expect(agentReadiness(local, { DEEPGRAM_API_KEY: 'dg-test' }).warnings).toEqual([]);
  });

  it('finds echo ready whatever is installed or set', () => {
    const nothing = {
      pocketsphinxAvailable: () => ({ ok: false, missing: 'libpocketsphinx3' }) as const,
      missingWords: (phrases: string[]) => phrases,
      ttsAvailable: () => ({ ok: false, missing: 'flite' }) as const,
    };
    expect(agentReadiness(record({ brain: 'echo', stt: { provider: 'deepgram' } }), {}, nothing)).toEqual({
      ready: true,
      warnings: [],
    });
    expect(agentReadiness(record({ brain: 'scripted', intents: [hours] }), {}, nothing)).toEqual({
      ready: false,
      warnings: [
        'stt pocketsphinx: Debian package libpocketsphinx3 is not installed',
        'tts flite: Debian package flite is not installed',
      ],
    });
  });
});

describe('cachedChecks', () => {
  it('answers from memory until the time to live passes, then checks again', () => {
    let calls = 0;
    let installedNow = false;
    let nowMs = 0;
    const checks = cachedChecks(
      {
        pocketsphinxAvailable: () => {
          calls++;
          return installedNow ? { ok: true } : { ok: false, missing: 'libpocketsphinx3' };
        },
        missingWords: () => [],
        ttsAvailable: () => ({ ok: true }),
      },
      10_000,
      () => nowMs,
    );
    const scripted = record({ brain: 'scripted' });
    expect(agentReadiness(scripted, {}, checks).ready).toBe(false);
    installedNow = true;
    nowMs = 9_999;
    expect(agentReadiness(scripted, {}, checks).ready).toBe(false);
    expect(calls).toBe(1);
    nowMs = 10_000;
    expect(agentReadiness(scripted, {}, checks)).toEqual({ ready: true, warnings: [] });
    expect(calls).toBe(2);
  });
});
