import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * The voice benchmark's command runs end to end at a small size: more callers than core lets one
 * address have mid-setup by default (64), all from 127.0.0.1 as in the real run. It checks that the
 * command works and reports, not how fast anything is.
 */
describe('npm run bench:voice', () => {
  it('runs both servers with 80 calls and reports the sipai run against the k6 thresholds', () => {
    const run = spawnSync(
      process.execPath,
      ['perf/local/voice-bench.ts', '--calls', '80', '--seconds', '2', '--warmup', '1'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const out = `${run.stdout}${run.stderr}`;
    // 1 is a threshold missed (a speed verdict, not this test's business); anything else failed.
    expect([0, 1], out).toContain(run.status);
    expect(out).not.toMatch(/upgrade refused/);
    expect(out).toMatch(/\| concurrent calls \| 80 \| 80 \|/);
    for (const name of ['calls with audio back', 'first audio p95 \\(ms\\)', 'frames answered'])
      expect(out).toMatch(new RegExp(`(PASS|FAIL) ${name}: [0-9.]+`));
  }, 150_000);
});
