/** Runs the real `hub` command in a child process. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cliArgs = (args: string[]) => ['--import', 'tsx', 'hub/cli.ts', ...args];

export function startHub(args: string[], env: Record<string, string | undefined> = {}): ChildProcess {
  return spawn(process.execPath, cliArgs(args), { env: { ...process.env, HUB_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function runHub(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = startHub(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
