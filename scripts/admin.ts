/**
 * Operator commands that need the database, not an API key: the way back in when every admin
 * key of an account is lost (docs/RUNBOOK.md, "Lost admin key").
 *
 *   npm run admin -- create-key [--account <id>] [--name <name>]
 *
 * It reads the same settings as control (DATABASE_URL, or the embedded PGlite at
 * PGLITE_DATA_DIR; SSM_PREFIX works too), applies pending migrations as control's boot does,
 * mints an admin key and prints it once on stdout. Exit codes: 0 done, 1 refused (no such
 * account, several accounts and none named), 2 bad usage or settings.
 */
import { parseArgs } from 'node:util';
import { AdminKeyError, createAdminKey } from '../control/bootstrap.ts';
import { migrate, openDatabase } from '../control/db/index.ts';
import { ConfigError, loadConfig } from '../core/config/index.ts';
import { createLogger } from '../core/observability/index.ts';

const USAGE = 'usage: npm run admin -- create-key [--account <id>] [--name <name>]';

/** What one run printed and how it ended; `main` below turns it into the process's output. */
export interface AdminRun {
  code: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

/** Runs one admin command with `argv` (after the script name) against the database `env` names. */
export async function runAdmin(argv: string[], env: Record<string, string | undefined>): Promise<AdminRun> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    return { code: 2, stdout: '', stderr: `${(err as Error).message}\n${USAGE}\n` };
  }
  const [command, ...rest] = parsed.positionals;
  if (command !== 'create-key' || rest.length > 0) {
    return {
      code: 2,
      stdout: '',
      stderr: `${command ? `unknown command ${command}` : 'no command'}\n${USAGE}\n`,
    };
  }
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return { code: 2, stdout: '', stderr: `${err.message}\n` };
    throw err;
  }
  // Logs would mix with the key on stdout: errors are reported below instead.
  const log = createLogger({ level: 'silent', service: 'admin' });
  const db = await openDatabase(config, log);
  try {
    await migrate(db.sql);
    const key = await createAdminKey(db.sql, { accountId: parsed.values.account, name: parsed.values.name });
    const created = key.accountCreated ? ' (new account: the database had none)' : '';
    return {
      code: 0,
      stdout: `Admin API key ${key.keyId} for account ${key.accountId}${created} (shown once, store it now):\n  ${key.secret}\n`,
      stderr: '',
    };
  } catch (err) {
    if (err instanceof AdminKeyError) return { code: 1, stdout: '', stderr: `${err.message}\n` };
    return { code: 1, stdout: '', stderr: `create-key failed: ${(err as Error).message}\n` };
  } finally {
    await db.close();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { account: { type: 'string' }, name: { type: 'string' } },
  });
}

if (import.meta.main) {
  const run = await runAdmin(process.argv.slice(2), process.env);
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  process.exit(run.code);
}
