/**
 * The main-thread side of the pocketsphinx decoding thread (`decoder-worker.ts`): one Bun
 * `Worker` per process, started on first use and unref'd (it never keeps the process alive),
 * with request/reply matching by id. Audio buffers are transferred, not copied.
 */

import type { Grammar } from './grammar.ts';
import type { Recognition } from './pocketsphinx.ts';

/** A request to the decoding thread. */
export type DecoderRequest =
  | { id: number; kind: 'recognize'; pcm: Int16Array; grammar: Grammar | null }
  | { id: number; kind: 'prepare'; grammar: Grammar | null }
  | { id: number; kind: 'sizes' }
  | { id: number; kind: 'close' };

/** The decoding thread's reply to the request with the same id. */
export type DecoderReply =
  | { id: number; ok: true; recognition?: Recognition; sizes?: Record<string, number> }
  | { id: number; ok: false; error: string };

type Pending = { resolve: (r: DecoderReply & { ok: true }) => void; reject: (e: Error) => void };

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(error: Error): void {
  for (const p of pending.values()) p.reject(error);
  pending.clear();
  worker = null;
}

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./decoder-worker.ts', import.meta.url).href);
  w.onmessage = (event: MessageEvent<DecoderReply>) => {
    const reply = event.data;
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve(reply);
    else p.reject(new Error(reply.error));
  };
  w.onerror = (event) => {
    failAll(new Error(`pocketsphinx decoding thread failed: ${event.message}`));
    w.terminate();
  };
  (w as Worker & { unref(): void }).unref();
  worker = w;
  return w;
}

type Body<R> = R extends { id: number } ? Omit<R, 'id'> : never;

/** Sends one request to the decoding thread and waits for its reply. */
export function ask(request: Body<DecoderRequest>): Promise<DecoderReply & { ok: true }> {
  const w = thread();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    const message = { ...request, id } as DecoderRequest;
    if (message.kind === 'recognize') w.postMessage(message, [message.pcm.buffer]);
    else w.postMessage(message);
  });
}

/** Stops the decoding thread (tests, shutdown); the next request starts a new one. */
export function stopDecoderThread(): void {
  if (!worker) return;
  worker.terminate();
  failAll(new Error('pocketsphinx decoding thread stopped'));
}
