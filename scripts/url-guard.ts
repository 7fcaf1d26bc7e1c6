/**
 * Fails when production would point somewhere it must not: a local or loopback host, a
 * private address, a reserved test domain, or a dev/staging/PR host name. It checks the host
 * names production gets (`infra/stage.ts`, under SIPAI_DOMAIN) and every URL written literally
 * in `sst.config.ts` and `infra/`. `npm run check:urls`; CI and the production deploy run it.
 *
 *   SIPAI_DOMAIN=voice.example.org bun run scripts/url-guard.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stageDomains, stageKind } from '../infra/stage.ts';

export interface UrlProblem {
  where: string;
  value: string;
  reason: string;
}

/** Top-level domains that never resolve publicly (RFC 2606, RFC 6761, RFC 6762, RFC 8375). */
const RESERVED_TLDS = new Set([
  'localhost',
  'local',
  'test',
  'invalid',
  'example',
  'internal',
  'lan',
  'home',
  'corp',
]);
/** Labels that name a non-production environment or a tunnel to a laptop. */
const DEV_LABEL =
  /^(dev|develop|development|staging|stage|stg|test|testing|qa|uat|sandbox|preview|local|pr-\d+)$/;
const TUNNEL_SUFFIXES = [
  'ngrok.io',
  'ngrok-free.app',
  'ngrok.app',
  'loca.lt',
  'trycloudflare.com',
  'nip.io',
  'sslip.io',
  'localtest.me',
];

/** Why a host must not appear in production, or undefined when it may. */
export function hostProblem(rawHost: string): string | undefined {
  const host = rawHost
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return 'localhost';
  if (host === '0.0.0.0' || host === '::' || host === '::1') return 'loopback or unspecified address';
  const v4 = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    if (a === 127) return 'loopback address';
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private address';
    if (a === 169 && b === 254) return 'link-local address';
    return 'bare IP address (production is reached by name, over TLS)';
  }
  if (host.includes(':')) return 'bare IPv6 address (production is reached by name, over TLS)';
  const labels = host.split('.');
  const tld = labels[labels.length - 1] ?? '';
  if (labels.length < 2) return 'single-label host name';
  if (RESERVED_TLDS.has(tld)) return `reserved top-level domain .${tld}`;
  if (TUNNEL_SUFFIXES.some((s) => host === s || host.endsWith(`.${s}`)))
    return 'tunnel or wildcard-DNS service';
  const devLabel = labels.find((l) => DEV_LABEL.test(l));
  if (devLabel) return `non-production label "${devLabel}"`;
  return undefined;
}

/** Why a URL must not appear in production, or undefined when it may. */
export function urlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.protocol === 'http:' || url.protocol === 'ws:' || url.protocol === 'redis:') {
    return `plain ${url.protocol.slice(0, -1)} (production uses TLS)`;
  }
  return hostProblem(url.hostname);
}

/** URL literals in source text, comments left out. `${…}` hosts are computed, checked elsewhere. */
export function urlLiterals(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found = code.match(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"`)\]}]+/gi) ?? [];
  return found.filter((u) => !/^[a-z][a-z0-9+.-]*:\/\/\$\{/i.test(u));
}

export interface GuardInput {
  /** The production domain root (SIPAI_DOMAIN). */
  domainRoot: string;
  /** Source files to scan: path → text. */
  sources: Record<string, string>;
}

export function checkProductionUrls(input: GuardInput): UrlProblem[] {
  const problems: UrlProblem[] = [];
  if (stageKind('production') !== 'production') {
    problems.push({ where: 'infra/stage.ts', value: 'production', reason: 'is not a production stage' });
  }
  let domains: Record<string, string> = {};
  try {
    domains = { ...stageDomains('production', input.domainRoot) };
  } catch (err) {
    problems.push({ where: 'SIPAI_DOMAIN', value: input.domainRoot, reason: (err as Error).message });
  }
  for (const [role, host] of Object.entries(domains)) {
    const reason = hostProblem(host);
    if (reason) problems.push({ where: `production ${role} host`, value: host, reason });
  }
  const staging = (() => {
    try {
      return Object.values(stageDomains('staging', input.domainRoot));
    } catch {
      return [];
    }
  })();
  for (const host of Object.values(domains)) {
    if (staging.includes(host))
      problems.push({ where: 'infra/stage.ts', value: host, reason: 'shared with staging' });
  }
  for (const [file, text] of Object.entries(input.sources)) {
    for (const url of urlLiterals(text)) {
      const reason = urlProblem(url);
      if (reason) problems.push({ where: file, value: url, reason });
    }
  }
  return problems;
}

/** `sst.config.ts` and every `.ts` file under `infra/`. */
export function deploySources(root: string): Record<string, string> {
  const files = [
    'sst.config.ts',
    ...readdirSync(path.join(root, 'infra'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `infra/${f}`),
  ];
  return Object.fromEntries(files.map((f) => [f, readFileSync(path.join(root, f), 'utf8')]));
}

if (import.meta.main) {
  const root = path.resolve(import.meta.dirname, '..');
  // Without SIPAI_DOMAIN (pull requests, forks) the host rules still run on a neutral name.
  const domainRoot = process.env.SIPAI_DOMAIN?.trim() || 'sipai.example.org';
  const problems = checkProductionUrls({ domainRoot, sources: deploySources(root) });
  for (const p of problems) console.error(`url-guard: ${p.where}: ${p.value}: ${p.reason}`);
  if (problems.length > 0) process.exit(1);
  console.log(`url-guard: production hosts under ${domainRoot} and URLs in sst.config.ts, infra/ are clean`);
}
