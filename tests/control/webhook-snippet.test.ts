import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { apiClient, type Backing, embedded, eventually, makeAccount, makeControl } from './support.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const START = '<!-- verify-snippet:start -->';
const END = '<!-- verify-snippet:end -->';

/** The TypeScript block between the snippet markers of a Markdown file, or null without markers. */
function snippetOf(file: string): string | null {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const start = text.indexOf(START);
  if (start < 0) return null;
  const block = text.slice(start + START.length, text.indexOf(END, start));
  const code = /```ts\n([\s\S]*?)```/.exec(block)?.[1];
  if (!code) throw new Error(`${file}: no ts block between the snippet markers`);
  return code;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the documented verification snippet', () => {
  let backing: Backing;
  let control: Control;
  let dir: string;

  beforeAll(async () => {
    backing = await embedded();
    control = makeControl(backing, { WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }, backing.store, {
      workers: { recorder: false, dispatcher: false, campaigns: false, sweeper: false },
    });
    await control.start();
    // Inside node_modules, so the snippet's `import 'standardwebhooks'` resolves as in a project.
    dir = mkdtempSync(join(ROOT, 'node_modules', '.webhook-snippet-'));
  });

  afterAll(async () => {
    await control?.close();
    await backing?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is the same in the README as in docs/events.md', () => {
    const docs = snippetOf('docs/events.md');
    expect(docs).not.toBeNull();
    const readme = snippetOf('README.md');
    if (readme !== null) expect(readme).toBe(docs);
  });

  it('verifies a real delivery and refuses a forged one', async () => {
    const api = apiClient(control);
    const { key } = await makeAccount(control, 'snippet');
    const port = await freePort();
    const created = await api('POST', '/v1/webhooks', { key, body: { url: `http://127.0.0.1:${port}/` } });
    expect(created.status).toBe(201);
    const file = join(dir, 'receiver.ts');
    writeFileSync(file, snippetOf('docs/events.md')!);
    const bun = join(ROOT, 'node_modules', '.bin', 'bun');
    const child = spawn(bun, [file], {
      env: { ...process.env, PORT: String(port), SIPAI_WEBHOOK_SECRET: created.body.secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' })).status === 400,
        15_000,
        'snippet listening',
      );
      const test = await api('POST', `/v1/webhooks/${created.body.id}/test`, { key });
      expect(test.body, output).toMatchObject({ status: 'delivered', lastStatus: 204 });
      await eventually(() => output.includes(`verified webhook.test ${test.body.eventId}`), 5_000, output);
      // A forged request: a valid-looking signature over another body.
      const forged = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: {
          'webhook-id': 'evt_forged',
          'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
          'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
        },
        body: '{"type":"call.ended"}',
      });
      expect(forged.status).toBe(400);
    } finally {
      child.kill();
    }
  });
});
