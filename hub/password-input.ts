/** Where `hub users create` gets a password: never from its arguments, which other users of the machine can read in `ps`. */
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline/promises';

/** Asks on the terminal without echoing what is typed. */
async function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const prompt = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = prompt.question(question);
    // The question is written at once; from here on only keystrokes would reach the output.
    muted = true;
    return await answer;
  } finally {
    prompt.close();
    process.stderr.write('\n');
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/**
 * From the environment variable `envVar` when given (scripts); else from stdin when it is not a terminal (a pipe: its
 * first line); else typed twice at a prompt without echo.
 */
export async function readNewPassword(envVar: string | undefined): Promise<string> {
  if (envVar !== undefined) {
    const value = process.env[envVar];
    if (value === undefined) throw new Error(`Environment variable ${envVar} is not set.`);
    return value;
  }
  if (!process.stdin.isTTY) return (await readAll(process.stdin)).split(/\r?\n/)[0];
  const password = await promptHidden('Password: ');
  if ((await promptHidden('Repeat the password: ')) !== password) throw new Error('The two passwords differ.');
  return password;
}
