#!/usr/bin/env -S npx tsx
/**
 * The `hub` command. `start` (the default) runs the API, a worker and the scheduler in one process;
 * `api` and `worker` run one part each, so several processes can share one database.
 */
import { access, chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { bootHub, DEFAULT_CONFIG, HUB_DIR, type Runtime } from './runtime.js';
import { ConfigError, loadConfig, findSource } from './config.js';
import { openDatabase } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createLogger, silentLogger } from './log.js';
import { executeRun, getRun, remapSource, requestSync, type RunRow } from './sync.js';
import { startWorker } from './worker.js';
import { startScheduler } from './scheduler.js';
import { startWebhookDelivery } from './webhooks.js';
import { findConnector } from '../connectors/index.js';
import { buildApp } from './app.js';
import { startDocumentBuilder } from './customer-documents.js';
import { createApiKeyWithId, ensureAdminKey, parseScopes, revokeApiKey, SCOPES } from './auth.js';
import { removeSource } from './privacy.js';
import { createUser, disableUser, enableUser, listUsers, MIN_PASSWORD_LENGTH, ROLES, setPassword } from './users.js';
import { readNewPassword } from './password-input.js';
import { planWriteBack, setWriteBackEnabled } from './write-back.js';
import { userInfo } from 'node:os';
import { inTransaction } from './db/database.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { lockResolution } from '../identity-resolution/sql.js';
import { loadResolutionSettings, MATCH_CONFIG_HASH, rebuildClusters, trainAndStoreModel } from '../identity-resolution/probabilistic-matcher.js';

const EXAMPLE_CONFIG = 'examples/hub.config.yaml';

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** hub.config.yaml when there is one, else the example configuration (what `npm start` runs on a fresh clone). */
async function configPath(option: string | undefined): Promise<string> {
  if (option) return option;
  if (await exists(DEFAULT_CONFIG)) return DEFAULT_CONFIG;
  return EXAMPLE_CONFIG;
}

function listenAddress(runtime: Runtime): { host: string; port: number } {
  return {
    host: process.env.HOST ?? runtime.config.server?.host ?? '127.0.0.1',
    port: Number(process.env.PORT ?? runtime.config.server?.port ?? 3000),
  };
}

