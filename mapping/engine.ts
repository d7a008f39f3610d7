/**
 * The mapping engine. A mapping document is data: per stream, rules from source fields (or
 * constants) through named transforms to canonical targets. parseMapping validates a document;
 * compileMapping turns it into a function from one raw record to a CanonicalRecord (with the values left
 * out by rules that omit what they cannot map) or to all of that record's field errors.
 */
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parseDocument } from 'yaml';
import canonicalSchema from '../openapi/schemas/canonical-record.schema.json' with { type: 'json' };
import mappingSchema from '../openapi/schemas/mapping.schema.json' with { type: 'json' };
import type { CanonicalRecord, Email, Identifier, Phone } from '../openapi/generated/canonical-record.gen.js';
import type { FieldRule, MappingDocument, Target, TransformName, TransformStep } from '../openapi/generated/mapping.gen.js';
import { isEmpty, optionChecks, quote, TransformError, transforms, type Transform, type TransformContext } from './transforms.js';
import { readField } from '../connectors/kit/read-field.js';

export type { FieldRule, MappingDocument, Target, TransformStep } from '../openapi/generated/mapping.gen.js';

export interface MappingContext extends TransformContext {
  source: string;
  stream: string;
}

/** Why one target of a record could not be filled. `field` is the source field, or `(constant)`. */
export interface FieldError {
  field: string;
  target: string;
  reason: string;
}

/** A mapped record and the values its `on_error: omit` rules left out, or every error that keeps it from mapping. */
export type MapResult = { ok: true; record: CanonicalRecord; omitted: FieldError[] } | { ok: false; errors: FieldError[] };

export interface CompiledMapping {
  streams: string[];
  map(stream: string, data: Record<string, unknown>, ctx: MappingContext): MapResult;
}

export interface ConfigIssue {
  /** Key path in the document, e.g. `streams.rows.fields[2].transforms[0]`; empty for the document as a whole. */
  path: string;
  reason: string;
}

/** A mapping document that cannot be used: a config failure, to be fixed by whoever wrote the document. */
export class MappingConfigError extends Error {
  override name = 'MappingConfigError';

  constructor(
    readonly origin: string,
    readonly issues: ConfigIssue[],
    options?: { cause?: unknown },
  ) {
    super(issues.map((issue) => `${origin}: ${issue.path ? `${issue.path}: ` : ''}${issue.reason}`).join('\n'), options);
  }
}

// ajv-formats is CommonJS: under ESM its default import is module.exports, which carries `default` too.
const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true });
addFormats.default(ajv);
ajv.addSchema(canonicalSchema);
const validateDocument = ajv.compile<MappingDocument>(mappingSchema);

const multiValued = new Set<Target>(['person.email', 'person.phone', 'identifier']);

/** A path segment that stands for every element of a list (`other_emails.*`, `identities.*.value`). */
const EVERY = '*';

const hasEvery = (path: string | undefined) => path !== undefined && path.split('.').includes(EVERY);

/** Reads a mapping document (YAML or JSON text, or an already parsed value) and validates it; `origin` names it in errors. */
export function parseMapping(input: unknown, origin: string): MappingDocument {
  let document = input;
  if (typeof input === 'string') {
    const yaml = parseDocument(input);
    if (yaml.errors.length) throw new MappingConfigError(origin, yaml.errors.map((error) => ({ path: '', reason: error.message })));
    document = yaml.toJS();
  }
  if (!validateDocument(document)) throw new MappingConfigError(origin, schemaIssues(validateDocument.errors ?? []));
  const issues = Object.entries(document.streams).flatMap(([name, stream]) => streamIssues(name, stream.fields));
  if (issues.length) throw new MappingConfigError(origin, issues);
  return document;
}

export async function loadMappingFile(path: string): Promise<MappingDocument> {
  return parseMapping(await readMappingText(path), path);
}

function readMappingText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((error: Error) => {
    throw new MappingConfigError(path, [{ path: '', reason: `cannot read the mapping: ${error.message}` }], { cause: error });
  });
}

const compiledByPath = new Map<string, { text: string; mapping: CompiledMapping }>();

/**
 * The compiled mapping of a file, parsed and compiled again only when its text changed: pushed records load their
 * source's mapping for every group they arrive in, and an edited mapping must still take effect without a restart.
 */
