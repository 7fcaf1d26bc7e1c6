import { Kind, type TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { TRANSFER_TARGET } from './modules/agents/model.ts';
import { CALL_ID } from './modules/calls/model.ts';
import { HHMM } from './modules/campaigns/model.ts';
import { E164 } from './modules/numbers/model.ts';

/** The last dotted segment of a field path (`contacts.0.to` → `to`). */
function lastSegment(field: string): string {
  const dot = field.lastIndexOf('.');
  return dot < 0 ? field : field.slice(dot + 1);
}

/**
 * Validation failures in words for people: what the value must be, with an example, never the
 * schema's regular expression. Used by the error handler (control/errors.ts) for every 422.
 */

/** The resource each id prefix names (control/ids.ts hands the ids out). */
const ID_KINDS: Record<string, string> = {
  acc: 'account',
  key: 'API key',
  agt: 'agent',
  num: 'number',
  cal: 'call',
  cmp: 'campaign',
  whk: 'webhook endpoint',
  trg: 'trigger',
  dlv: 'delivery',
};

/** `^agt_[0-9a-z]{26}$` and the like: a prefixed id of 26 base32 (or hex) characters. */
const PREFIXED_ID = /^\^([a-z]{3})_\[0-9a-([zf])\]\{(\d+)\}\$$/;

/** An example id of the format `pattern` describes, when it is a prefixed id. */
function prefixedId(
  pattern: string,
): { prefix: string; kind: string; chars: string; example: string } | null {
  const m = PREFIXED_ID.exec(pattern);
  if (!m) return null;
  const [, prefix, last, count] = m;
  const sample = last === 'f' ? '0123456789abcdef0123456789abcdef' : '01j9x6k3m2q8w5r7t4v0y1z3ab01j9x6k3';
  return {
    prefix,
    kind: ID_KINDS[prefix] ?? 'resource',
    chars: `${prefix}_ and ${count} ${last === 'f' ? 'hex digits' : 'lower-case letters or digits'}`,
    example: `${prefix}_${sample.slice(0, Number(count))}`,
  };
}

/** Patterns of the API's schemas, each in words. */
const PATTERN_PHRASES: Record<string, string> = {
  [E164]: 'must be an E.164 number like +14155550123',
  [TRANSFER_TARGET]: 'must be an E.164 number like +14155550123 or a SIP URI like sip:desk@example.com',
  [HHMM]: 'must be a time of day like 09:30 (HH:MM, 24 h)',
  [CALL_ID]:
    'must be a call id like cal_01j9x6k3m2q8w5r7t4v0y1z3ab (1-128 letters, digits, "_", ".", ":" or "-")',
  '^https?://[^\\s]+$': 'must be an http(s) URL like https://example.com/hooks/sipai',
  '^[0-9*#]$': 'must be one keypad key: a digit, "*" or "#"',
  '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$': 'must be a language tag like en-US',
  '^[A-Za-z][A-Za-z0-9_]{0,63}$': 'must be a letter then up to 63 letters, digits or "_", like first_name',
  '^[A-Za-z0-9_-]{1,64}$': 'must be 1-64 letters, digits, "_" or "-", like book_table',
};

/** How the format of an id (or another patterned value) reads, for a 404 naming a malformed id. */
export function formatOf(pattern: string): string | null {
  const id = prefixedId(pattern);
  if (id) return `${id.kind} ids are ${id.chars}, like ${id.example}`;
  if (pattern === CALL_ID) return 'call ids are 1-128 letters, digits, "_", ".", ":" or "-"';
  return null;
}

/** The resource an id pattern names (`agent` for `^agt_…`), when it is a prefixed id. */
export function kindOf(pattern: string): string | null {
  return prefixedId(pattern)?.kind ?? null;
}

function patternPhrase(schema: Record<string, unknown>, field: string): string {
  const pattern = String(schema.pattern);
  // A list's cursor is opaque to its reader, whatever it is made of.
  if (lastSegment(field) === 'cursor')
    return 'is not a cursor this list returned: pass nextCursor as it came';
  const known = PATTERN_PHRASES[pattern];
  if (known) return known;
  const id = prefixedId(pattern);
  if (id)
    return `must be ${/^[aeiou]/i.test(id.kind) ? 'an' : 'a'} ${id.kind} id like ${id.example} (${id.chars})`;
  const examples = schema.examples;
  if (Array.isArray(examples) && examples.length > 0) return `must look like ${JSON.stringify(examples[0])}`;
  return 'is not in the accepted format';
}

/** A JSON value's kind, as a message names what it was given. */
function kindOfValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** What a schema accepts, as a noun phrase: `a string`, `one of a, b`, `null`. */
function noun(schema: Record<string, unknown>): string {
  if (Array.isArray(schema.enum))
    return `one of ${schema.enum.map((v) => (v === null ? 'null' : v)).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema.const);
  switch (schema.type) {
    case 'string':
      return 'a string';
    case 'integer':
      return 'a whole number';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
  }
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Record<string, unknown>[]).map(noun).join(' or ');
  return 'a valid value';
}

const plural = (n: unknown, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** Whether `value` has the JSON type a union branch asks for. */
function fits(branch: Record<string, unknown>, value: unknown): boolean {
  if (Array.isArray(branch.enum)) return branch.enum.some((v) => typeof v === typeof value);
  switch (branch.type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
  return false;
}

/** A field `name` close to `wanted` (a typo), by edit distance of at most 2. */
function closest(wanted: string, names: string[]): string | null {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const next = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = next;
      }
    }
    return row[b.length];
  };
  let best: string | null = null;
  let bestDistance = 3;
  for (const name of names) {
    const d = distance(wanted.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** One failed check as TypeBox (through Elysia) reports it. */
export interface SchemaIssue {
  type?: number;
  path?: string;
  summary?: string;
  message?: string;
  value?: unknown;
  schema?: Record<string, unknown> & { enum?: unknown[] };
}

/**
 * What `issue` asks of the value, in words: "must be an E.164 number like +14155550123",
 * "must be at most 2000 characters", "is required". `field` is the dotted path it names;
 * `where` says whether the field is a body field or a query parameter.
 */
export function describeIssue(issue: SchemaIssue, field: string, where: 'body' | 'query' = 'body'): string {
  const schema = issue.schema ?? {};
  const value = issue.value;
  if (Array.isArray(schema.enum)) return `must be one of ${schema.enum.join(', ')}`;
  switch (issue.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {});
      const name = lastSegment(field);
      const suggestion = closest(name, known);
      const what = where === 'query' ? 'a query parameter of this route' : 'a field here';
      return `is not ${what}${suggestion ? `; did you mean ${suggestion}?` : known.length > 0 && known.length <= 8 ? ` (${where === 'query' ? 'parameters' : 'fields'}: ${known.join(', ')})` : ''}`;
    }
    case ValueErrorType.ObjectMinProperties:
      return schema.minProperties === 1
        ? 'must set at least one field'
        : `must set at least ${plural(schema.minProperties, 'field')}`;
    case ValueErrorType.ObjectMaxProperties:
      return `must have at most ${plural(schema.maxProperties, 'entry')}`.replace('entrys', 'entries');
    case ValueErrorType.StringPattern:
      return patternPhrase(schema, field);
    case ValueErrorType.StringFormat:
      if (schema.format === 'date-time') return 'must be a date-time like 2026-01-05T09:30:00Z (ISO 8601)';
      return `must be a valid ${schema.format}`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1
        ? 'must not be empty'
        : `must be at least ${plural(schema.minLength, 'character')}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${plural(schema.maxLength, 'character')}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${schema.minimum}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${schema.maximum}`;
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum:
      return `must be more than ${schema.exclusiveMinimum}`;
    case ValueErrorType.IntegerExclusiveMaximum:
    case ValueErrorType.NumberExclusiveMaximum:
      return `must be less than ${schema.exclusiveMaximum}`;
    case ValueErrorType.ArrayMinItems:
      return schema.minItems === 1
        ? 'must not be empty'
        : `must have at least ${plural(schema.minItems, 'item')}`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${plural(schema.maxItems, 'item')}`;
    case ValueErrorType.ArrayUniqueItems:
      return 'must not repeat an item';
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`;
    case ValueErrorType.Integer:
    case ValueErrorType.Number:
    case ValueErrorType.String:
    case ValueErrorType.Boolean:
    case ValueErrorType.Object:
    case ValueErrorType.Array:
    case ValueErrorType.Null:
      if (field === '(body)' && issue.type === ValueErrorType.Object)
        return 'the request body must be a JSON object';
      if (where === 'query') return `must be ${noun(schema)}`;
      return `must be ${noun(schema)}, not ${kindOfValue(value)}`;
    case ValueErrorType.Union: {
      const branches = (schema.anyOf as Record<string, unknown>[] | undefined) ?? [];
      // A numeric query parameter: a numeric string or a number, as Elysia coerces query strings.
      if (where === 'query' && branches.some((b) => b.type === 'integer' || b.type === 'number')) {
        const whole = branches.some((b) => b.type === 'integer');
        const range =
          schema.minimum !== undefined && schema.maximum !== undefined
            ? ` from ${schema.minimum} to ${schema.maximum}`
            : '';
        return `must be ${whole ? 'a whole number' : 'a number'}${range}`;
      }
      const fitting = branches.filter((b) => fits(b, value));
      if (fitting.length === 1 && (fitting[0] as TSchema)[Kind]) {
        const first = Value.Errors(fitting[0] as TSchema, value).First() as ValueError | undefined;
        if (first) return describeIssue({ ...first, path: '' }, field, where);
      }
      if (where === 'query' && fitting.length === 0 && typeof value === 'string') {
        return `must be ${branches
          .map(noun)
          .filter((n, i, all) => all.indexOf(n) === i)
          .join(' or ')}`;
      }
      return `must be ${branches
        .map(noun)
        .filter((n, i, all) => all.indexOf(n) === i)
        .join(' or ')}, not ${kindOfValue(value)}`;
    }
  }
  return issue.summary ?? issue.message ?? 'is not valid';
}