/** Prints the admin key once. With the embedded database it is also kept in .hub/admin-key for the next starts. */
async function announceAdminKey(runtime: Runtime): Promise<string> {
  const keyFile = join(HUB_DIR, 'admin-key');
  const { key, created } = await ensureAdminKey(runtime.pool, process.env.HUB_ADMIN_KEY);
  const embedded = !process.env.DATABASE_URL && !runtime.config.database?.url;
  if (created && key && embedded) {
    await writeFile(keyFile, key + '\n', { mode: 0o600 });
    await chmod(keyFile, 0o600);
  }
  if (created && key) return `${key}  (shown once${embedded ? `; also in ${keyFile}` : ''})`;
  if (process.env.HUB_ADMIN_KEY) return 'from HUB_ADMIN_KEY';
  if (embedded && (await exists(keyFile))) return `${(await readFile(keyFile, 'utf8')).trim()}  (from ${keyFile})`;
  return 'created on first start and shown then (stored hashed only)';
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

async function serve(options: { config?: string }, parts: { api: boolean; worker: boolean }): Promise<void> {
  const runtime = await bootHub({ configPath: await configPath(options.config) });
  const scheduler = startScheduler(runtime);
  if (parts.worker) await startWorker(runtime, runtime.shutdown.signal);
  const webhooks = parts.worker ? startWebhookDelivery(runtime, { signal: runtime.shutdown.signal }) : undefined;
  let close = async () => undefined as void;
  if (parts.api) {
    const app = await buildApp(runtime);
    const { host, port } = listenAddress(runtime);
    await app.listen({ host, port });
    const stopBuilder = startDocumentBuilder(runtime, runtime.log);
    close = async () => {
      await app.close();
      await stopBuilder();
    };
    const base = `http://${host}:${(app.server.address() as { port: number }).port}`;
    console.log(`customer-hub is running\n  API:       ${base}/v1/customers\n  Docs:      ${base}/docs\n  Workspace: ${base}/ui/  (sign in with an account from: hub users create)\n  Admin key: ${await announceAdminKey(runtime)}`);
  } else {
    console.log('customer-hub worker is running');
  }
  if (parts.worker && runtime.config.sync_on_start !== false) {
    for (const source of runtime.config.sources) await requestSync(runtime, source.name, 'start');
  }
  await waitForSignal();
  await scheduler.stop();
  await close();
  await webhooks?.stop();
  await runtime.stop();
}

function printRun(run: RunRow): void {
  console.log(
    `run ${run.id} ${run.status}: read ${run.read}, created ${run.created}, updated ${run.updated}, unchanged ${run.unchanged}, quarantined ${run.quarantined}` + (run.deleted ? `, deleted ${run.deleted}` : '') +
      (run.with_omitted_values ? `, values left out in ${run.with_omitted_values} (on_error: omit)` : '') +
      (run.error ? `\n  error: ${run.error}` : ''),
  );
}

/** Runs `work`, reporting the error of a bad configuration as its message alone. */
function action<Args extends unknown[]>(work: (...args: Args) => Promise<void>): (...args: Args) => Promise<void> {
  return async (...args: Args) => {
    try {
      await work(...args);
    } catch (error) {
      console.error(error instanceof ConfigError ? error.message : `error: ${(error as Error).message}`);
      process.exitCode = 1;
    }
  };
}

const program = new Command('hub').description('customer-hub: connectors, mapping, identity resolution and golden customer records over an API');
program.option('-c, --config <path>', `configuration file (default: ${DEFAULT_CONFIG}, else ${EXAMPLE_CONFIG})`);
const globalConfig = () => program.opts<{ config?: string }>().config;

program.command('start', { isDefault: true }).description('run the API, a worker and the scheduler in one process').action(action(() => serve({ config: globalConfig() }, { api: true, worker: true })));
program.command('api').description('run the API (and the scheduler) only').action(action(() => serve({ config: globalConfig() }, { api: true, worker: false })));
program.command('worker').description('run a worker (and the scheduler) only').action(action(() => serve({ config: globalConfig() }, { api: false, worker: true })));

program
  .command('migrate')
  .description('apply pending database migrations')
  .option('--dry-run', 'print what would run, change nothing')
  .action(
    action(async (options: { dryRun?: boolean }) => {
      const config = await loadConfig(await configPath(globalConfig()));
      const database = await openDatabase({ url: process.env.DATABASE_URL ?? config.database?.url, hubDir: HUB_DIR });
      try {
        const versions = await migrate(database.pool, { dryRun: options.dryRun });
        console.log(versions.length ? `${options.dryRun ? 'would apply' : 'applied'}: ${versions.join(', ')}` : 'the database is up to date');
      } finally {
        await database.close();
      }
    }),
  );

program
  .command('sync <source>')
  .description('sync one source now and show its progress')
  .action(
    action(async (source: string) => {
      const runtime = await bootHub({ configPath: await configPath(globalConfig()), log: createLogger({ level: 'warn' }) });
      const bar = new SingleBar({ format: `${source} [{bar}] {value}/{total} records | {status}`, hideCursor: true }, Presets.shades_classic);
      try {
        const { runId, queued } = await requestSync(runtime, source, 'cli');
        bar.start(1, 0, { status: 'queued' });
        // Run it here unless another process already runs it; then follow that run.
        const execution = queued ? executeRun(runtime, runId, runtime.shutdown.signal) : undefined;
        let run = (await getRun(runtime.pool, runId))!;
        while (run.status === 'queued' || run.status === 'running') {
          bar.setTotal(Math.max(run.progress.total ?? run.read, 1));
          bar.update(run.progress.done ?? run.read, { status: run.status });
          await new Promise((resolve) => setTimeout(resolve, 200));
          run = (await getRun(runtime.pool, runId))!;
        }
        await execution;
        bar.setTotal(Math.max(run.progress.total ?? run.read, 1));
        bar.update(run.progress.done ?? run.read, { status: run.status });
        bar.stop();
        printRun(run);
        if (run.status === 'failed') process.exitCode = 1;
      } finally {
        bar.stop();
        await runtime.stop();
      }
    }),
  );

program
  .command('check <source>')
  .description("check a source's configuration and connection")
  .action(
    action(async (name: string) => {
      const config = await loadConfig(await configPath(globalConfig()));
      const source = findSource(config, name);
      if (!source) throw new Error(`There is no source named '${name}' in the configuration.`);
      const connector = findConnector(source.connector)!;
      const result =
        connector.kind === 'pulled'
          ? await connector.check(source.config, { source: name, log: silentLogger, baseDir: config.baseDir })
          : { ok: true, message: 'its records arrive by HTTP; there is no connection to check' };
      console.log(`${name}: ${result.ok ? 'ok' : 'failed'}: ${result.message}`);
      if (!result.ok) process.exitCode = 1;
    }),
  );

program
  .command('remap <source>')
  .description('replay the kept raw records of a source through its current mapping')
  .action(
    action(async (source: string) => {
      const runtime = await bootHub({ configPath: await configPath(globalConfig()), log: createLogger({ level: 'warn' }), queue: false });
      try {
        const counts = await remapSource(runtime, source, (done) => process.stderr.write(`\rremapped ${done} records`));
        process.stderr.write('\n');
        printRun((await getRun(runtime.pool, counts.runId))!);
      } finally {
        await runtime.stop();
      }
    }),
  );

/** Runs `work` on the hub's database (migrated), without a job queue. */
async function withDatabase(work: (runtime: Runtime) => Promise<void>): Promise<void> {
  const runtime = await bootHub({ configPath: await configPath(globalConfig()), log: createLogger({ level: 'warn' }), queue: false });
  try {
    await work(runtime);
  } finally {
    await runtime.stop();
  }
}

program
  .command('resolve')
  .description('identity resolution: --train (re)trains the matching model by EM on the current records; --full rebuilds every cluster')
  .option('--train', 'train the probabilistic model on the current canonical records')
  .option('--full', 'rebuild all clusters (same input, same clusters and golden ids)')
  .option('--batch-size <n>', 'seed records per transaction of --full', '500')
  .action(
    action(async (options: { train?: boolean; full?: boolean; batchSize: string }) =>
      withDatabase(async (runtime) => {
        const settings = await loadResolutionSettings(runtime.pool);
        if (options.train) {
          const trained = await inTransaction(runtime.pool, async (client) => {
            await client.query(lockResolution());
            return trainAndStoreModel(client, settings);
          });
          console.log(
            trained.kind === 'em'
              ? `model ${trained.id}: trained by EM on ${trained.records} records (configuration ${MATCH_CONFIG_HASH})`
              : `model ${trained.id}: the prior model: ${trained.records} records are fewer than resolution.min_training_records (${settings.minTrainingRecords}) (configuration ${MATCH_CONFIG_HASH})`,
          );
        }
        if (options.full) {
          const report = await rebuildClusters(runtime.pool, resolveAndRefreshValue, { batchSize: Number(options.batchSize), actor: `cli:${userInfo().username}` });
          console.log(
            `resolved ${report.records} records (${settings.matcher} matcher) in ${report.batches} batches, ${report.millis} ms: ${report.clusters} customers; ` +
              `${report.created} created, ${report.updated} updated, ${report.merged} merged, ${report.split} split, ${report.retired} retired; ${report.reviewOpen} pairs open for review`,
          );
        }
        if (!options.train && !options.full) console.log(`matcher: ${settings.matcher}; pass --train or --full`);
      }),
    ),
  );

const keysCommand = program.command('keys').description('API keys');
keysCommand
  .command('create')
  .description('create an API key and print it, this once (it is stored hashed)')
  .requiredOption('--name <name>', 'who or what uses the key')
  .requiredOption('--scopes <scopes>', `comma-separated, of ${SCOPES.join(', ')} (admin implies steward implies read)`)
  .action(
    action(async (options: { name: string; scopes: string }) =>
      withDatabase(async (runtime) => {
        const { id, key } = await createApiKeyWithId(runtime.pool, options.name, parseScopes(options.scopes));
        console.log(`created key ${id} '${options.name}' (${options.scopes}):\n${key}\nIt is shown this once; store it now.`);
      }),
    ),
  );
keysCommand
  .command('revoke <idOrName>')
  .description('revoke an API key by id or name')
  .action(
    action(async (idOrName: string) =>
      withDatabase(async (runtime) => {
        const revoked = await revokeApiKey(runtime.pool, idOrName);
        console.log(`revoked key ${revoked.id} '${revoked.name}'`);
      }),
    ),
  );

const usersCommand = program.command('users').description('accounts of people who sign in to the workspace (stewards, admins)');
usersCommand
  .command('create <username>')
  .description(`create an account; the password (at least ${MIN_PASSWORD_LENGTH} characters) is read from stdin when it is piped, else asked for without echo`)
  .requiredOption('--role <role>', ROLES.join(' or '))
  .option('--password-env <variable>', 'read the password from this environment variable (scripts)')
  .action(
    action(async (username: string, options: { role: string; passwordEnv?: string }) =>
      withDatabase(async (runtime) => {
        await createUser(runtime.pool, username, options.role, await readNewPassword(options.passwordEnv));
        console.log(`created user '${username}' (${options.role})`);
      }),
    ),
  );
usersCommand
  .command('list')
  .description('list the accounts')
  .action(
    action(async () =>
      withDatabase(async (runtime) => {
        for (const user of await listUsers(runtime.pool)) {
          console.log(`${user.username}\t${user.role}\tcreated ${user.created_at.toISOString()}${user.disabled_at ? `\tdisabled ${user.disabled_at.toISOString()}` : ''}`);
        }
      }),
    ),
  );
usersCommand
  .command('disable <username>')
  .description('disable an account; its sessions end at once')
  .action(
    action(async (username: string) =>
      withDatabase(async (runtime) => {
        const { sessions } = await disableUser(runtime.pool, username);
        console.log(`disabled user '${username}'; ${sessions} session(s) ended`);
      }),
    ),
  );
usersCommand
  .command('enable <username>')
  .description('enable a disabled account again; it signs in with its password')
  .action(
    action(async (username: string) =>
      withDatabase(async (runtime) => {
        await enableUser(runtime.pool, username);
        console.log(`enabled user '${username}'`);
      }),
    ),
  );
usersCommand
  .command('password <username>')
  .description(`set a new password (at least ${MIN_PASSWORD_LENGTH} characters, read as for create); the account's sessions end`)
  .option('--password-env <variable>', 'read the password from this environment variable (scripts)')
  .action(
    action(async (username: string, options: { passwordEnv?: string }) =>
      withDatabase(async (runtime) => {
        const { sessions } = await setPassword(runtime.pool, username, await readNewPassword(options.passwordEnv));
        console.log(`set a new password for '${username}'; ${sessions} session(s) ended`);
      }),
    ),
  );

const sourcesCommand = program.command('sources').description('sources');
sourcesCommand
  .command('remove <name>')
  .description("take a source's records out of every golden record (recomputed, with the cause in the change log) and delete them")
  .action(
    action(async (name: string) =>
      withDatabase(async (runtime) => {
        // A configured source is registered again on the next start and its records synced back in.
        if (findSource(runtime.config, name)) throw new Error(`Source '${name}' is still in ${runtime.config.path}: remove it from the configuration first, then run this again.`);
        const removal = await removeSource(runtime.pool, name, `cli:${userInfo().username}`, (done) => process.stderr.write(`\rremoved ${done} records`));
        process.stderr.write('\n');
        const g = removal.golden;
        console.log(`removed source '${name}': ${removal.raw_records} records; golden records updated ${g.updated}, retired ${g.retired}, split ${g.split}, created ${g.created}`);
      }),
    ),
  );

const writebackCommand = program.command('writeback').description('golden values written back to the sources');
writebackCommand
  .command('plan <source>')
  .description('list what write-back would write to a source now (record, attribute, from → to), without writing')
  .action(
    action(async (source: string) =>
      withDatabase(async (runtime) => {
        const { status, writes } = await planWriteBack(runtime, source);
        const items = writes.flatMap((write) => write.items);
        console.log(`${source}: write-back ${status.enabled ? 'on' : 'OFF (nothing is written)'}; ${items.length} value(s) to write to ${writes.length} record(s)`);
        for (const item of items) console.log(`  ${item.externalId} (${item.goldenId}) ${item.attribute}: ${JSON.stringify(item.from)} → ${JSON.stringify(item.to)}`);
      }),
    ),
  );
for (const [name, enabled, text] of [
  ['disable', false, 'stop all writes to a source (the kill switch; wins over the configuration)'],
  ['enable', true, 'allow writes to a source again (wins over the configuration)'],
  ['reset', null, "let the configuration's write_back.enabled decide again"],
] as const) {
  writebackCommand
    .command(`${name} <source>`)
    .description(text)
    .action(
      action(async (source: string) =>
        withDatabase(async (runtime) => {
          const status = await setWriteBackEnabled(runtime, source, enabled, `cli:${userInfo().username}`);
          console.log(`${source}: write-back ${status.enabled ? 'on' : 'off'}${status.override === null ? ' (from the configuration)' : ''}`);
        }),
      ),
    );
}

const configCommand = program.command('config').description('configuration');
configCommand
  .command('validate [path]')
  .description('validate a configuration file')
  .action(
    action(async (path?: string) => {
      const file = path ?? (await configPath(globalConfig()));
      const config = await loadConfig(file);
      console.log(`${file} is valid: ${config.sources.length} source(s)`);
    }),
  );

await program.parseAsync();
// Exit once the command is done, with its code, whatever handles a library left open.
process.exit(process.exitCode ?? 0);
