import {
  type IntegerOptions,
  Kind,
  type SchemaOptions,
  type TNull,
  type TSchema,
  type TUnion,
  Type,
} from '@sinclair/typebox';
import { t } from 'elysia';

/**
 * An enum of strings or of numbers (OpenAPI `enum`, typed) with no default. Elysia's
 * `t.UnionEnum` defaults to its first value, and Elysia fills defaults into bodies: an omitted
 * PATCH field would be overwritten. (A union of literals would do, but the OpenAPI generator
 * renders it as a string enum, numbers included.)
 */
export function oneOf<const V extends readonly [string, ...string[]] | readonly [number, ...number[]]>(
  values: V,
  options?: SchemaOptions,
) {
  const schema = t.UnionEnum(values, options);
  Reflect.deleteProperty(schema, 'default');
  return schema;
}

/**
 * A JSON integer. Elysia's `t.Integer` also accepts numeric strings (right for query strings,
 * which `pageQuery` uses); in JSON bodies `"60"` is a type error, so bodies and responses use
 * TypeBox's own.
 */
export function integer(options?: IntegerOptions) {
  return Type.Integer(options);
}

/**
 * `schema` or null. An enum from {@link oneOf} takes null as one more value instead, so the
 * OpenAPI document lists null among its values rather than contradicting its own `enum`.
 */
export function nullable<S extends TSchema>(schema: S): TUnion<[S, TNull]> {
  const values = (schema as { enum?: unknown[] }).enum;
  if (schema[Kind] === 'UnionEnum' && Array.isArray(values)) {
    const widened = t.UnionEnum([...values, null] as never, { description: schema.description });
    Reflect.deleteProperty(widened, 'default');
    return widened as never;
  }
  return t.Union([schema, t.Null()]);
}
