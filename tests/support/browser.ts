import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's `chromium`, or another Chromium/Chrome on PATH; null when none is installed. */
export function chromiumBinary(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return null;
}
