/** Runs the real `hub` command in a child process. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cliArgs = (args: string[]) => ['--import', 'tsx', 'hub/cli.ts', ...args];

export function startHub(args: string[], env: Record<string, string | undefined> = {}, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  return spawn(process.execPath, cliArgs(args), { env: { ...process.env, HUB_LOG_LEVEL: 'warn', ...env }, stdio: [stdin, 'pipe', 'pipe'] });
}

/** `input`: written to the command's stdin (a pipe, as in `echo … | hub …`), then closed. */
export function runHub(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = startHub(args, env, input === undefined ? 'ignore' : 'pipe');
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
