import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Logger } from '../observability/log.ts';
import { type AliasUse, ENV_ALIASES, resolveAliases } from './aliases.ts';
import { type Config, type SettingName, settings } from './settings.ts';
import { loadSsmParameters, ssmClientFromEnv } from './ssm.ts';

type Env = Record<string, string | undefined>;

/** Boot fails with this: every bad variable, named, with the reason. */
export class ConfigError extends Error {
  constructor(readonly problems: { name: string; reason: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.name} ${p.reason}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Values used when the variable is unset, per entry point (e.g. core's PORT 8081). */
  defaults?: Partial<Record<SettingName, string>>;
  /** SSM client to use when SSM_PREFIX is set (default: one built from the environment). */
  ssmClient?: SSMClient;
}

/**
 * Validates the environment against the settings table, once, into one frozen object.
 * Synchronous: no SSM. Every invalid variable is reported, not only the first.
 */
export function parseConfig(input: Env, opts: Pick<LoadOptions, 'defaults'> = {}): Config {
  const { env, used, problems } = resolveAliases(input);
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(settings) as SettingName[]) {
    const raw = env[name] ?? opts.defaults?.[name];
    try {
      out[name] = settings[name].parse(raw);
    } catch (err) {
      problems.push({ name, reason: (err as Error).message });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (!out.PUBLIC_BASE_URL) out.PUBLIC_BASE_URL = `http://localhost:${out.PORT}`;
  const config = Object.freeze(out) as Config;
  aliasUses.set(config, used);
  return config;
}

const aliasUses = new WeakMap<Config, readonly AliasUse[]>();
const aliasesLogged = new WeakSet<Config>();

/** The runbook names this configuration was read from (see `ENV_ALIASES`), in table order. */
export function configAliasesUsed(config: Config): readonly AliasUse[] {
  return aliasUses.get(config) ?? [];
}

/**
 * Logs, once per configuration, which runbook names it was read from (names only, never
 * values) and which were ignored because our own names were set. Both planes call it at boot;
 * `npm start` shares one configuration between them, so it is logged once.
 */
export function logConfigAliases(config: Config, log: Logger): void {
  if (aliasesLogged.has(config)) return;
  aliasesLogged.add(config);
  for (const use of configAliasesUsed(config)) {
    if (use.ignored) {
      log.warn({ alias: use.alias, settings: use.settings }, 'config alias ignored: our setting is set');
    } else {
      log.info({ alias: use.alias, settings: use.settings }, 'config alias used');
    }
  }
}

/**
 * The boot path: with SSM_PREFIX set, parameters under it are loaded first and the
 * environment is laid over them (the environment wins); then everything is validated.
 */
export async function loadConfig(env: Env = process.env, opts: LoadOptions = {}): Promise<Config> {
  const prefix = env.SSM_PREFIX;
  if (!prefix) return parseConfig(env, opts);
  settings.SSM_PREFIX.parse(prefix);
  let fromSsm: Record<string, string>;
  try {
    fromSsm = await loadSsmParameters(prefix, opts.ssmClient ?? ssmClientFromEnv(env));
  } catch (err) {
    throw new ConfigError([
      { name: 'SSM_PREFIX', reason: `could not be loaded from SSM: ${(err as Error).message}` },
    ]);
  }
  const merged: Env = { ...fromSsm };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') merged[k] = v;
  return parseConfig(merged, opts);
}

/** The README's configuration table, generated from the settings table. */
export function configTableMarkdown(): string {
  const rows = ['| variable | default | read by | what it does |', '|---|---|---|---|'];
  for (const [name, s] of Object.entries(settings)) {
    const scope = s.scope === 'all' ? 'core, control' : s.scope;
    const aliases = ENV_ALIASES.filter((a) => a.settings.includes(name as SettingName))
      .map((a) => `\`${a.alias}\`${a.doc === 'as is' ? '' : ` (${a.doc})`}`)
      .join(', ');
    const aliasText = aliases ? ` Also read from ${aliases} when unset.` : '';
    rows.push(
      `| \`${name}\` | ${s.defaultText === '(unset)' ? '(unset)' : `\`${s.defaultText}\``} | ${scope} | ${s.doc}${s.secret ? ' Secret.' : ''}${aliasText} |`,
    );
  }
  return rows.join('\n');
}
