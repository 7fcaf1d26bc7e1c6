import { type TSchema, t } from 'elysia';

/** Page size when `limit` is absent, and the largest one may ask for. */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/**
 * `?limit=&cursor=` of every list. Lists are newest first and page on the primary key (ids sort
 * by creation time, see ids.ts): a cursor is the last id of the previous page, so pages stay
 * stable while rows are added.
 */
export function pageQuery<C extends TSchema>(cursor: C) {
  return t.Object(
    {
      limit: t.Optional(
        t.Integer({
          minimum: 1,
          maximum: MAX_PAGE_SIZE,
          default: DEFAULT_PAGE_SIZE,
          description: 'Items per page.',
          examples: [20],
        }),
      ),
      cursor: t.Optional(cursor),
    },
    { additionalProperties: false },
  );
}

/**
 * A page of `item`: the items and the cursor of the next page (null on the last one). The
 * page's example is the item's first example on a last page.
 */
export function pageOf<T extends TSchema>(item: T) {
  const itemExamples = (item as { examples?: unknown[] }).examples;
  return t.Object(
    {
      data: t.Array(item),
      nextCursor: t.Union([t.String(), t.Null()], {
        description: 'Pass as `cursor` to get the next page; null when this is the last page.',
      }),
    },
    Array.isArray(itemExamples) && itemExamples.length > 0
      ? { examples: [{ data: [itemExamples[0]], nextCursor: null }] }
      : {},
  );
}

/**
 * Turns `limit + 1` fetched rows into a page: the extra row only says whether another page
 * exists. `cursorOf` names the cursor of the last row kept.
 */
export function toPage<R, I>(
  rows: R[],
  limit: number,
  map: (row: R) => I,
  cursorOf: (row: R) => string,
): { data: I[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { data: kept.map(map), nextCursor: more ? cursorOf(kept[kept.length - 1]) : null };
}