export async function loadCompiledMapping(path: string): Promise<CompiledMapping> {
  const text = await readMappingText(path);
  const known = compiledByPath.get(path);
  if (known?.text === text) return known.mapping;
  const mapping = compileMapping(parseMapping(text, path));
  compiledByPath.set(path, { text, mapping });
  return mapping;
}

/** `/fields/2` under `streams.rows` → `streams.rows.fields[2]`, the way a reader of the YAML names a key. */
function keyPath(pointer: string, root = ''): string {
  const keys = pointer.split('/').slice(1).map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'));
  return keys.reduce((path, key) => (/^\d+$/.test(key) ? `${path}[${key}]` : path ? `${path}.${key}` : key), root);
}

function issueOf(error: ErrorObject, root = ''): ConfigIssue {
  const pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
    const expected = known.length ? `expected one of: ${known.join(', ')}` : 'no keys are allowed here';
    return { path: keyPath(`${pointer}/${String(params.additionalProperty)}`, root), reason: `is not a known key (${expected})` };
  }
  if (error.keyword === 'required') return { path: keyPath(`${pointer}/${String(params.missingProperty)}`, root), reason: 'is required' };
  if (error.keyword === 'enum') {
    return { path: keyPath(pointer, root), reason: `${quote(error.data)} is not one of: ${(params.allowedValues as unknown[]).join(', ')}` };
  }
  // An anyOf that no branch explains: say what the value should have been.
  if (error.keyword === 'anyOf') return { path: keyPath(pointer, root), reason: `${quote(error.data)} is not valid here. ${String(error.parentSchema?.description)}` };
  return { path: keyPath(pointer, root), reason: error.message ?? 'is invalid' };
}

/**
 * A value that fails an anyOf fails every branch; the branches written for another JSON type only
 * add noise (`must be string` for an object), so their errors are left out, and so is the anyOf
 * itself once a remaining error explains it.
 */
function schemaIssues(errors: ErrorObject[]): ConfigIssue[] {
  const otherType = errors.filter((error) => error.keyword === 'type' && /\/anyOf\/\d+\/type$/.test(error.schemaPath));
  const relevant = errors.filter(
    (error) =>
      !otherType.some((branch) => branch.instancePath === error.instancePath && error.schemaPath.startsWith(branch.schemaPath.slice(0, -'type'.length))),
  );
  const explained = (anyOf: ErrorObject) =>
    relevant.some((error) => error !== anyOf && (error.instancePath + '/').startsWith(anyOf.instancePath + '/'));
  const shown = relevant.filter((error) => error.keyword !== 'anyOf' || !explained(error)).map((error) => issueOf(error));
  return [...new Map(shown.map((issue) => [`${issue.path}: ${issue.reason}`, issue])).values()];
}

function stepParts(step: TransformStep): [TransformName, object] {
  return typeof step === 'string' ? [step, {}] : (Object.entries(step)[0] as [TransformName, object]);
}

