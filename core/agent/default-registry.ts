import { EchoAgent } from './brains/echo.ts';
import { LoopbackAgent } from './brains/loopback.ts';
import { ScriptedBrain } from './brains/scripted.ts';
import type { AgentRecord } from './config.ts';
import { Conversation } from './conversation.ts';
import { pocketsphinxAvailable } from './providers/stt/dictionary.ts';
import { PocketsphinxStt } from './providers/stt/pocketsphinx.ts';
import { ttsAvailable } from './providers/tts/availability.ts';
import { EspeakTts } from './providers/tts/espeak.ts';
import { FestivalTts, stopFestival } from './providers/tts/festival.ts';
import { FLITE_VOICES, FliteTts, type FliteVoice } from './providers/tts/flite.ts';
import type { SpeechToText, TextToSpeech } from './providers/types.ts';
import { SileroVad, sileroAvailable, warmSilero } from './providers/vad/silero.ts';
import { type BuildContext, type ProviderEnv, ProviderRegistry, UnavailableError } from './registry.ts';
import { EnergyVad } from './vad.ts';

/** The pipeline rate of conversational brains: what the offline recogniser and Silero take. */
export const CONVERSATION_RATE = 16000;

/**
 * The agent's voice: its `tts` choice (default `flite`), the `voice` it names, and its fallback
 * provider when the first cannot run here. Throws naming what is missing when neither can.
 */
export function agentVoice(record: AgentRecord, registry: ProviderRegistry, env: ProviderEnv): TextToSpeech {
  const choice = record.tts ?? { provider: 'flite' };
  const voice =
    record.voice ?? (typeof choice.options?.voice === 'string' ? choice.options.voice : undefined);
  try {
    return registry.require('tts', choice.provider, env)(choice, voice, env);
  } catch (err) {
    if (!choice.fallback) throw err;
    return registry.require('tts', choice.fallback, env)({ provider: choice.fallback }, undefined, env);
  }
}

function scripted({ record, registry, env }: BuildContext) {
  const sttChoice = record.stt ?? { provider: 'pocketsphinx' };
  let stt: SpeechToText;
  try {
    stt = registry.require('stt', sttChoice.provider, env)(sttChoice, env);
  } catch (err) {
    if (!sttChoice.fallback) throw err;
    stt = registry.require('stt', sttChoice.fallback, env)({ provider: sttChoice.fallback }, env);
  }
  const tts = agentVoice(record, registry, env);
  const pipelineRate = record.sampleRate ?? CONVERSATION_RATE;
  return {
    agent: new Conversation({
      brain: new ScriptedBrain(record),
      stt,
      language: record.language,
      sttModel: sttChoice.model,
      sttOptions: sttChoice.options,
    }),
    tts,
    vad: registry.createVad(pipelineRate, record.endpointing.minMs, env),
    pipelineRate,
  };
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
 * What this release runs: the `echo`, `loopback` and offline `scripted` brains; pocketsphinx
 * recognition; flite (default), festival and espeak-ng voices; the Silero VAD. The `llm` brain
 * and the vendor adapters (Deepgram, OpenAI, ElevenLabs) are not registered: agents that name
 * them are reported not ready and their calls get an apology.
 */
export function defaultRegistry(): ProviderRegistry {
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
