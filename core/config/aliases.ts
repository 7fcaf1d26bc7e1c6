import type { SettingName } from './settings.ts';

type Env = Record<string, string | undefined>;

/**
 * Environment names that deployment runbooks (SSM parameters, task definitions) use for our
 * settings. Each is read only when our own name is unset: ours win. The public-URL ones must
 * agree with PUBLIC_BASE_URL (and each other), or boot fails naming both.
 */
export interface EnvAlias {
  alias: string;
  /** The settings it fills. */
  settings: SettingName[];
  /** What the README says it does. */
  doc: string;
}

/** Which alias filled which settings (or was ignored because ours were set), for the boot log. */
export interface AliasUse {
  alias: string;
  settings: SettingName[];
  /** True when our own names were set, so the alias was not used. */
  ignored: boolean;
}

export interface ResolvedAliases {
  /** The environment with every used alias written under our names. */
  env: Env;
  used: AliasUse[];
  problems: { name: string; reason: string }[];
}

/** Aliases of PUBLIC_BASE_URL: they must all name its origin. */
const PUBLIC_URL_ALIASES = ['API_BASE_URL', 'WEBHOOK_BASE_URL', 'TELEPHONY_WEBHOOK_BASE_URL'] as const;

/** The alias table; the README's configuration table names each next to its setting. */
export const ENV_ALIASES: readonly EnvAlias[] = [
  { alias: 'DB_URL', settings: ['DATABASE_URL'], doc: 'as is' },
  {
    alias: 'MAX_CONCURRENT_CALLS',
    settings: ['TELEPHONY_OUTBOUND_MAX_CONCURRENCY'],
    doc: 'as is',
  },
  {
    alias: 'JAMBONZ_OUTCALL_URL',
    settings: ['JAMBONZ_API_BASE_URL', 'JAMBONZ_ACCOUNT_SID'],
    doc: 'the full `…/v1/Accounts/<sid>/Calls` URL, split into the API base and the account SID',
  },
  { alias: 'JAMBONZ_TOKEN', settings: ['JAMBONZ_API_KEY'], doc: '`Bearer <key>` or the bare key' },
  { alias: 'JAMBONZ_APP_SID', settings: ['JAMBONZ_APPLICATION_SID'], doc: 'as is' },
  ...PUBLIC_URL_ALIASES.map(
    (alias): EnvAlias => ({
      alias,
      settings: ['PUBLIC_BASE_URL'],
      doc: 'its origin; must match PUBLIC_BASE_URL and the other public-URL aliases',
    }),
  ),
  {
    alias: 'REALTIME_WS_URL',
    settings: ['PUBLIC_WS_BASE_URL'],
    doc: 'its origin (e.g. `wss://host/realtime/voice` gives `wss://host`); must match PUBLIC_WS_BASE_URL, or PUBLIC_BASE_URL in ws(s) form',
  },
];

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/** `https://host:port` of a URL, or null when it is not one. */
function originOf(raw: string): string | null {
  try {
    const u = new URL(raw.trim());
    return u.host ? `${u.protocol}//${u.host}` : null;
  } catch {
    return null;
  }
}

/** The http(s) form of a ws(s) origin, so the two kinds of URL can be compared. */
const asHttp = (origin: string) => origin.replace(/^ws/, 'http');