/** The rules the schema cannot express: one source per rule, scheme and verified per target, options, and complete groups. */
function streamIssues(stream: string, rules: FieldRule[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const firstRule = new Map<Target, number>();
  rules.forEach((rule, index) => {
    const at = `streams.${stream}.fields[${index}]`;
    if ((rule.from === undefined) === (rule.value === undefined)) {
      issues.push({ path: at, reason: "needs exactly one of 'from' (a source field) and 'value' (a constant)" });
    }
    if (rule.target === 'identifier' && rule.scheme === undefined) issues.push({ path: `${at}.scheme`, reason: "is required for target 'identifier'" });
    if (rule.target !== 'identifier' && rule.scheme !== undefined) issues.push({ path: `${at}.scheme`, reason: "is only allowed for target 'identifier'" });
    for (const key of ['verified', 'verified_from'] as const) {
      if (rule[key] !== undefined && !multiValued.has(rule.target)) issues.push({ path: `${at}.${key}`, reason: 'is only allowed for targets identifier, person.email and person.phone' });
    }
    if (rule.verified !== undefined && rule.verified_from !== undefined) {
      issues.push({ path: `${at}.verified_from`, reason: "cannot be combined with 'verified' (a constant): use one of the two" });
    }
    for (const key of ['from', 'verified_from'] as const) {
      const segments = rule[key]?.split('.') ?? [];
      if (segments.filter((segment) => segment === EVERY).length > 1) issues.push({ path: `${at}.${key}`, reason: "may hold one '*' (every element of one list), not several" });
      if (segments[0] === EVERY) issues.push({ path: `${at}.${key}`, reason: "needs the list's field before '*' (e.g. other_emails.*)" });
    }
    if (hasEvery(rule.from) && !multiValued.has(rule.target)) {
      issues.push({ path: `${at}.from`, reason: "'*' (every element of a list) is only allowed for targets identifier, person.email and person.phone" });
    }
    if (hasEvery(rule.from) && rule.required) issues.push({ path: `${at}.required`, reason: "cannot be combined with '*' in 'from' (a list may be empty)" });
    if (rule.required && rule.on_error === 'omit') issues.push({ path: `${at}.on_error`, reason: "'omit' cannot be combined with 'required: true': a required value cannot be left out" });
    if (hasEvery(rule.verified_from) && !hasEvery(rule.from)) {
      issues.push({ path: `${at}.verified_from`, reason: "holds '*' but 'from' does not: the flag is read from the element the value came from" });
    }
    const earlier = firstRule.get(rule.target);
    if (earlier !== undefined && !multiValued.has(rule.target)) {
      issues.push({ path: `${at}.target`, reason: `'${rule.target}' is already the target of fields[${earlier}]; only ${[...multiValued].join(', ')} take several rules` });
    }
    if (earlier === undefined) firstRule.set(rule.target, index);
    (rule.transforms ?? []).forEach((step, position) => {
      const [name, options] = stepParts(step);
      const where = `${at}.transforms[${position}]`;
      // The schema lets a bare name through; its options may still be required (map_values needs values).
      const validateOptions = ajv.getSchema(`MappingDocument#/$defs/TransformStep/anyOf/1/properties/${name}`)!;
      if (!validateOptions(options)) {
        issues.push(...validateOptions.errors!.map((error) => issueOf(error, `${where}.${name}`)));
      }
      const problem = (optionChecks[name] as ((options: object) => string | undefined) | undefined)?.(options);
      if (problem) issues.push({ path: `${where}.${name}`, reason: problem });
    });
  });
  const interactionRules = [...firstRule.keys()].some((target) => target.startsWith('interaction.'));
  const missing = (['interaction.kind', 'interaction.occurred_at'] as const).filter((target) => !firstRule.has(target));
  if (interactionRules && missing.length) {
    issues.push({ path: `streams.${stream}.fields`, reason: `interaction fields need a rule for ${missing.join(' and ')}` });
  }
  if (firstRule.has('consent.email_marketing_at') && !firstRule.has('consent.email_marketing')) {
    issues.push({ path: `streams.${stream}.fields`, reason: 'consent.email_marketing_at needs a rule for consent.email_marketing' });
  }
  return issues;
}

/** One value a rule reads from a record, with the field it came from (an element of a list named by its index). */
interface ReadValue {
  field: string;
  value: unknown;
  /** With `*`: the element's index in the list, where `verified_from` reads its flag too. */
  element?: number;
}

interface CompiledRule {
  /** The source field, or `(constant)`, for error messages. */
  field: string;
  target: Target;
  /** One value, or with `*` one per element of the list (none for an empty or missing list). */
  read(data: Record<string, unknown>): ReadValue[] | { reason: string };
  steps: { run: Transform<unknown>; options: object }[];
  required: boolean;
  /** `on_error: omit`: a value the rule cannot map is left out of the record instead of failing it. */
  omit: boolean;
  scheme?: string;
  /** Whether the source verified the value: a constant, or read from the record (`verified_from`, of `element` with `*`). */
  verified(data: Record<string, unknown>, element?: number): { value: boolean | undefined } | { reason: string };
  /** The target's schema in the canonical model: a value that passes it passes the record's validation. */
  check: ValidateFunction;
  /** Whether the canonical value is text, so numbers and booleans from JSON sources become strings. */
  text: boolean;
}

// Where each target's value is defined in the canonical schema.
const exactPlaces: Partial<Record<Target, string>> = {
  observed_at: '/properties/observed_at',
  'person.email': '/$defs/Email/properties/address',
  'person.phone': '/$defs/Phone/properties/number',
  identifier: '/$defs/Identifier/properties/value',
  'consent.email_marketing': '/$defs/Consent/properties/status',
  'consent.email_marketing_at': '/$defs/Consent/properties/at',
};
const groupPlaces: [prefix: string, definition: string][] = [
  ['person.address.', 'Address'],
  ['person.', 'Person'],
  ['organisation.', 'Organisation'],
  ['interaction.', 'Interaction'],
];

function canonicalPlace(target: Target): string {
  const [prefix, definition] = groupPlaces.find(([prefix]) => target.startsWith(prefix)) ?? ['', ''];
  return exactPlaces[target] ?? `/$defs/${definition}/properties/${target.slice(prefix.length)}`;
}


function compileRule(rule: FieldRule): CompiledRule {
  const place = canonicalPlace(rule.target);
  const schema = place.split('/').slice(1).reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, canonicalSchema);
  const { from, value } = rule;
  return {
    field: from ?? '(constant)',
    target: rule.target,
    read: from === undefined ? () => [{ field: '(constant)', value }] : fieldReader(from),
    steps: (rule.transforms ?? []).map((step) => {
      const [name, options] = stepParts(step);
      // Each transform's options type is checked by the schema; here they are one list of steps.
      return { run: transforms[name] as Transform<unknown>, options };
    }),
    required: rule.required ?? false,
    omit: rule.on_error === 'omit',
    scheme: rule.scheme,
    verified: verifiedReader(rule),
    check: ajv.getSchema(`CanonicalRecord#${place}`)!,
    text: schema.type === 'string',
  };
}

