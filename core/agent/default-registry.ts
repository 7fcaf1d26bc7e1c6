import type { Brain } from './brains/brain.ts';
import { EchoAgent } from './brains/echo.ts';
import { LlmBrain } from './brains/llm.ts';
import { LoopbackAgent } from './brains/loopback.ts';
import { ScriptedBrain } from './brains/scripted.ts';
import { type AgentRecord, defaultProviders } from './config.ts';
import { Conversation } from './conversation.ts';
import { ResilientLanguageModel } from './providers/llm/resilient.ts';
import { registerDeepgram } from './providers/stt/deepgram.ts';
import { pocketsphinxAvailable } from './providers/stt/dictionary.ts';
import { PocketsphinxStt } from './providers/stt/pocketsphinx.ts';
import { ttsAvailable } from './providers/tts/availability.ts';
import { registerElevenLabs } from './providers/tts/elevenlabs.ts';
import { EspeakTts } from './providers/tts/espeak.ts';
import { FestivalTts, stopFestival } from './providers/tts/festival.ts';
import { FLITE_VOICES, FliteTts, type FliteVoice } from './providers/tts/flite.ts';
import { registerOpenAi } from './providers/tts/openai.ts';
import type { SpeechToText, TextToSpeech } from './providers/types.ts';
import { SileroVad, sileroAvailable, warmSilero } from './providers/vad/silero.ts';
import {
  type AgentBuild,
  type BuildContext,
  type ProviderEnv,
  ProviderRegistry,
  UnavailableError,
} from './registry.ts';
import { ToolRunner } from './tools.ts';
import { EnergyVad } from './vad.ts';

/** The pipeline rate of conversational brains: what the offline recogniser and Silero take. */
export const CONVERSATION_RATE = 16000;

/**
 * The agent's voice: its `tts` choice (default `flite`), the `voice` it names, and its fallback
 * provider when the first cannot run here. Throws naming what is missing when neither can.
 */
export function agentVoice(record: AgentRecord, registry: ProviderRegistry, env: ProviderEnv): TextToSpeech {
  const choice = record.tts ?? { provider: defaultProviders(record.brain).tts };
  const voice =
    record.voice ?? (typeof choice.options?.voice === 'string' ? choice.options.voice : undefined);
  try {
    return registry.require('tts', choice.provider, env)(choice, voice, env);
  } catch (err) {
    if (!choice.fallback) throw err;
    return registry.require('tts', choice.fallback, env)({ provider: choice.fallback }, undefined, env);
  }
}

/** The agent's recogniser: its `stt` choice (default per brain), else its fallback. */
function agentStt(record: AgentRecord, registry: ProviderRegistry, env: ProviderEnv) {
  const sttChoice = record.stt ?? { provider: defaultProviders(record.brain).stt };
  let stt: SpeechToText;
  try {
    stt = registry.require('stt', sttChoice.provider, env)(sttChoice, env);
  } catch (err) {
    if (!sttChoice.fallback) throw err;
    stt = registry.require('stt', sttChoice.fallback, env)({ provider: sttChoice.fallback }, env);
  }
  return { stt, sttChoice };
}

/** A conversation around `brain`, with the agent's recogniser, voice and the VAD. */
function conversation(
  record: AgentRecord,
  brain: Brain,
  registry: ProviderRegistry,
  env: ProviderEnv,
  llmName?: string,
): AgentBuild {
  const { stt, sttChoice } = agentStt(record, registry, env);
  const tts = agentVoice(record, registry, env);
  const pipelineRate = record.sampleRate ?? CONVERSATION_RATE;
  return {
    agent: new Conversation({
      brain,
      stt,
      language: record.language,
      sttModel: sttChoice.model,
      sttOptions: sttChoice.options,
      providers: { llm: llmName, tts: tts.name },
    }),
    tts,
    vad: registry.createVad(pipelineRate, record.endpointing.minMs, env),
    pipelineRate,
  };
}

function scripted({ record, registry, env }: BuildContext): AgentBuild {
  return conversation(record, new ScriptedBrain(record), registry, env);
}

