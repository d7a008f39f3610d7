/**
 * A real Dovecot for the IMAP tests: an unprivileged configuration in a temporary folder, listening on 127.0.0.1
 * on a free port, with a passwd-file user and a Maildir the test writes. Started in the foreground (-F) so the test
 * stops exactly the process it started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const hasDovecot = spawnSync('sh', ['-c', 'command -v dovecot']).status === 0;

export interface Dovecot {
  port: number;
  user: string;
  password: string;
  /** Writes a message into a folder (INBOX or e.g. Sent) of the user's Maildir. */
  deliver(folder: string, name: string, message: string): void;
  /** Sets a folder's UIDVALIDITY, as a restored or rebuilt mailbox would change it. */
  setUidValidity(folder: string, value: number): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`dovecot exited (${child.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(() => resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`dovecot did not listen on ${port}: ${log()}`);
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownTree(join(path, entry.name), uid, gid);
    else chownSync(join(path, entry.name), uid, gid);
  }
}

export async function startDovecot(): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), 'hub-dovecot-'));
  const port = await freePort();
  const user = 'support@example.com';
  const password = 'secret-imap-password';
  // Dovecot refuses to run its login processes or to access mail as root: as root, use its packaged
  // unprivileged users and a mail owner that is not root (nobody); otherwise everything runs as the current user.
  const me = userInfo();
  const root = me.uid === 0;
  const mailUid = root ? 65534 : me.uid;
  const mailGid = root ? 65534 : me.gid;
  for (const sub of ['run', 'state', 'mail', 'home']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'passwd'), `${user}:{PLAIN}${password}\n`);
  // The auth process runs as Dovecot's internal user: it must reach the passwd file.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'passwd'), 0o644);
  writeFileSync(
    join(dir, 'dovecot.conf'),
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = hub-test-${port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = ${root ? 'dovecot' : me.username}
default_internal_group = ${root ? 'dovecot' : me.username}
default_login_user = ${root ? 'dovenull' : me.username}
first_valid_uid = 0
mail_location = maildir:${dir}/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${mailUid} gid=${mailGid} home=${dir}/home/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
`,
  );
  const maildir = join(dir, 'mail', user);
  const folderDir = (folder: string) => (folder === 'INBOX' ? maildir : join(maildir, `.${folder}`));
  const deliver = (folder: string, name: string, message: string) => {
    const target = folderDir(folder);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(target, sub), { recursive: true });
    writeFileSync(join(target, 'cur', `${name}.hub:2,S`), message.replace(/\r?\n/g, '\r\n'));
    if (root) chownTree(join(dir, 'mail'), mailUid, mailGid);
  };
  deliver('INBOX', '0000000000.empty', '');
  rmSync(join(maildir, 'cur', '0000000000.empty.hub:2,S'));
  if (root) {
    chownTree(join(dir, 'mail'), mailUid, mailGid);
    chownTree(join(dir, 'home'), mailUid, mailGid);
  }

  const child = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const log = () => {
    try {
      return output + spawnSync('cat', [join(dir, 'dovecot.log')]).stdout.toString();
    } catch {
      return output;
    }
  };
  await waitForPort(port, child, log);

  return {
    port,
    user,
    password,
    deliver,
    setUidValidity(folder, value) {
      const result = spawnSync('doveadm', ['-c', join(dir, 'dovecot.conf'), 'mailbox', 'update', '-u', user, '--uid-validity', String(value), folder]);
      if (result.status !== 0) throw new Error(`doveadm mailbox update failed: ${result.stderr.toString()}`);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
