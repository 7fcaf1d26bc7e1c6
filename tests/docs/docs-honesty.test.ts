/**
 * The repository explains itself, and what it says is checked: no citation of a document that
 * is not in the repository, every relative link resolves, and the claims of README's
 * architecture section, docs/architecture.md and docs/providers.md that name code match it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_PATH_ALIASES } from '../../core/lambda.ts';
import { routeOf, WEBHOOK_ROUTES } from '../../infra/routes.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const SOURCE_DIRS = ['core', 'control', 'infra', 'scripts', 'perf', 'tests', 'docs'];

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(path.join(ROOT, dir))) {
    const rel = path.join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) continue;
    if (statSync(path.join(ROOT, rel)).isDirectory()) yield* files(rel);
    else if (/\.(ts|md|json|sql)$/.test(name)) yield rel;
  }
}

const docs = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The section of README.md under `## <title>`, up to the next `## `. */
function readmeSection(title: string): string {
  const readme = read('README.md');
  const start = readme.indexOf(`## ${title}\n`);
  if (start < 0) throw new Error(`README has no section ${title}`);
  const end = readme.indexOf('\n## ', start + 3);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('documentation', () => {
  it('cites no document the repository does not have', () => {
    const missing = /\b(ARCHITECTURE|PROTOCOLS|STYLE)\.md\b/;
    const offenders: string[] = [];
    for (const dir of SOURCE_DIRS)
      for (const file of files(dir)) {
        if (file === path.join('tests', 'docs', 'docs-honesty.test.ts')) continue;
        if (missing.test(read(file))) offenders.push(file);
      }
    for (const file of ['README.md', 'local.ts', 'sst.config.ts'])
      if (missing.test(read(file))) offenders.push(file);
    expect(offenders).toEqual([]);
  });

  it('links only to files that exist', () => {
    const broken: string[] = [];
    for (const doc of docs) {
      for (const [, target] of read(doc).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(path.resolve(ROOT, path.dirname(doc), target))) broken.push(`${doc} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("README's architecture diagram names only folders, modules and workers that exist", () => {
    const section = readmeSection('Architecture');
    const modules = /modules\/ +([a-z ]+)│\n *│ +([a-z ]+)│/.exec(section);
    if (!modules) throw new Error('no modules/ line in the README diagram');
    const names = `${modules[1]} ${modules[2]}`.trim().split(/\s+/);
    expect(names.length).toBeGreaterThan(3);
    for (const name of names)
      expect(existsSync(path.join(ROOT, 'control/modules', name)), `module ${name}`).toBe(true);
    for (const [, worker] of section.matchAll(/(?:workers\/|│)\s+([a-z-]+) \(events →/g))
      expect(existsSync(path.join(ROOT, 'control/workers', `${worker}.ts`)), `worker ${worker}`).toBe(true);
    for (const [, folder] of section.matchAll(/│ ([a-z]+)\/\s{2,}/g)) {
      if (folder === 'modules' || folder === 'workers') continue;
      expect(existsSync(path.join(ROOT, 'core', folder as string)), `core/${folder}`).toBe(true);
    }
    // Every entry point the README's table names exists.
    for (const [, file] of section.matchAll(/^\| `([\w/.-]+\.ts)`/gm))
      expect(existsSync(path.join(ROOT, file as string)), file).toBe(true);
  });

  it('docs/architecture.md names files and folders that exist', () => {
    const text = read('docs/architecture.md');
    const named = [...text.matchAll(/`((?:core|control|tests|scripts)\/[\w/.*-]+|local\.ts)`/g)].map(
      (m) => m[1] as string,
    );
    expect(named.length).toBeGreaterThan(20);
    for (const p of named) {
      if (p.includes('*')) continue;
      expect(existsSync(path.join(ROOT, p.replace(/\/$/, ''))), p).toBe(true);
    }
  });

  it("maps the runbook's four services onto the plane the ALB really sends their paths to", () => {
    for (const doc of ['docs/architecture.md', 'docs/RUNBOOK.md']) {
      const rows = read(doc)
        .split('\n')
        .filter((l) => /^\| (api|realtime|webhooks|telephony)\s+\|/.test(l));
      expect(rows.map((r) => r.split('|')[1]?.trim()).sort(), doc).toEqual([
        'api',
        'realtime',
        'telephony',
        'webhooks',
      ]);
      for (const row of rows) {
        const plane = /\| (core|control) \(/.exec(row)?.[1];
        const paths = [...row.matchAll(/`(\/[\w/*.-]+)`/g)].map((m) => (m[1] as string).replace('*', 'x'));
        expect(paths.length, row).toBeGreaterThan(0);
        for (const p of paths) expect(routeOf(p), `${doc}: ${p}`).toBe(plane);
      }
    }
  });

  it("docs/providers.md lists core's real provider routes and the gateway's aliases", () => {
    const text = read('docs/providers.md');
    const app = read('core/app.ts') + read('core/realtime/media-server.ts');
    const telephony = new Set(
      [...text.matchAll(/(?<![\w/])(\/telephony\/[a-z]+\/[a-z]+)/g)].map((m) => m[1] as string),
    );
    expect(telephony.size).toBeGreaterThanOrEqual(10);
    for (const route of telephony) expect(app.includes(`${route}'`), route).toBe(true);
    const gateway = new Set(
      [...text.matchAll(/(\/webhooks\/(?:twilio|telnyx)\/[a-z]+)/g)].map((m) => m[1] as string),
    );
    expect([...gateway].sort()).toEqual(Object.keys(GATEWAY_PATH_ALIASES).sort());
    for (const alias of gateway) expect(WEBHOOK_ROUTES).toContain(`POST ${alias}`);
  });
});
