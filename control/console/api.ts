/**
 * The console's one way to reach the control API: same origin, `/v1`, the API key from session
 * storage as a Bearer token. Failures become {@link ApiFailure}s carrying the API's own message
 * and field details; a 401 signs the console out with that message.
 */

const KEY_ITEM = 'sipai.console.apiKey';

/** One field the API rejected, as `error.details` lists it (`endpointing.maxMs`). */
export interface FieldIssue {
  field: string;
  message: string;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

let unauthorized: (message: string) => void = () => {};

/** What to do when the API refuses the stored key (revoked, or never valid). */
export function onUnauthorized(handler: (message: string) => void): void {
  unauthorized = handler;
}

function issuesOf(details: unknown): FieldIssue[] {
  if (!Array.isArray(details)) return [];
  return details.filter(
    (d): d is FieldIssue => typeof d?.field === 'string' && typeof d?.message === 'string',
  );
}

/** Calls `METHOD /v1<path>` with an optional JSON body; resolves with the parsed answer. */
export async function api<T>(method: string, path: string, body?: unknown, key = storedKey()): Promise<T> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiFailure(0, 'unreachable', 'The server did not answer. Is sipai still running?');
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    const failure = new ApiFailure(
      res.status,
      error?.code ?? `http_${res.status}`,
      error?.message ?? `The server answered ${res.status} ${res.statusText}`.trim(),
      issuesOf(error?.details),
    );
    // Only the stored key signs the console out; a key being tried at sign-in just fails.
    if (res.status === 401 && key !== null && key === storedKey()) unauthorized(failure.message);
    throw failure;
  }
  return json as T;
}

/** The message of anything thrown, for people. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
