import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Private redis-server and PostgreSQL instances for tests and benchmarks: Debian's binaries,
 * free loopback ports, temp dirs, stopped by PID. Nothing here touches a system service.
 */

export interface RunningService {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** A port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function which(bin: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extraDirs]) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
}

function postgresBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'));
}

export function redisBinary(): string | null {
  return which('redis-server');
}

export function postgresBinaries(): { initdb: string; pgCtl: string } | null {
  const dirs = postgresBinDirs();
  const initdb = which('initdb', dirs);
  const pgCtl = which('pg_ctl', dirs);
  return initdb && pgCtl ? { initdb, pgCtl } : null;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

function killAndWait(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Starts redis-server on a free port with no persistence; `stop()` kills it by PID. */
export async function startRedis(bin = redisBinary()): Promise<RunningService> {
  if (!bin) throw new Error('redis-server not found');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sipai-redis-'));
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  await waitForPort(port, 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      await killAndWait(child, 'SIGTERM', 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a throwaway PostgreSQL cluster (initdb + postgres) on a free port. As root it runs as
 * the `postgres` user, which initdb requires. `stop()` shuts the postmaster down by PID.
 */
export async function startPostgres(bins = postgresBinaries()): Promise<RunningService> {
  if (!bins) throw new Error('PostgreSQL binaries (initdb, pg_ctl) not found');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sipai-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' })
      : execFileSync(cmd, args, { stdio: 'pipe' });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  run(bins.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const postgresBin = join(bins.pgCtl, '..', 'postgres');
  const args = [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ];
  const child = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', postgresBin, ...args], { stdio: 'ignore' })
    : spawn(postgresBin, args, { stdio: 'ignore' });
  await waitForPort(port, 20_000);
  const pidFile = join(data, 'postmaster.pid');
  const postmasterPid = existsSync(pidFile)
    ? Number(readFileSync(pidFile, 'utf8').split('\n')[0])
    : child.pid!;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid: postmasterPid,
    async stop() {
      try {
        process.kill(postmasterPid, 'SIGINT'); // fast shutdown
      } catch {}
      await killAndWait(child, 'SIGINT', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
