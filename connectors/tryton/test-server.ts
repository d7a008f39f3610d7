/**
 * Starts a real Tryton server for the connector's tests: Debian's `tryton-server` with the party and
 * sale modules on SQLite. The database is built once into a template (about a minute) under the
 * system's temp directory and copied for each run; the server listens on a free local port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const trytonInstalled = ['trytond', 'trytond-admin'].every((command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0);

export interface TrytonServer {
  url: string;
  database: string;
  login: string;
  password: string;
  /** The server's SQLite database, for a test that writes what no API call can (a change dated in the past). */
  databaseFile: string;
  stop(): Promise<void>;
}

const database = 'hub';
const password = 'admin-pass';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function admin(conf: string, args: string[], passFile: string): void {
  const result = spawnSync('trytond-admin', ['-c', conf, '-d', database, ...args], { env: { ...process.env, TRYTONPASSFILE: passFile }, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`trytond-admin ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
}

/** The initialised database (base, party, sale), built once per machine. */
function template(): string {
  const dir = join(tmpdir(), 'customer-hub-tryton-template-v1');
  const file = join(dir, `${database}.sqlite`);
  if (existsSync(file)) return file;
  const work = mkdtempSync(join(tmpdir(), 'customer-hub-tryton-build-'));
  const conf = join(work, 'trytond.conf');
  const passFile = join(work, 'pass');
  writeFileSync(conf, `[database]\nuri = sqlite://\npath = ${work}\n`);
  writeFileSync(passFile, `${password}\n`);
  writeFileSync(join(work, `${database}.sqlite`), '');
  admin(conf, ['--all', '--email', 'admin@example.com'], passFile);
  admin(conf, ['-u', 'party', 'sale', '--activate-dependencies'], passFile);
  mkdirSync(dir, { recursive: true });
  // Renamed into place last, so a build interrupted half-way is never taken for a template.
  copyFileSync(join(work, `${database}.sqlite`), `${file}.partial`);
  renameSync(`${file}.partial`, file);
  return file;
}

export async function startTrytonServer(): Promise<TrytonServer> {
  const source = template();
  const work = mkdtempSync(join(tmpdir(), 'customer-hub-tryton-'));
  copyFileSync(source, join(work, `${database}.sqlite`));
  const port = await freePort();
  const conf = join(work, 'trytond.conf');
  writeFileSync(conf, `[database]\nuri = sqlite://\npath = ${work}\n[web]\nlisten = 127.0.0.1:${port}\n`);
  const child: ChildProcess = spawn('trytond', ['-c', conf], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`${url}/${database}/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: 0, method: 'common.db.login', params: ['admin', { password }, 'en'] }),
      });
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (attempt > 100 || child.exitCode !== null) throw new Error('trytond did not start');
    await delay(200);
  }
  return {
    url,
    database,
    login: 'admin',
    password,
    databaseFile: join(work, `${database}.sqlite`),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    },
  };
}
