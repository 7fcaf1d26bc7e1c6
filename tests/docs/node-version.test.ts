import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `npm ci` prints an engine warning for every package whose `engines.node` the running Node
 * does not satisfy. The README states one minimum Node version; on it, no package of the lock
 * file may warn, and the minimum is no higher than some package needs.
 */

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<
    string,
    { engines?: { node?: string } | string[]; optional?: boolean; os?: string[]; cpu?: string[] }
  >;
};

/** The README's "Node.js X or later", as a full version. */
function statedNode(): string {
  const stated = [...readme.matchAll(/Node\.js (\d+(?:\.\d+){0,2}) or later/g)].map((m) => m[1]);
  expect(stated.length).toBeGreaterThan(0);
  expect(new Set(stated).size, `README states one Node version: ${stated.join(', ')}`).toBe(1);
  const [major, minor = '0', patch = '0'] = stated[0].split('.');
  return `${major}.${minor}.${patch}`;
}

/** Packages npm installs on this platform, with the Node range each declares. */
function enginesOfInstalled(): [string, string][] {
  const platform = process.platform;
  const arch = process.arch;
  return Object.entries(lock.packages)
    .filter(([path]) => path !== '')
    .filter(([, p]) => !p.os || p.os.includes(platform))
    .filter(([, p]) => !p.cpu || p.cpu.includes(arch))
    .flatMap(([path, p]) => {
      const node = !Array.isArray(p.engines) ? p.engines?.node : undefined;
      return node ? [[path, node] as [string, string]] : [];
    });
}

describe('the Node version the README states', () => {
  it('satisfies every installed package’s engines, so npm ci prints no engine warning', () => {
    const version = statedNode();
    const engines = enginesOfInstalled();
    expect(engines.length).toBeGreaterThan(50);
    const unmet = engines.filter(([, range]) => !Bun.semver.satisfies(version, range));
    expect(unmet, `on Node ${version}`).toEqual([]);
  });

  it('is what package.json declares, and no higher than a dependency needs', () => {
    const version = statedNode();
    expect(pkg.engines.node).toBe(`>=${version}`);
    expect(lock.packages[''].engines).toEqual({ node: `>=${version}` });
    // One release lower (the previous minor, or the previous major's last), some package refuses.
    const [major, minor] = version.split('.').map(Number);
    const lower = minor > 0 ? `${major}.${minor - 1}.99` : `${major - 1}.99.99`;
    const needing = enginesOfInstalled().filter(([, range]) => !Bun.semver.satisfies(lower, range));
    expect(needing.length, `some package needs more than ${lower}`).toBeGreaterThan(0);
  });
});