/**
 * The `llm` brain: its model (default per brain) with retries, a first-chunk timeout, its
 * fallback and circuit breaking; its tools signed with `WEBHOOK_SECRET`.
 */
function llm({ record, registry, env }: BuildContext): AgentBuild {
  const choice = record.llm ?? { provider: defaultProviders('llm').llm! };
  const models = [registry.require('llm', choice.provider, env)(choice, env)];
  if (choice.fallback) {
    try {
      models.push(
        registry.require('llm', choice.fallback, env)({ ...choice, provider: choice.fallback }, env),
      );
    } catch {
      // A fallback that cannot run here leaves the primary alone (readiness warns about it).
    }
  }
  const tools = new ToolRunner(record.tools, { signingSecret: env.WEBHOOK_SECRET });
  const model = new ResilientLanguageModel(models);
  return conversation(record, new LlmBrain(record, model, tools), registry, env, model.name);
}

/** A diagnostic brain at the wire's own rate (no resampling) with the energy detector. */
function diagnostic(make: () => EchoAgent | LoopbackAgent) {
  return ({ record, wireRate }: BuildContext) => {
    const pipelineRate = record.sampleRate ?? wireRate;
    return {
      agent: make(),
      tts: null,
      vad: new EnergyVad({ sampleRate: pipelineRate, stopMs: record.endpointing.minMs }),
      pipelineRate,
    };
  };
}

/**
 * What this release runs: the `echo`, `loopback`, offline `scripted` and `llm` brains;
 * pocketsphinx and Deepgram recognition; OpenAI-compatible language models; flite (default
 * offline), festival, espeak-ng, OpenAI and ElevenLabs voices; the Silero VAD. A vendor is
 * available where its key is set.
 */
export function defaultRegistry(): ProviderRegistry {
  const registry = offlineRegistry();
  registerDeepgram(registry);
  registerOpenAi(registry);
  registerElevenLabs(registry);
  return registry;
}

/** The brains and the offline engines (the vendor adapters register on top of them). */
function offlineRegistry(): ProviderRegistry {
  const offline = (name: string, voice?: string) => () => {
    const a = ttsAvailable(name, voice);
    return a.ok ? a : { ok: false as const, missing: `Debian package ${a.missing} is not installed` };
  };
  return new ProviderRegistry()
    .brain(
      'echo',
      diagnostic(() => new EchoAgent()),
    )
    .brain(
      'loopback',
      diagnostic(() => new LoopbackAgent()),
    )
    .brain('scripted', scripted)
    .brain('llm', llm)
    .speechToText(
      'pocketsphinx',
      () => new PocketsphinxStt(),
      () => {
        const a = pocketsphinxAvailable();
        return a.ok ? a : { ok: false, missing: `Debian package ${a.missing} is not installed` };
      },
    )
    .textToSpeech(
      'flite',
      (_choice, voice) => {
        if (voice !== undefined && !(voice in FLITE_VOICES))
          throw new UnavailableError(`tts flite: no voice ${voice}`);
        return new FliteTts({ voice: voice as FliteVoice | undefined });
      },
      offline('flite'),
    )
    .textToSpeech('festival', (_choice, voice) => new FestivalTts({ voice }), offline('festival'))
    .textToSpeech('espeak', (_choice, voice) => new EspeakTts({ voice }), offline('espeak'))
    .voiceDetector(
      'silero',
      () => new SileroVad(),
      () => {
        const a = sileroAvailable();
        return a.ok ? a : { ok: false, missing: a.missing };
      },
    );
}

let shared: ProviderRegistry | null = null;

/** The process-wide default registry (providers keep shared pools: decoders, warm voices). */
export function sharedRegistry(): ProviderRegistry {
  shared ??= defaultRegistry();
  return shared;
}

/**
 * Loads what the first calls would otherwise wait for (Silero detectors block the event loop
 * while they load), at boot rather than inside a call. Safe to call when engines are missing.
 */
export function warmOfflineProviders(detectors = 2): void {
  if (sileroAvailable().ok) warmSilero(detectors);
}

/** Stops the engines' shared processes (the warm festival), at shutdown. */
export function stopOfflineProviders(): void {
  stopFestival();
}
