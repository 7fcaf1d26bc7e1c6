import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Whether an offline voice can run on this host, and if not which Debian package to install.
 * Checked at configuration time so an agent naming a missing engine is refused with a reason
 * instead of failing on its first call.
 */
export type Availability = { ok: true } | { ok: false; missing: string };

/** The offline engines this folder implements, by provider name. */
export const OFFLINE_TTS = ['flite', 'festival', 'espeak'] as const;
export type OfflineTtsName = (typeof OFFLINE_TTS)[number];

/** Where festvox-kallpc16k installs the `kal_diphone` voice. */
export const FESTIVAL_KAL_DIR = '/usr/share/festival/voices/english/kal_diphone';

/** Whether an executable named `bin` is on PATH (no process is started). */
export function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

let fliteVoices: string[] | null = null;

/** The voices the installed flite has compiled in (`flite -lv`), read once. */
export function fliteVoiceList(): string[] {
  if (fliteVoices) return fliteVoices;
  try {
    const out = execFileSync('flite', ['-lv'], { encoding: 'utf8', timeout: 5000 });
    fliteVoices = out.replace(/^.*?:/s, '').trim().split(/\s+/).filter(Boolean);
  } catch {
    fliteVoices = [];
  }
  return fliteVoices;
}

/**
 * Whether engine `name` (and, for flite, `voice`) is installed: `{ ok: false, missing }` names
 * the Debian package to install (`flite`, `festival`, `festvox-kallpc16k`, `espeak-ng`).
 */
export function ttsAvailable(name: string, voice?: string): Availability {
  switch (name) {
    case 'flite':
      if (!onPath('flite')) return { ok: false, missing: 'flite' };
      if (voice && !fliteVoiceList().includes(voice)) {
        return { ok: false, missing: `flite voice ${voice}` };
      }
      return { ok: true };
    case 'festival':
      if (!onPath('festival')) return { ok: false, missing: 'festival' };
      if (!existsSync(FESTIVAL_KAL_DIR)) return { ok: false, missing: 'festvox-kallpc16k' };
      return { ok: true };
    case 'espeak':
    case 'espeak-ng':
      return onPath('espeak-ng') ? { ok: true } : { ok: false, missing: 'espeak-ng' };
    default:
      return { ok: false, missing: `offline text-to-speech engine ${name}` };
  }
}
