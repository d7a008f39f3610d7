/** JSON Schema validation with messages that name the key and the reason (for config files and mappings). */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));

/** `/sources/0/config` → `sources[0].config`, the way a user reads a YAML key. */
export function keyPath(pointer: string, root = ''): string {
  const parts = pointer.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  let path = root;
  for (const part of parts) path += /^\d+$/.test(part) ? `[${part}]` : path ? `.${part}` : part;
  return path || '(top level)';
}

export function describeErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  const messages = new Set<string>();
  for (const error of errors ?? []) {
    // anyOf/oneOf branches repeat what their children said
    if (error.keyword === 'anyOf' || error.keyword === 'oneOf' || error.keyword === 'if') continue;
    let where = keyPath(error.instancePath, root);
    let reason = error.message ?? 'is invalid';
    if (error.keyword === 'additionalProperties') {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty);
      where = keyPath(`${error.instancePath}/${extra}`, root);
      reason = 'is not a known key';
    } else if (error.keyword === 'required') {
      const missing = String((error.params as { missingProperty: string }).missingProperty);
      where = keyPath(`${error.instancePath}/${missing}`, root);
      reason = 'is required';
    } else if (error.keyword === 'enum') {
      reason = `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((value) => JSON.stringify(value)).join(', ')}`;
    }
    messages.add(`${where}: ${reason}`);
  }
  return [...messages];
}

const compiled = new WeakMap<object, ValidateFunction>();

/** Validates `value` against `schema`; returns the messages (empty when valid). */
export function validate(schema: Record<string, unknown>, value: unknown, root = ''): string[] {
  let validator = compiled.get(schema);
  if (!validator) {
    validator = ajv.compile(schema);
    compiled.set(schema, validator);
  }
  return validator(value) ? [] : describeErrors(validator.errors, root);
}
