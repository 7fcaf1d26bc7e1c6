export { type AliasUse, ENV_ALIASES, type EnvAlias } from './aliases.ts';
export {
  ConfigError,
  configAliasesUsed,
  configTableMarkdown,
  type LoadOptions,
  loadConfig,
  logConfigAliases,
  parseConfig,
} from './load.ts';
export { type Config, LOG_LEVELS, type SettingName, settings } from './settings.ts';
