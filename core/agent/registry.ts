import type { Agent } from './agent.ts';
import type { AgentRecord, ProviderChoice } from './config.ts';
import type { LanguageModel, SpeechToText, TextToSpeech, VoiceDetector } from './providers/types.ts';
import { EnergyVad, ModelVad, type Vad } from './vad.ts';

/** The deployment's settings a provider may need (API keys, base URLs). */
export type ProviderEnv = Readonly<Record<string, string | undefined>>;

/** The settings providers read, by name (they never see the rest of the configuration). */
export const PROVIDER_SETTINGS = [
  'OPENAI_API_KEY',
  'OPENAI_BASE_URL',
  'DEEPGRAM_API_KEY',
  'DEEPGRAM_BASE_URL',
  'ELEVENLABS_API_KEY',
  'ELEVENLABS_BASE_URL',
  'WEBHOOK_SECRET',
] as const;

/** The provider settings out of a validated configuration (environment, SSM). */
export function providerEnvOf(
  config: { readonly [K in (typeof PROVIDER_SETTINGS)[number]]?: string },
): ProviderEnv {
  const env: Record<string, string | undefined> = {};
  for (const name of PROVIDER_SETTINGS) env[name] = config[name];
  return Object.freeze(env);
}

/** What a brain needs to run one call, built from the agent's record. */
export interface AgentBuild {
  agent: Agent;
  /** The voice `say(text)` speaks with; null for brains that never speak text. */
  tts: TextToSpeech | null;
  vad: Vad;
  /** The pipeline rate this brain wants; default: the agent's, else the wire's. */
  pipelineRate?: number;
}

export interface BuildContext {
  record: AgentRecord;
  /** The call's wire rate, for brains that keep it (echo, loopback). */
  wireRate: number;
  registry: ProviderRegistry;
  env: ProviderEnv;
}

export type BrainFactory = (ctx: BuildContext) => AgentBuild | Promise<AgentBuild>;
export type SttFactory = (choice: ProviderChoice | undefined, env: ProviderEnv) => SpeechToText;
/** Builds a language model from the agent's `llm` choice (model, options) and the deployment's env. */
export type LlmFactory = (choice: ProviderChoice | undefined, env: ProviderEnv) => LanguageModel;
export type TtsFactory = (
  choice: ProviderChoice | undefined,
  voice: string | undefined,
  env: ProviderEnv,
) => TextToSpeech;
export type VadFactory = () => VoiceDetector;

/** Whether a provider can run here, and if not, what is missing (a package, a key). */
export type Availability = { ok: true } | { ok: false; missing: string };

interface Entry<F> {
  create: F;
  available: (env: ProviderEnv) => Availability;
}

/** Availability of a provider that needs nothing (it still takes the env, like every check). */
const always: (env: ProviderEnv) => Availability = () => ({ ok: true });

/**
 * Providers and brains by name: one registration per vendor or engine file, looked up from the
 * agent's config, so core never switches on a vendor. Each entry says whether it can run here
 * (its Debian package, its key), which is what readiness warnings and call-time refusals use.
 */
export class ProviderRegistry {
  readonly brains = new Map<string, Entry<BrainFactory>>();
  readonly stt = new Map<string, Entry<SttFactory>>();
  readonly llm = new Map<string, Entry<LlmFactory>>();
  readonly tts = new Map<string, Entry<TtsFactory>>();
  readonly vad = new Map<string, Entry<VadFactory>>();

  brain(name: string, create: BrainFactory, available = always): this {
    this.brains.set(name, { create, available });
    return this;
  }

  speechToText(name: string, create: SttFactory, available = always): this {
    this.stt.set(name, { create, available });
    return this;
  }

  languageModel(name: string, create: LlmFactory, available = always): this {
    this.llm.set(name, { create, available });
    return this;
  }

  textToSpeech(name: string, create: TtsFactory, available = always): this {
    this.tts.set(name, { create, available });
    return this;
  }

  voiceDetector(name: string, create: VadFactory, available = always): this {
    this.vad.set(name, { create, available });
    return this;
  }

  /** A provider of `kind` by name, or a thrown `UnavailableError` naming what is missing. */
  require(kind: 'brains', name: string, env: ProviderEnv): BrainFactory;
  require(kind: 'stt', name: string, env: ProviderEnv): SttFactory;
  require(kind: 'llm', name: string, env: ProviderEnv): LlmFactory;
  require(kind: 'tts', name: string, env: ProviderEnv): TtsFactory;
  require(kind: 'vad', name: string, env: ProviderEnv): VadFactory;
  require(kind: 'brains' | 'stt' | 'llm' | 'tts' | 'vad', name: string, env: ProviderEnv): unknown {
    const entry = (this[kind] as Map<string, Entry<unknown>>).get(name);
    if (!entry) throw new UnavailableError(`${label(kind)} ${name}: not available in this release`);
    const a = entry.available(env);
    if (!a.ok) throw new UnavailableError(`${label(kind)} ${name}: ${a.missing}`);
    return entry.create;
  }

  /**
   * Caller speech detection at `sampleRate`: the model VAD when it can run here, else the
   * energy detector. `stopMs` is the end-of-turn silence.
   */
  createVad(sampleRate: number, stopMs: number, env: ProviderEnv, opts: { model?: boolean } = {}): Vad {
    for (const [, entry] of opts.model === false ? [] : this.vad) {
      if (!entry.available(env).ok) continue;
      try {
        return new ModelVad(entry.create(), { sampleRate, stopMs });
      } catch {
        // A model that fails to load leaves the energy detector.
      }
    }
    return new EnergyVad({ sampleRate, stopMs });
  }

  /** Any voice that can run here (for apologies when the agent's own cannot), or null. */
  fallbackVoice(env: ProviderEnv): TextToSpeech | null {
    for (const [, entry] of this.tts) {
      if (!entry.available(env).ok) continue;
      try {
        return entry.create(undefined, undefined, env);
      } catch {
        // Try the next one.
      }
    }
    return null;
  }

  /** Builds the agent of one call, or throws `UnavailableError` naming what this node lacks. */
  async build(record: AgentRecord, wireRate: number, env: ProviderEnv): Promise<AgentBuild> {
    const create = this.require('brains', record.brain, env);
    return create({ record, wireRate, registry: this, env });
  }
}

function label(kind: string): string {
  return kind === 'brains' ? 'brain' : kind;
}

/** This node cannot run the agent as configured (a missing package, key or adapter). */
export class UnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnavailableError';
  }
}
