export { ConfigError, configTableMarkdown, type LoadOptions, loadConfig, parseConfig } from './load.ts';
export { type Config, LOG_LEVELS, type SettingName, settings } from './settings.ts';
