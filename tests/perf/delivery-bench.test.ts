import { spawn } from 'bun';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../support/databases.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const postgresUrl = inject('postgresUrl');
const redisUrl = inject('redisUrl');

/** One row of the benchmark's table, its cells by column. */
interface Row {
  pipeline: string;
  cells: string[];
}

function tableOf(output: string): Row[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| pipeline'))
    .map((l) => {
      const [pipeline = '', ...cells] = l
        .slice(2, -2)
        .split(' | ')
        .map((c) => c.trim());
      return { pipeline, cells };
    });
}

const number = (cell: string | undefined) => Number((cell ?? '').replaceAll(',', '').replace(/x$/, ''));

/**
 * `npm run bench:delivery -- --quick` end to end: events through the recorder and the dispatcher
 * to a real receiver on both backings (the suite's PostgreSQL and Redis), and the bare-POST floor.
 * The figures must be sane, not fast.
 */
describe('the webhook delivery benchmark, quick run', () => {
  let db: { url: string; drop(): Promise<void> } | undefined;

  beforeAll(async () => {
    if (postgresUrl) db = await createTestDatabase(postgresUrl);
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('prints every row, each with a rate and a latency', { timeout: 180_000 }, async () => {
    const both = db !== undefined && redisUrl !== null;
    const proc = spawn(
      [
        process.execPath,
        'run',
        'perf/webhook-delivery-bench.ts',
        '--quick',
        `--backing=${both ? 'both' : 'pglite'}`,
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          ...(both ? { DATABASE_URL: db!.url, REDIS_URL: redisUrl! } : {}),
        },
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(code, out + err).toBe(0);
    const rows = tableOf(out);
    const pipelines = both ? ['PGlite + MemoryStore', 'PostgreSQL + Redis'] : ['PGlite + MemoryStore'];
    expect(rows.map((r) => r.pipeline)).toEqual([...pipelines, 'floor: bare HTTP POST']);
    for (const { pipeline, cells } of rows) {
      const [events, recorded, delivered, p50, p99, rateRatio, latencyRatio] = cells;
      expect(cells, pipeline).toHaveLength(7);
      expect(number(events), pipeline).toBe(200);
      expect(number(delivered), pipeline).toBeGreaterThan(0);
      expect(number(p50), pipeline).toBeGreaterThanOrEqual(0);
      expect(number(p99), pipeline).toBeGreaterThanOrEqual(number(p50));
      if (pipeline.startsWith('floor')) {
        expect([recorded, rateRatio, latencyRatio]).toEqual(['–', '–', '–']);
      } else {
        // Delivered events were recorded first: the recorder is never the slower of the two.
        expect(number(recorded), pipeline).toBeGreaterThanOrEqual(number(delivered));
        expect(number(p50), pipeline).toBeGreaterThan(0);
        expect(number(rateRatio), pipeline).toBeGreaterThan(0);
        expect(number(latencyRatio), pipeline).toBeGreaterThan(0);
      }
    }
  });
});