/** `https://x/api/v1/Accounts/<sid>/Calls` → base `https://x/api` and the SID. */
function splitOutcallUrl(raw: string): { base: string; sid: string } | null {
  const m = /^(https?:\/\/.+?)\/v1\/Accounts\/([^/?#]+)\/Calls\/?$/.exec(raw.trim());
  return m ? { base: m[1]!, sid: decodeURIComponent(m[2]!) } : null;
}

/**
 * Writes the runbooks' names under ours where ours are unset, and checks that every public URL
 * names the same deployment. Values are never copied into problems or uses, except URLs.
 */
export function resolveAliases(input: Env): ResolvedAliases {
  const env: Env = { ...input };
  const used: AliasUse[] = [];
  const problems: { name: string; reason: string }[] = [];
  const fill = (alias: string, values: Partial<Record<SettingName, string>>) => {
    const names = Object.keys(values) as SettingName[];
    const ignored = names.some((n) => set(input[n]));
    if (!ignored) for (const n of names) env[n] = values[n];
    used.push({ alias, settings: names, ignored });
  };

  if (set(input.DB_URL)) fill('DB_URL', { DATABASE_URL: input.DB_URL });
  if (set(input.MAX_CONCURRENT_CALLS)) {
    fill('MAX_CONCURRENT_CALLS', { TELEPHONY_OUTBOUND_MAX_CONCURRENCY: input.MAX_CONCURRENT_CALLS });
  }
  if (set(input.JAMBONZ_OUTCALL_URL)) {
    const parts = splitOutcallUrl(input.JAMBONZ_OUTCALL_URL);
    if (!parts) {
      problems.push({
        name: 'JAMBONZ_OUTCALL_URL',
        reason: 'must be a Jambonz create-call URL, https://<host>[/<path>]/v1/Accounts/<account sid>/Calls',
      });
    } else {
      fill('JAMBONZ_OUTCALL_URL', { JAMBONZ_API_BASE_URL: parts.base, JAMBONZ_ACCOUNT_SID: parts.sid });
    }
  }
  if (set(input.JAMBONZ_TOKEN)) {
    fill('JAMBONZ_TOKEN', { JAMBONZ_API_KEY: input.JAMBONZ_TOKEN.trim().replace(/^Bearer\s+/i, '') });
  }
  if (set(input.JAMBONZ_APP_SID)) fill('JAMBONZ_APP_SID', { JAMBONZ_APPLICATION_SID: input.JAMBONZ_APP_SID });

  // Public URLs: PUBLIC_BASE_URL and its aliases must all be one origin.
  const publicUrls: { name: string; origin: string; raw: string }[] = [];
  for (const name of ['PUBLIC_BASE_URL', ...PUBLIC_URL_ALIASES]) {
    const raw = input[name];
    if (!set(raw)) continue;
    const origin = originOf(raw);
    if (!origin || !/^https?:$/.test(new URL(origin).protocol)) {
      if (name !== 'PUBLIC_BASE_URL') problems.push({ name, reason: 'must be an http(s) URL' });
      continue;
    }
    publicUrls.push({ name, origin, raw: raw.trim() });
  }
  const first = publicUrls[0];
  for (const other of publicUrls.slice(1)) {
    if (first && other.origin !== first.origin) {
      problems.push({
        name: other.name,
        reason: `(${other.raw}) does not match ${first.name} (${first.raw}): both must name the same public origin`,
      });
    }
  }
  for (const alias of PUBLIC_URL_ALIASES) {
    const entry = publicUrls.find((u) => u.name === alias);
    if (entry) fill(alias, { PUBLIC_BASE_URL: entry.origin });
  }

  if (set(input.REALTIME_WS_URL)) {
    const raw = input.REALTIME_WS_URL.trim();
    const origin = originOf(raw);
    if (!origin || !/^wss?:$/.test(new URL(origin).protocol)) {
      problems.push({ name: 'REALTIME_WS_URL', reason: 'must be a ws(s) URL' });
    } else {
      const ours = set(input.PUBLIC_WS_BASE_URL) ? input.PUBLIC_WS_BASE_URL.trim() : null;
      const oursOrigin = ours ? originOf(ours) : null;
      const against = oursOrigin
        ? { name: 'PUBLIC_WS_BASE_URL', raw: ours!, origin: asHttp(oursOrigin) }
        : first
          ? { name: first.name, raw: first.raw, origin: first.origin }
          : null;
      if (against && asHttp(origin) !== against.origin) {
        problems.push({
          name: 'REALTIME_WS_URL',
          reason: `(${raw}) does not match ${against.name} (${against.raw}): both must name the same public host`,
        });
      }
      fill('REALTIME_WS_URL', { PUBLIC_WS_BASE_URL: origin });
    }
  }
  return { env, used, problems };
}
