/**
 * hub.config.yaml: read, `${VAR}` replaced from the environment, validated against its JSON Schema
 * and each source's connector config schema. Errors name the key and the reason, never a value.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import cron from 'node-cron';
import hubConfigSchema from '../openapi/schemas/hub-config.schema.json' with { type: 'json' };
import type { HubConfig, SourceConfig } from '../openapi/generated/hub-config.gen.js';
import { findConnector, connectors, HUB_SOURCE } from '../connectors/index.js';
import { findWriteBack } from '../connectors/write-back.js';
import { validate } from './schema-validation.js';

export type { HubConfig, SourceConfig };

export interface LoadedConfig extends HubConfig {
  /** Folder of the config file: relative paths in it resolve against this. */
  baseDir: string;
  path: string;
}

export class ConfigError extends Error {
  constructor(readonly path: string, readonly problems: string[]) {
    super(`${path} is not valid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Replaces `${VAR}` in every string; a missing variable is a problem that names the key and the variable. */
function interpolate(value: unknown, key: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) problems.push(`${key}: environment variable ${name} is not set`);
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, `${key}[${index}]`, env, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, interpolate(item, key ? `${key}.${name}` : name, env, problems)]));
  }
  return value;
}

export function checkConfig(raw: unknown, path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const problems: string[] = [];
  const config = interpolate(raw, '', env, problems) as HubConfig;
  problems.push(...validate(hubConfigSchema, config));
  if (problems.length > 0) throw new ConfigError(path, problems);

  const seen = new Set<string>();
  config.sources.forEach((source, index) => {
    const key = `sources[${index}]`;
    if (seen.has(source.name)) problems.push(`${key}.name: '${source.name}' is used by another source`);
    if (source.name === HUB_SOURCE) problems.push(`${key}.name: '${HUB_SOURCE}' is the hub's built-in source; choose another name`);
    seen.add(source.name);
    const connector = findConnector(source.connector);
    if (!connector) {
      problems.push(`${key}.connector: unknown connector '${source.connector}' (known: ${Object.keys(connectors).join(', ')})`);
    } else {
      problems.push(...validate(connector.configSchema, source.config, `${key}.config`));
    }
    if (source.write_back && !findWriteBack(source.connector)) problems.push(`${key}.write_back: the ${source.connector} connector cannot write back`);
    if (source.schedule !== undefined && !cron.validate(source.schedule)) {
      problems.push(`${key}.schedule: '${source.schedule}' is not a valid cron expression`);
    }
  });
  if (config.resolution?.deterministic_rules && config.resolution.deterministic_keys) {
    problems.push('resolution.deterministic_keys: replaced by resolution.deterministic_rules; give only deterministic_rules');
  }
  // A source priority naming no source is most likely a typo: it would silently rank nothing.
  for (const [attribute, rule] of Object.entries(config.resolution?.survivorship?.attributes ?? {})) {
    for (const name of rule?.sources ?? []) {
      if (!seen.has(name) && name !== HUB_SOURCE) problems.push(`resolution.survivorship.attributes.${attribute}.sources: unknown source '${name}'`);
    }
  }
  if (problems.length > 0) throw new ConfigError(path, problems);
  return { ...config, baseDir: dirname(resolve(path)), path };
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new ConfigError(path, ['the file cannot be read']);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(path, [`not valid YAML: ${(error as Error).message}`]);
  }
  return checkConfig(raw ?? {}, path, env);
}

export function findSource(config: HubConfig, name: string): SourceConfig | undefined {
  return config.sources.find((source) => source.name === name);
}