/** Reads `from`: the field, or with `*` the part after it of every element of the list before it. */
function fieldReader(from: string): CompiledRule['read'] {
  const segments = from.split('.');
  const at = segments.indexOf(EVERY);
  if (at < 0) return (data) => [{ field: from, value: readField(data, from) }];
  const list = segments.slice(0, at).join('.');
  const within = segments.slice(at + 1).join('.');
  return (data) => {
    const items = readField(data, list);
    if (isEmpty(items)) return [];
    if (!Array.isArray(items)) return { reason: `'${list}' holds ${quote(items)}, not a list` };
    return items.map((item: unknown, element) => ({
      field: within ? `${list}.${element}.${within}` : `${list}.${element}`,
      value: !within ? item : typeof item === 'object' && item !== null ? readField(item as Record<string, unknown>, within) : undefined,
      element,
    }));
  };
}

const verifiedTexts: Record<string, boolean> = { true: true, false: false };

/** The `verified` of a rule: its constant, or the record's field named by `verified_from`, which must hold a boolean. */
function verifiedReader(rule: FieldRule): CompiledRule['verified'] {
  const { verified, verified_from: template } = rule;
  if (template === undefined) return () => ({ value: verified });
  return (data, element) => {
    const path = element === undefined ? template : template.split('.').map((segment) => (segment === EVERY ? String(element) : segment)).join('.');
    const flag = readField(data, path);
    if (isEmpty(flag)) return { value: undefined };
    if (typeof flag === 'boolean') return { value: flag };
    // CSV and form-encoded sources carry booleans as text.
    const text = typeof flag === 'string' ? verifiedTexts[flag.trim().toLowerCase()] : undefined;
    return text === undefined ? { reason: `verified_from '${path}': ${quote(flag)} is not true or false` } : { value: text };
  };
}

function valueReason(value: unknown, error: ErrorObject): string {
  if (error.keyword === 'enum') return `${quote(value)} is not one of: ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${quote(value)} ${error.message ?? 'is invalid'}`;
}

/** Runs one rule's transforms and checks over a value it read: the canonical value (undefined when empty and not required), or why there is none. */
function applyRule(rule: CompiledRule, read: unknown, ctx: MappingContext): { value: unknown } | { reason: string } {
  let value = read;
  try {
    for (const { run, options } of rule.steps) value = run(value, options, ctx);
  } catch (error) {
    // Anything other than a TransformError is our bug, not the record's: let it fail the job.
    if (error instanceof TransformError) return { reason: error.message };
    throw error;
  }
  if (isEmpty(value)) return rule.required ? { reason: 'is required' } : { value: undefined };
  if (rule.text && (typeof value === 'number' || typeof value === 'boolean')) value = String(value);
  return rule.check(value) ? { value } : { reason: valueReason(value, rule.check.errors![0]) };
}

function compact<T extends object>(object: T): T | undefined {
  const entries = Object.entries(object).filter(([, value]) => value !== undefined);
  return entries.length ? (Object.fromEntries(entries) as T) : undefined;
}

/** The single-valued targets directly under `prefix` (person. leaves out person.address.*), keyed by the rest of the name. */
function group(values: Map<Target, unknown>, prefix: string): Record<string, unknown> | undefined {
  const entries = [...values]
    .filter(([target]) => target.startsWith(prefix))
    .map(([target, value]) => [target.slice(prefix.length), value] as const)
    .filter(([key]) => !key.includes('.'));
  return compact(Object.fromEntries(entries));
}

