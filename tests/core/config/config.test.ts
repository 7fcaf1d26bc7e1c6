import { readFileSync } from 'node:fs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  configTableMarkdown,
  loadConfig,
  parseConfig,
  settings,
} from '../../../core/config/index.ts';
import { type FakeSsm, startFakeSsm } from '../../support/fakes/ssm-server.ts';

describe('parseConfig', () => {
  it('applies defaults and freezes the result', () => {
    const c = parseConfig({});
    expect(c.PORT).toBe(3000);
    expect(c.HOST).toBe('0.0.0.0');
    expect(c.PUBLIC_BASE_URL).toBe('http://localhost:3000');
    expect(c.REDIS_URL).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes per-entry defaults and lets the environment override them', () => {
    expect(parseConfig({}, { defaults: { PORT: '8081' } }).PORT).toBe(8081);
    expect(parseConfig({ PORT: '9000' }, { defaults: { PORT: '8081' } }).PORT).toBe(9000);
  });

  it('names every invalid variable and why', () => {
    let err: unknown;
    try {
      parseConfig({ PORT: 'abc', REDIS_URL: 'http://nope', LOG_LEVEL: 'loud' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const names = (err as ConfigError).problems.map((p) => p.name).sort();
    expect(names).toEqual(['LOG_LEVEL', 'PORT', 'REDIS_URL']);
    expect((err as ConfigError).message).toContain('PORT must be a whole number, got "abc"');
  });

  it('rejects out-of-range numbers', () => {
    expect(() => parseConfig({ PORT: '70000' })).toThrow(/PORT must be between 0 and 65535/);
  });
});

describe('loadConfig with SSM_PREFIX', () => {
  let ssm: FakeSsm | undefined;
  afterEach(() => ssm?.stop());

  const clientFor = (url: string) =>
    new SSMClient({
      region: 'eu-west-1',
      endpoint: url,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });

  it('loads every page, decrypted, and lets the environment win', async () => {
    ssm = startFakeSsm([
      { name: '/sipai-prod/LOG_LEVEL', value: 'warn' },
      { name: '/sipai-prod/REDIS_URL', value: 'redis://cache.internal:6379', secure: true },
      { name: '/sipai-prod/PORT', value: '7000' },
      { name: '/sipai-prod/core/SHUTDOWN_GRACE_MS', value: '1234' },
      { name: '/sipai-prod/lowercase', value: 'ignored' },
      { name: '/other/LOG_LEVEL', value: 'debug' },
    ]);
    const config = await loadConfig(
      { SSM_PREFIX: '/sipai-prod/', PORT: '9999' },
      { ssmClient: clientFor(ssm.url) },
    );
    expect(config.LOG_LEVEL).toBe('warn');
    expect(config.REDIS_URL).toBe('redis://cache.internal:6379');
    expect(config.SHUTDOWN_GRACE_MS).toBe(1234);
    expect(config.PORT).toBe(9999);
    // 5 matching parameters at 2 per page: 3 requests, each asking for decryption.
    expect(ssm.requests).toHaveLength(3);
    expect(ssm.requests.every((r) => r.target === 'AmazonSSM.GetParametersByPath')).toBe(true);
    expect(ssm.requests.every((r) => r.body.WithDecryption === true && r.body.Recursive === true)).toBe(true);
  });

  it('fails boot naming SSM_PREFIX when SSM refuses', async () => {
    ssm = startFakeSsm([], { failWith: 400 });
    await expect(
      loadConfig({ SSM_PREFIX: '/sipai-prod/' }, { ssmClient: clientFor(ssm.url) }),
    ).rejects.toThrow(/SSM_PREFIX could not be loaded from SSM: not allowed/);
  });

  it('validates what SSM returned', async () => {
    ssm = startFakeSsm([{ name: '/p/PORT', value: 'abc' }]);
    await expect(loadConfig({ SSM_PREFIX: '/p/' }, { ssmClient: clientFor(ssm.url) })).rejects.toThrow(
      /PORT must be/,
    );
  });
});

describe('README configuration table', () => {
  it('lists every setting exactly as generated', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configTableMarkdown());
    for (const name of Object.keys(settings)) expect(readme).toContain(`\`${name}\``);
  });
});
