/**
 * Whether this deployment can run an agent as configured, and if not, what is missing: a
 * Debian package, an API key, a word the recogniser cannot hear, or a part not built in this
 * release. Control shows it on every read of an agent (`ready`, `warnings`), so a setting that
 * cannot reach the brain is visible before a call finds out.
 */
import { type AgentRecord, defaultProviders, type ProviderChoice } from './config.ts';
import { missingWords, pocketsphinxAvailable } from './providers/stt/dictionary.ts';
import { ttsAvailable } from './providers/tts/availability.ts';

/** The verdict: ready when nothing is missing; each warning names one missing thing. */
export interface Readiness {
  ready: boolean;
  warnings: string[];
}

type Availability = { ok: true } | { ok: false; missing: string };

/** The checks of what is installed here; injectable so tests can make something missing. */
export interface ReadinessChecks {
  pocketsphinxAvailable(): Availability;
  missingWords(phrases: string[]): string[];
  /** `voice`: the agent's voice, checked for engines that know their voices (flite). */
  ttsAvailable(name: string, voice?: string): Availability;
}

/** The real checks: the model files, shared libraries and commands on this machine. */
export const INSTALLED: ReadinessChecks = { pocketsphinxAvailable, missingWords, ttsAvailable };

/**
 * `checks` with each answer remembered for `ttlMs`: the checks stat files, walk PATH and
 * normalise phrases (about a millisecond an agent), which a list of agents read on every
 * request should not repeat; a package installed meanwhile shows within `ttlMs`.
 */
export function cachedChecks(
  checks: ReadinessChecks = INSTALLED,
  ttlMs = 10_000,
  now: () => number = Date.now,
): ReadinessChecks {
  const memo = new Map<string, { at: number; value: unknown }>();
  const remember = <T>(key: string, compute: () => T): T => {
    const hit = memo.get(key);
    if (hit && now() - hit.at < ttlMs) return hit.value as T;
    const value = compute();
    // Bounded: agents are few, but phrases are free text.
    if (memo.size >= 10_000) memo.clear();
    memo.set(key, { at: now(), value });
    return value;
  };
  return {
    pocketsphinxAvailable: () => remember('stt', () => checks.pocketsphinxAvailable()),
    missingWords: (phrases) => remember(`words\n${phrases.join('\n')}`, () => checks.missingWords(phrases)),
    ttsAvailable: (name, voice) =>
      remember(`tts\n${name}\n${voice ?? ''}`, () => checks.ttsAvailable(name, voice)),
  };
}

/** Engines that run on this machine, from Debian packages. */
const OFFLINE_TTS = new Set(['flite', 'festival', 'espeak']);

/** Vendor providers: each needs its deployment key (`openai-compatible` carries its own in its options). */
const VENDOR_KEYS: Record<string, string | null> = {
  deepgram: 'DEEPGRAM_API_KEY',
  openai: 'OPENAI_API_KEY',
  elevenlabs: 'ELEVENLABS_API_KEY',
  // Any server speaking OpenAI's wire format; its key, if it needs one, is in its options.
  'openai-compatible': null,
};

/** What each vendor provides. */
const VENDOR_KINDS: Record<string, readonly Kind[]> = {
  deepgram: ['stt'],
  openai: ['llm', 'tts'],
  elevenlabs: ['tts'],
  'openai-compatible': ['llm'],
};

type Kind = 'stt' | 'llm' | 'tts';

/**
 * Checks an agent record against this machine (`checks`) and environment (`env`):
 *
 * - `echo` (and `loopback`) need nothing.
 * - `scripted` needs the offline recogniser (`pocketsphinx`, the default) with every word of
 *   its intents' examples in its dictionary, and an offline voice (`flite` by default,
 *   `festival`, `espeak`) that is installed.
 * - `llm` needs its model (`openai` by default), a recogniser (`deepgram` by default) and a voice
 *   (`openai` by default); a vendor provider (Deepgram, OpenAI, ElevenLabs) needs its key;
 *   `openai-compatible` carries its own. Fallbacks are checked like providers.
 */
export function agentReadiness(
  record: AgentRecord,
  env: Record<string, string | undefined>,
  checks: ReadinessChecks = INSTALLED,
): Readiness {
  const warnings: string[] = [];
  if (record.brain === 'echo' || record.brain === 'loopback') return { ready: true, warnings };

  const defaults = defaultProviders(record.brain);
  if (record.brain === 'llm') {
    warnings.push(...providerWarnings('llm', record.llm ?? { provider: defaults.llm! }, env, checks));
    if (!record.prompt) warnings.push('llm brain: no prompt (a generic assistant prompt is used)');
  }

  const stt = record.stt ?? { provider: defaults.stt };
  const tts = record.tts ?? { provider: defaults.tts };
  warnings.push(...providerWarnings('stt', stt, env, checks));
  warnings.push(...providerWarnings('tts', tts, env, checks, record.voice));

  if (record.brain === 'scripted' && stt.provider === 'pocketsphinx' && checks.pocketsphinxAvailable().ok) {
    for (const intent of record.intents) {
      const lacking = checks.missingWords(intent.examples);
      if (lacking.length > 0) {
        warnings.push(
          `intent "${intent.name}": the recogniser's dictionary lacks ${lacking.map((w) => `"${w}"`).join(', ')}`,
        );
      }
    }
  }
  return { ready: warnings.length === 0, warnings };
}

/** Warnings for one provider setting and its fallback. */
function providerWarnings(
  kind: Kind,
  choice: ProviderChoice,
  env: Record<string, string | undefined>,
  checks: ReadinessChecks,
  voice?: string,
): string[] {
  const names = [choice.provider, ...(choice.fallback ? [choice.fallback] : [])];
  return names.flatMap((name, i) => {
    const label = `${kind}${i === 0 ? '' : ' fallback'} ${name}`;
    // The voice is the primary engine's; a fallback speaks in its own default voice.
    return engineWarnings(kind, name, env, checks, i === 0 ? voice : undefined).map((w) => `${label}: ${w}`);
  });
}

/** What stands in the way of one engine, without its label. */
function engineWarnings(
  kind: Kind,
  name: string,
  env: Record<string, string | undefined>,
  checks: ReadinessChecks,
  voice: string | undefined,
): string[] {
  if (kind === 'stt' && name === 'pocketsphinx') return installed(checks.pocketsphinxAvailable());
  if (kind === 'tts' && OFFLINE_TTS.has(name)) return installed(checks.ttsAvailable(name, voice));
  if (name in VENDOR_KEYS && VENDOR_KINDS[name]!.includes(kind)) {
    const key = VENDOR_KEYS[name];
    return key && !env[key] ? [`${key} is not set`] : [];
  }
  return [`unknown ${kind} provider`];
}

/** A Debian package name, as opposed to a description of what is missing (`flite voice xyz`). */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9.+-]+$/;

function installed(availability: Availability): string[] {
  if (availability.ok) return [];
  const { missing } = availability;
  return [
    PACKAGE_NAME.test(missing) ? `Debian package ${missing} is not installed` : `${missing} is not installed`,
  ];
}
