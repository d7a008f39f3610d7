/**
 * Reads a declarative REST definition: YAML, validated by definition.schema.json with errors that name
 * the key (`streams[0].pagination.type: ...`), its mapping validated by the mapping engine, and
 * `{{ secrets.x }}` / `{{ env.X }}` filled in.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { MappingConfigError, parseMapping, type MappingDocument } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import schema from './definition.schema.json' with { type: 'json' };

export type Protocol = 'rest' | 'odata_v2' | 'odata_v4';

export type RestAuth =
  | { type: 'none' }
  | { type: 'bearer'; token: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'api_key'; name: string; value: string; in?: 'header' | 'query' }
  | { type: 'oauth2_client_credentials'; token_url: string; client_id: string; client_secret: string; scopes?: string[]; client_auth?: 'basic' | 'body'; extra_params?: Record<string, string> };

export interface RestPagination {
  type: 'none' | 'page_number' | 'offset' | 'cursor' | 'link_header' | 'odata';
  page_size?: number;
  page_param?: string;
  start_page?: number;
  size_param?: string;
  offset_param?: string;
  cursor_param?: string;
  cursor_path?: string;
  stop_path?: string;
  stop_when?: boolean;
}

export interface RestCursorField {
  field: string;
  time_field?: string;
  odata_type?: 'datetime' | 'datetimeoffset';
}

export interface RestIncremental {
  cursor_fields: RestCursorField[];
  request_param?: string;
  param_format?: 'iso' | 'date' | 'epoch_seconds';
  lookback_seconds?: number;
}

export interface RestStream {
  name: string;
  path: string;
  params?: Record<string, string | number | boolean>;
  record_selector?: string;
  primary_key: string[];
  nested?: { path: string; include_parent?: string[] };
  pagination?: RestPagination;
  incremental?: RestIncremental;
}

export interface RestDefinition {
  name?: string;
  description?: string;
  documentation?: string;
  base_url: string;
  protocol?: Protocol;
  headers?: Record<string, string>;
  auth?: RestAuth;
  streams: RestStream[];
  mapping?: MappingDocument;
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validate = ajv.compile(schema);

/** A JSON pointer as a reader of the YAML names the key: /streams/0/pagination → streams[0].pagination. */
function keyPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .reduce((path, key) => (/^\d+$/.test(key) ? `${path}[${key}]` : path ? `${path}.${key}` : key), '');
}

function describe(error: ErrorObject): string {
  const at = keyPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
    return `${keyPath(`${error.instancePath}/${String(params.additionalProperty)}`)}: is not a known key${known.length ? ` (expected one of: ${known.join(', ')})` : ''}`;
  }
  if (error.keyword === 'required') return `${keyPath(`${error.instancePath}/${String(params.missingProperty)}`)}: is required`;
  if (error.keyword === 'enum') return `${at || '(document)'}: must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
  return `${at || '(document)'}: ${error.message ?? 'is invalid'}`;
}

/** Checks a parsed definition; every problem is listed, each naming its key. */
export function checkDefinition(document: unknown, origin: string): RestDefinition {
  if (!validate(document)) {
    // `if` failures only say that a `then` failed, which the `then`'s own errors explain.
    const problems = [...new Set((validate.errors ?? []).filter((error) => error.keyword !== 'if').map(describe))];
    throw new ConnectorError(`The REST definition ${origin} is not valid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`, 'config');
  }
  const definition = document as unknown as RestDefinition;
  const problems: string[] = [];
  const names = new Set<string>();
  definition.streams.forEach((stream, index) => {
    if (names.has(stream.name)) problems.push(`streams[${index}].name: '${stream.name}' is already the name of another stream`);
    names.add(stream.name);
    const pagination = stream.pagination;
    if (pagination?.type === 'cursor' && (!pagination.cursor_param || !pagination.cursor_path)) {
      problems.push(`streams[${index}].pagination: type cursor needs cursor_param and cursor_path`);
    }
    if (pagination?.type === 'odata' && (definition.protocol ?? 'rest') === 'rest') problems.push(`streams[${index}].pagination: type odata needs protocol odata_v2 or odata_v4`);
    if (stream.incremental && (definition.protocol ?? 'rest') === 'rest' && !stream.incremental.request_param) {
      problems.push(`streams[${index}].incremental.request_param: is required for protocol rest (OData builds $filter instead)`);
    }
  });
  if (definition.mapping) {
    try {
      parseMapping(definition.mapping, origin);
    } catch (error) {
      if (!(error instanceof MappingConfigError)) throw error;
      problems.push(...error.issues.map((issue) => `mapping${issue.path ? `.${issue.path}` : ''}: ${issue.reason}`));
    }
  }
  if (problems.length) throw new ConnectorError(`The REST definition ${origin} is not valid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`, 'config');
  return definition;
}

/** Fills `{{ secrets.name }}` and `{{ env.NAME }}` in every string of the definition. */
export function fillTemplates<T>(value: T, secrets: Record<string, string>, origin: string): T {
  const fill = (text: string) =>
    text.replace(/\{\{\s*(secrets|env)\.([A-Za-z0-9_]+)\s*\}\}/g, (_match, scope: string, name: string) => {
      const found = scope === 'secrets' ? secrets[name] : process.env[name];
      if (found === undefined) throw new ConnectorError(`The REST definition ${origin} uses {{ ${scope}.${name} }}, which is not set`, 'config');
      return found;
    });
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return fill(node);
    if (Array.isArray(node)) return node.map(walk);
    if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, walk(child)]));
    return node;
  };
  return walk(value) as T;
}

/** Parses and checks definition text (templates left as they are). */
export function parseDefinition(text: string, origin: string): RestDefinition {
  const document = parseDocument(text);
  if (document.errors.length) throw new ConnectorError(`The REST definition ${origin} is not valid YAML: ${document.errors[0].message}`, 'config');
  return checkDefinition(document.toJS(), origin);
}

/** Reads the definition file named by a source's config. */
export function loadDefinition(path: string, baseDir: string): { definition: RestDefinition; path: string } {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (error) {
    throw new ConnectorError(`Cannot read the REST definition ${full}: ${(error as Error).message}`, 'config');
  }
  return { definition: parseDefinition(text, full), path: full };
}
