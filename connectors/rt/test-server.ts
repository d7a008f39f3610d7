/**
 * Starts a real Request Tracker 5 for the connector's tests: Debian's `request-tracker5` on SQLite, its
 * standalone server on a free local port, in a temporary directory with its own RT_SiteConfig.pm (the
 * system's /etc/request-tracker5 is never read). The initialised database, with an auth token for root
 * and a user custom field for the golden id, is built once into a template under the system's temp
 * directory (about 25 s) and copied for each run; the server takes about 15 s to start. Hashes use a
 * bcrypt cost of 4, not RT's 12, so that each request is not slowed by a second of hashing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../../hub/db/embedded.js';

const rtServer = '/usr/share/request-tracker5/libexec/rt-server';
const setupDatabase = '/usr/sbin/rt-setup-database-5';
const rtLib = '/usr/share/request-tracker5/lib';

export const rtInstalled = existsSync(rtServer) && existsSync(setupDatabase) && spawnSync('perl', ['-MDBD::SQLite', '-e', '1']).status === 0;

export interface RtServer {
  url: string;
  /** An auth token of root. */
  token: string;
  /** root's password as `rt-setup-database` sets it. */
  password: string;
  /** The user custom field that write-back can fill with the golden id. */
  goldenIdField: string;
  stop(): Promise<void>;
}

const goldenIdField = 'Hub golden id';

/** An RT_SiteConfig.pm for `dir`; RT_SITE_CONFIG_DIR points at an empty folder so Debian's RT_SiteConfig.d is not read. */
function siteConfig(dir: string, port: number, timezone: string): NodeJS.ProcessEnv {
  mkdirSync(join(dir, 'site-config.d'), { recursive: true });
  mkdirSync(join(dir, 'mason'), { recursive: true });
  writeFileSync(
    join(dir, 'RT_SiteConfig.pm'),
    [
      "Set($rtname, 'hub-test');",
      "Set($Organization, 'hub-test.example');",
      "Set($WebDomain, '127.0.0.1');",
      `Set($WebPort, ${port});`,
      "Set($WebPath, '');",
      `Set($WebBaseURL, 'http://127.0.0.1:${port}');`,
      "Set($DatabaseType, 'SQLite');",
      `Set($DatabaseName, '${join(dir, 'rt.sqlite')}');`,
      `Set($MasonDataDir, '${join(dir, 'mason')}');`,
      `Set($Timezone, '${timezone}');`,
      // Every REST2 request checks the token or password with bcrypt; RT's cost of 12 takes about a second here.
      'Set($BcryptCost, 4);',
      "Set($LogToSTDERR, 'error');",
      'Set($LogToSyslog, undef);',
      'Set($LogToFile, undef);',
      '1;',
      '',
    ].join('\n'),
  );
  return { ...process.env, RT_SITE_CONFIG: join(dir, 'RT_SiteConfig.pm'), RT_SITE_CONFIG_DIR: join(dir, 'site-config.d') };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, { env, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

// Through RT's Perl API: REST2 cannot create auth tokens or custom fields.
const prepareScript = `
use RT; RT::LoadConfig(); RT::Init();
my $root = RT::User->new(RT->SystemUser); $root->Load('root');
my ($ok, $msg, $token) = RT::AuthToken->new(RT::CurrentUser->new($root))->Create(Owner => $root->id, Description => 'customer-hub tests');
die "token: $msg" unless $ok;
my $cf = RT::CustomField->new(RT->SystemUser);
($ok, $msg) = $cf->Create(Name => '${goldenIdField}', Type => 'Freeform', MaxValues => 1, LookupType => 'RT::User');
die "custom field: $msg" unless $ok;
($ok, $msg) = $cf->AddToObject(RT::User->new(RT->SystemUser));
die "custom field: $msg" unless $ok;
print $token;
`;

/** The initialised database and root's token, built once per machine. */
function template(): { database: string; token: string } {
  const dir = join(tmpdir(), 'customer-hub-rt-template-v2');
  const database = join(dir, 'rt.sqlite');
  const tokenFile = join(dir, 'token');
  if (existsSync(database) && existsSync(tokenFile)) return { database, token: readFileSync(tokenFile, 'utf8') };
  const work = mkdtempSync(join(tmpdir(), 'customer-hub-rt-build-'));
  try {
    const env = siteConfig(work, 80, 'UTC');
    run(setupDatabase, ['--action', 'init', '--skip-create'], env);
    const token = run('perl', [`-I${rtLib}`, '-e', prepareScript], env).trim();
    mkdirSync(dir, { recursive: true });
    writeFileSync(tokenFile, token);
    // Renamed into place last, so a build interrupted half-way is never taken for a template.
    copyFileSync(join(work, 'rt.sqlite'), `${database}.partial`);
    renameSync(`${database}.partial`, database);
    return { database, token };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Starts RT with `$Timezone` set to `timezone` (the zone it reads TicketSQL dates in). */
export async function startRtServer(timezone: string): Promise<RtServer> {
  const { database, token } = template();
  const work = mkdtempSync(join(tmpdir(), 'customer-hub-rt-'));
  const port = await freePort();
  const env = siteConfig(work, port, timezone);
  copyFileSync(database, join(work, 'rt.sqlite'));
  const child: ChildProcess = spawn(rtServer, ['--server', 'Standalone', '--host', '127.0.0.1', '--port', String(port)], { env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  };
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${url}/REST/2.0/rt`, { headers: { Authorization: `token ${token}` } })).ok) break;
    } catch {
      // Not listening yet.
    }
    if (attempt > 300 || child.exitCode !== null) {
      await stop();
      throw new Error('rt-server did not start');
    }
    await delay(200);
  }
  return { url, token, password: 'password', goldenIdField, stop };
}
