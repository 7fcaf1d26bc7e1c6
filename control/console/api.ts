/**
 * The console's one way to reach the control API: same origin, `/v1`, the API key from session
 * storage as a Bearer token. Failures become {@link ApiFailure}s carrying the API's own message
 * and field details; a 401 signs the console out with that message.
 */
import { SseParser } from '../../core/wire/sse.ts';

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
  if (!res.ok) throw refused(res, json, key);
  return json as T;
}

/**
 * The failure of a refused request, from the API's error body; a 401 of the stored key signs the
 * console out (a key being tried at sign-in just fails).
 */
function refused(res: Response, json: unknown, key: string | null): ApiFailure {
  const error = (json as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
  const failure = new ApiFailure(
    res.status,
    error?.code ?? `http_${res.status}`,
    error?.message ?? `The server answered ${res.status} ${res.statusText}`.trim(),
    issuesOf(error?.details),
  );
  if (res.status === 401 && key !== null && key === storedKey()) unauthorized(failure.message);
  return failure;
}

/** One server-sent event: its name, its data (one line of JSON) and its id. */
export interface StreamEvent {
  event: string;
  data: unknown;
  id: string | null;
}

export interface StreamHandlers {
  /**
   * The stream is open; `again` after it had dropped. Events from before that may be missed:
   * the view loads what it shows once more.
   */
  open(again: boolean): void;
  event(event: StreamEvent): void;
  /** It dropped or was refused; another try comes in `retryInMs`, or never when that is null. */
  down(failure: ApiFailure, retryInMs: number | null): void;
}

/** An event's data as the API sends it (one line of JSON), or its text if it is not JSON. */
function jsonOrText(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

/** Waits before reconnecting: one second, doubling to thirty. */
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;
/** Nothing at all for this long (the API's heartbeat comes every 15 s): the stream is taken as dead. */
const SILENT_MS = 45_000;

/**
 * Reads `GET /v1<path>` as server-sent events for as long as `active()` says, with `fetch()` and
 * the stored key as a Bearer token (EventSource cannot send it, and a key never goes in a URL).
 * A stream that drops, or goes silent past its heartbeat, is opened again after a backoff; a 401
 * signs the console out, a 404 ends it. Leaving the view (`active()` false) closes it.
 */
export function eventStream(
  path: string,
  handlers: StreamHandlers,
  active: () => boolean,
): { close(): void } {
  let closed = false;
  let opened = false;
  let failures = 0;
  let abort: AbortController | null = null;
  let retryTimer = 0;
  let silentTimer = 0;
  const close = () => {
    if (closed) return;
    closed = true;
    abort?.abort();
    window.clearTimeout(retryTimer);
    window.clearTimeout(silentTimer);
    window.removeEventListener('hashchange', check);
  };
  const check = () => {
    if (!active()) close();
  };
  window.addEventListener('hashchange', check);

  const retry = (failure: ApiFailure, afterMs?: number) => {
    if (closed) return;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** failures++) * (0.8 + Math.random() * 0.4);
    const delay = Math.round(afterMs ?? backoff);
    handlers.down(failure, delay);
    retryTimer = window.setTimeout(() => void connect(), delay);
  };

  const connect = async (): Promise<void> => {
    const key = storedKey();
    if (closed || !active() || !key) return close();
    const controller = new AbortController();
    abort = controller;
    const quiet = () => {
      window.clearTimeout(silentTimer);
      silentTimer = window.setTimeout(() => controller.abort(), SILENT_MS);
    };
    let res: Response;
    try {
      quiet();
      res = await fetch(`/v1${path}`, {
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
        credentials: 'omit',
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch {
      return retry(new ApiFailure(0, 'unreachable', 'The server did not answer. Is sipai still running?'));
    }
    if (!res.ok || !res.body) {
      let json: unknown = null;
      try {
        json = await res.json();
      } catch {
        json = null;
      }
      const failure = refused(res, json, key);
      if (res.status === 401 || res.status === 404) {
        close();
        handlers.down(failure, null);
        return;
      }
      const retryAfter = Number(res.headers.get('retry-after'));
      return retry(failure, retryAfter > 0 ? retryAfter * 1000 : undefined);
    }
    const openedAt = Date.now();
    handlers.open(opened);
    opened = true;
    const parser = new SseParser();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || closed) break;
        if (!active()) return close();
        quiet();
        for (const { event, data, id } of parser.push(value)) {
          if (!closed) handlers.event({ event, data: jsonOrText(data), id });
        }
      }
    } catch {
      // Cut, or aborted: closed, or silent for too long.
    }
    window.clearTimeout(silentTimer);
    // A stream that stayed up a while starts the backoff over; one dropped at once does not.
    if (Date.now() - openedAt > RETRY_MAX_MS) failures = 0;
    retry(new ApiFailure(0, 'stream_ended', 'the connection closed'));
  };

  void connect();
  return { close };
}

/** The message of anything thrown, for people. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
