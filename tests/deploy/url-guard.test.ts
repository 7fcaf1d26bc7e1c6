import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkProductionUrls,
  deploySources,
  hostProblem,
  urlLiterals,
  urlProblem,
} from '../../scripts/url-guard.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('url-guard', () => {
  it('passes the production settings in sst.config.ts and infra/ as they are', () => {
    expect(checkProductionUrls({ domainRoot: 'voice.example.org', sources: deploySources(ROOT) })).toEqual(
      [],
    );
  });

  it.each([
    ['localhost', 'localhost'],
    ['api.localhost', 'localhost'],
    ['127.0.0.1', 'loopback'],
    ['10.0.3.4', 'private'],
    ['192.168.1.10', 'private'],
    ['172.20.0.1', 'private'],
    ['0.0.0.0', 'loopback or unspecified'],
    ['api.voice.local', 'reserved top-level domain .local'],
    ['api.dev.voice.example.org', 'non-production label "dev"'],
    ['api.staging.voice.example.org', 'non-production label "staging"'],
    ['api.pr-12.voice.example.org', 'non-production label "pr-12"'],
    ['abc123.ngrok-free.app', 'tunnel'],
    ['metadata', 'single-label'],
  ])('refuses %s', (host, reason) => {
    expect(hostProblem(host)).toContain(reason);
  });

  it('accepts public production names', () => {
    expect(hostProblem('api.voice.example.org')).toBeUndefined();
    expect(hostProblem('hooks.sipai.io')).toBeUndefined();
  });

  it('refuses plain-text schemes for production URLs', () => {
    expect(urlProblem('http://api.voice.example.org')).toContain('plain http');
    expect(urlProblem('ws://api.voice.example.org/realtime/voice')).toContain('plain ws');
    expect(urlProblem('redis://cache.voice.example.org:6379')).toContain('plain redis');
    expect(urlProblem('wss://api.voice.example.org/realtime/voice')).toBeUndefined();
  });

  it('finds URL literals in code, not in comments or computed hosts', () => {
    const source = [
      '// see http://localhost:3000 for the local stack',
      "const a = 'https://api.voice.example.org/v1';",
      `const b = \`https://\${domains.api}\`;`,
      '/* http://127.0.0.1 */ const c = "postgres://10.0.0.5:5432/db";',
    ].join('\n');
    expect(urlLiterals(source)).toEqual(['https://api.voice.example.org/v1', 'postgres://10.0.0.5:5432/db']);
  });

  it('fails on a dev host in a production source, and on a dev domain root', () => {
    const sources = { 'sst.config.ts': "environment: { PUBLIC_BASE_URL: 'http://localhost:3000' }" };
    const problems = checkProductionUrls({ domainRoot: 'voice.example.org', sources });
    expect(problems).toEqual([
      { where: 'sst.config.ts', value: 'http://localhost:3000', reason: 'plain http (production uses TLS)' },
    ]);
    const devRoot = checkProductionUrls({ domainRoot: 'dev.voice.example.org', sources: {} });
    expect(devRoot.map((p) => p.reason)).toContain('non-production label "dev"');
    expect(checkProductionUrls({ domainRoot: '', sources: {} })[0]?.reason).toMatch(
      /SIPAI_DOMAIN is not set/,
    );
  });
});
