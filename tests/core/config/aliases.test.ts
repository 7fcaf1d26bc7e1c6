import { describe, expect, it } from 'vitest';
import { ConfigError, configAliasesUsed, logConfigAliases, parseConfig } from '../../../core/config/index.ts';
import type { Logger } from '../../../core/observability/log.ts';

function problems(env: Record<string, string>): { name: string; reason: string }[] {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('parseConfig accepted the environment');
}

/** A logger that keeps what it was told (fields and message). */
function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ level, fields, msg });
    };
  return { lines, log: { info: at('info'), warn: at('warn') } as unknown as Logger };
}

describe('runbook environment names as aliases of ours', () => {
  it('reads DB_URL, MAX_CONCURRENT_CALLS, JAMBONZ_OUTCALL_URL, JAMBONZ_TOKEN and JAMBONZ_APP_SID', () => {
    const c = parseConfig({
      DB_URL: 'postgres://u:p@db.internal:5432/sipai',
      MAX_CONCURRENT_CALLS: '2',
      JAMBONZ_OUTCALL_URL: 'https://jambonz.example.com/api/v1/Accounts/acc-123/Calls',
      JAMBONZ_TOKEN: 'Bearer tok-abc',
      JAMBONZ_APP_SID: 'app-456',
    });
    expect(c.DATABASE_URL).toBe('postgres://u:p@db.internal:5432/sipai');
    expect(c.TELEPHONY_OUTBOUND_MAX_CONCURRENCY).toBe(2);
    expect(c.JAMBONZ_API_BASE_URL).toBe('https://jambonz.example.com/api');
    expect(c.JAMBONZ_ACCOUNT_SID).toBe('acc-123');
    expect(c.JAMBONZ_API_KEY).toBe('tok-abc');
    expect(c.JAMBONZ_APPLICATION_SID).toBe('app-456');
    expect(parseConfig({ JAMBONZ_TOKEN: 'bare-token' }).JAMBONZ_API_KEY).toBe('bare-token');
    expect(configAliasesUsed(c).map((u) => u.alias)).toEqual([
      'DB_URL',
      'MAX_CONCURRENT_CALLS',
      'JAMBONZ_OUTCALL_URL',
      'JAMBONZ_TOKEN',
      'JAMBONZ_APP_SID',
    ]);
  });

  it('lets our names win when both are set, and logs which alias was used or ignored, never a value', () => {
    const c = parseConfig({
      DATABASE_URL: 'postgres://ours/db',
      DB_URL: 'postgres://theirs/db',
      JAMBONZ_API_KEY: 'ours-key',
      JAMBONZ_TOKEN: 'Bearer theirs-key',
      MAX_CONCURRENT_CALLS: '7',
    });
    expect(c.DATABASE_URL).toBe('postgres://ours/db');
    expect(c.JAMBONZ_API_KEY).toBe('ours-key');
    const { lines, log } = recordingLog();
    logConfigAliases(c, log);
    logConfigAliases(c, log); // once per configuration
    expect(lines).toEqual([
      {
        level: 'warn',
        fields: { alias: 'DB_URL', settings: ['DATABASE_URL'] },
        msg: 'config alias ignored: our setting is set',
      },
      {
        level: 'info',
        fields: { alias: 'MAX_CONCURRENT_CALLS', settings: ['TELEPHONY_OUTBOUND_MAX_CONCURRENCY'] },
        msg: 'config alias used',
      },
      {
        level: 'warn',
        fields: { alias: 'JAMBONZ_TOKEN', settings: ['JAMBONZ_API_KEY'] },
        msg: 'config alias ignored: our setting is set',
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain('theirs');
  });

  it('validates what an alias gives as if our name had been set, naming ours', () => {
    expect(problems({ MAX_CONCURRENT_CALLS: 'lots' })).toEqual([
      { name: 'TELEPHONY_OUTBOUND_MAX_CONCURRENCY', reason: 'must be a whole number, got "lots"' },
    ]);
    expect(problems({ DB_URL: 'mysql://nope' }).map((p) => p.name)).toEqual(['DATABASE_URL']);
    expect(problems({ JAMBONZ_OUTCALL_URL: 'https://jambonz.example.com/api' })).toEqual([
      {
        name: 'JAMBONZ_OUTCALL_URL',
        reason: 'must be a Jambonz create-call URL, https://<host>[/<path>]/v1/Accounts/<account sid>/Calls',
      },
    ]);
  });

  it('takes the public URLs as PUBLIC_BASE_URL (and its ws form) when they agree', () => {
    const c = parseConfig({
      API_BASE_URL: 'https://voice.example.com/v1',
      WEBHOOK_BASE_URL: 'https://voice.example.com',
      TELEPHONY_WEBHOOK_BASE_URL: 'https://voice.example.com/telephony',
      REALTIME_WS_URL: 'wss://voice.example.com/realtime/voice',
    });
    expect(c.PUBLIC_BASE_URL).toBe('https://voice.example.com');
    expect(c.PUBLIC_WS_BASE_URL).toBe('wss://voice.example.com');
    const ours = parseConfig({
      PUBLIC_BASE_URL: 'https://voice.example.com',
      API_BASE_URL: 'https://voice.example.com/',
    });
    expect(ours.PUBLIC_BASE_URL).toBe('https://voice.example.com');
  });

  it('fails boot on a public URL that disagrees, naming both', () => {
    const err = new ConfigError(
      problems({ PUBLIC_BASE_URL: 'https://a.example.com', API_BASE_URL: 'https://b.example.com' }),
    );
    expect(err.message).toContain('API_BASE_URL');
    expect(err.message).toContain('PUBLIC_BASE_URL');
    expect(err.message).toContain('https://b.example.com');

    const between = problems({
      WEBHOOK_BASE_URL: 'https://a.example.com',
      TELEPHONY_WEBHOOK_BASE_URL: 'http://a.example.com',
    });
    expect(between).toHaveLength(1);
    expect(between[0]!.name).toBe('TELEPHONY_WEBHOOK_BASE_URL');
    expect(between[0]!.reason).toContain('WEBHOOK_BASE_URL');

    const ws = problems({
      PUBLIC_BASE_URL: 'https://a.example.com',
      REALTIME_WS_URL: 'wss://b.example.com/realtime/voice',
    });
    expect(ws.map((p) => p.name)).toEqual(['REALTIME_WS_URL']);
    expect(ws[0]!.reason).toContain('PUBLIC_BASE_URL');
    const wsOurs = problems({
      PUBLIC_WS_BASE_URL: 'wss://media.example.com',
      REALTIME_WS_URL: 'wss://a.example.com/realtime/voice',
    });
    expect(wsOurs[0]!.reason).toContain('PUBLIC_WS_BASE_URL');
    // A separate media host is ours to set; the alias agreeing with it is fine.
    expect(
      parseConfig({
        PUBLIC_BASE_URL: 'https://a.example.com',
        PUBLIC_WS_BASE_URL: 'wss://media.example.com',
        REALTIME_WS_URL: 'wss://media.example.com/realtime/voice',
      }).PUBLIC_WS_BASE_URL,
    ).toBe('wss://media.example.com');
  });
});