/**
 * Adds a value of a multi-valued target once: a value two rules map (a primary email that is also one of all the
 * emails listed) is kept once, verified when either rule says so.
 */
function addOnce<T extends { verified?: boolean }>(list: T[], item: T, key: (entry: T) => string): void {
  const existing = list.find((entry) => key(entry) === key(item));
  if (!existing) list.push(item);
  else if (item.verified !== undefined && existing.verified !== true) existing.verified = item.verified;
}

function assemble(values: Map<Target, unknown>, emails: Email[], phones: Phone[], identifiers: Identifier[]): CanonicalRecord {
  const list = <T>(items: T[]) => (items.length ? items : undefined);
  const address = group(values, 'person.address.');
  const interaction = group(values, 'interaction.');
  const status = values.get('consent.email_marketing');
  const consent = status === undefined ? undefined : { channel: 'email_marketing', status, at: values.get('consent.email_marketing_at') };
  // Each value passed its place in the canonical schema, so the parts have their canonical types.
  const record = compact({
    observed_at: values.get('observed_at'),
    person: compact({ ...group(values, 'person.'), emails: list(emails), phones: list(phones), addresses: address && [address] }),
    organisation: group(values, 'organisation.'),
    identifiers: list(identifiers),
    consent: consent && [compact(consent)],
    interactions: interaction && [interaction],
  });
  return (record ?? {}) as CanonicalRecord;
}

/** Compiles a document from parseMapping or loadMappingFile (it is not validated again here). */
export function compileMapping(doc: MappingDocument): CompiledMapping {
  const streams = new Map(Object.entries(doc.streams).map(([name, stream]) => [name, stream.fields.map(compileRule)]));

  function map(stream: string, data: Record<string, unknown>, ctx: MappingContext): MapResult {
    const rules = streams.get(stream);
    if (!rules) {
      return { ok: false, errors: [{ field: '(stream)', target: '(stream)', reason: `stream '${stream}' is not in the mapping (it has: ${[...streams.keys()].join(', ')})` }] };
    }
    const errors: FieldError[] = [];
    const omitted: FieldError[] = [];
    const fail = (rule: CompiledRule, error: FieldError) => (rule.omit ? omitted : errors).push(error);
    const values = new Map<Target, unknown>();
    const emails: Email[] = [];
    const phones: Phone[] = [];
    const identifiers: Identifier[] = [];
    for (const rule of rules) {
      const read = rule.read(data);
      if ('reason' in read) {
        fail(rule, { field: rule.field, target: rule.target, reason: read.reason });
        continue;
      }
      for (const { field, value, element } of read) {
        const result = applyRule(rule, value, ctx);
        if ('reason' in result) {
          fail(rule, { field, target: rule.target, reason: result.reason });
          continue;
        }
        if (result.value === undefined) continue;
        const text = result.value as string;
        const flag = rule.verified(data, element);
        if ('reason' in flag) {
          fail(rule, { field, target: rule.target, reason: flag.reason });
          continue;
        }
        const verified = flag.value === undefined ? {} : { verified: flag.value };
        if (rule.target === 'person.email') addOnce(emails, { address: text, ...verified }, (email) => email.address);
        else if (rule.target === 'person.phone') addOnce(phones, { number: text, ...verified }, (phone) => phone.number);
        else if (rule.target === 'identifier') addOnce(identifiers, { scheme: rule.scheme!, value: text, ...verified }, (id) => `${id.scheme}:${id.value}`);
        else values.set(rule.target, result.value);
      }
    }
    // A group's required parts: only reported when nothing else already explains their absence. One a rule omitted
    // cannot be left out after all: why it was fails the record.
    const require = (needed: boolean, target: Target, reason: string) => {
      if (!needed || values.has(target) || errors.some((error) => error.target === target)) return;
      const left = omitted.filter((error) => error.target === target);
      errors.push(...(left.length ? left : [{ field: rules.find((rule) => rule.target === target)?.field ?? '(none)', target, reason }]));
    };
    const interaction = [...values.keys()].some((target) => target.startsWith('interaction.'));
    require(interaction, 'interaction.kind', 'is required when other interaction fields are set');
    require(interaction, 'interaction.occurred_at', 'is required when other interaction fields are set');
    return errors.length ? { ok: false, errors } : { ok: true, record: assemble(values, emails, phones, identifiers), omitted };
  }

  return { streams: [...streams.keys()], map };
}
