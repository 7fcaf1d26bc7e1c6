/**
 * The main-thread side of the pocketsphinx decoding threads (`decoder-worker.ts`): Bun `Worker`s
 * started on first use (one per core, `POCKETSPHINX_THREADS` to choose) and unref'd (they never
 * keep the process alive). A stream is bound to one thread for its life (`DecoderLane`), so its
 * blocks arrive in order; requests that expect a reply are matched by id. Audio buffers are
 * transferred, not copied.
 *
 * Requests go out in batches, one message in flight per thread: while a thread works, new
 * requests wait here and leave together when it reports idle. A thread is ref'd only while it
 * has work (so an idle one never keeps the process alive): under Bun 1.4, the event loop
 * busy-polls while an unref'd worker runs, burning a second core for every decoding one.
 */

import { availableParallelism } from 'node:os';
import type { Grammar } from './grammar.ts';
import type { Recognition } from './pocketsphinx.ts';

/** A request to a decoding thread. */
export type DecoderRequest =
  /** One more block of a stream's utterance; `grammar` on the utterance's first block. */
  | { id: 0; kind: 'feed'; stream: number; grammar?: Grammar | null; pcm: Int16Array }
  | { id: number; kind: 'finish'; stream: number }
  | { id: 0; kind: 'abort'; stream: number }
  | { id: number; kind: 'prepare'; grammar: Grammar | null }
  /** A stream that prepared `grammar` closed. */
  | { id: 0; kind: 'release'; grammar: Grammar | null }
  | { id: number; kind: 'sizes' }
  | { id: number; kind: 'close' };

/** A decoding thread's reply to the request with the same id. */
export type DecoderReply =
  | { id: number; ok: true; recognition?: Recognition; sizes?: Record<string, number> }
  | { id: number; ok: false; error: string };

/** What a decoding thread sends back: replies, and whether it is ready for the next batch. */
export interface DecoderReport {
  replies: DecoderReply[];
  idle: boolean;
}

type Pending = { resolve: (r: DecoderReply & { ok: true }) => void; reject: (e: Error) => void };

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Streams bound to it (for choosing the least loaded). */
  streams: number;
  /** Requests waiting for the thread to finish its batch. */
  queue: DecoderRequest[];
  busy: boolean;
  /** Whether the worker keeps the process alive now (only while it has work). */
  reffed: boolean;
}

type Refable = Worker & { ref(): void; unref(): void };

/** Refs the worker while it has a batch or an unanswered request, unrefs it otherwise. */
function updateRef(t: Thread): void {
  const active = t.busy || t.pending.size > 0;
  if (active === t.reffed) return;
  t.reffed = active;
  if (active) (t.worker as Refable).ref();
  else (t.worker as Refable).unref();
}

/** How many decoding threads: `POCKETSPHINX_THREADS`, else one per core (at most 8). */
export function decoderThreadCount(env: NodeJS.ProcessEnv = process.env): number {
  const chosen = Number.parseInt(env.POCKETSPHINX_THREADS ?? '', 10);
  if (Number.isFinite(chosen) && chosen > 0) return Math.min(chosen, 32);
  return Math.max(1, Math.min(8, availableParallelism()));
}

let threads: Array<Thread | null> = [];
let nextId = 1;
let nextStream = 1;

function failAll(thread: Thread, error: Error): void {
  for (const p of thread.pending.values()) p.reject(error);
  thread.pending.clear();
}

function start(slot: number): Thread {
  const worker = new Worker(new URL('./decoder-worker.ts', import.meta.url).href);
  const thread: Thread = { worker, pending: new Map(), streams: 0, queue: [], busy: false, reffed: true };
  worker.onmessage = (event: MessageEvent<DecoderReport>) => {
    for (const reply of event.data.replies) {
      const p = thread.pending.get(reply.id);
      if (!p) continue;
      thread.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply);
      else p.reject(new Error(reply.error));
    }
    if (event.data.idle) {
      thread.busy = false;
      flush(thread);
    }
    updateRef(thread);
  };
  worker.onerror = (event) => {
    failAll(thread, new Error(`pocketsphinx decoding thread failed: ${event.message}`));
    if (threads[slot] === thread) threads[slot] = null;
    worker.terminate();
  };
  threads[slot] = thread;
  updateRef(thread);
  return thread;
}

/** Sends the queued requests as one batch, unless the thread is still on the last one. */
function flush(t: Thread): void {
  if (t.busy || t.queue.length === 0) return;
  const batch = t.queue;
  t.queue = [];
  t.busy = true;
  updateRef(t);
  const transfer: ArrayBuffer[] = [];
  for (const r of batch) if (r.kind === 'feed') transfer.push(r.pcm.buffer as ArrayBuffer);
  t.worker.postMessage(batch, transfer);
}

function send(t: Thread, request: DecoderRequest): void {
  t.queue.push(request);
  flush(t);
}

/** The thread in `slot` (started if needed). */
function thread(slot: number): Thread {
  return threads[slot] ?? start(slot);
}

/** The slot with the fewest bound streams (started threads first, then a new one). */
function leastLoaded(): number {
  const count = decoderThreadCount();
  if (threads.length < count) threads.length = count;
  let best = 0;
  for (let i = 1; i < count; i++) {
    const load = threads[i]?.streams ?? 0;
    if (load < (threads[best]?.streams ?? 0)) best = i;
  }
  return best;
}

type Body<R> = R extends { id: number } ? Omit<R, 'id'> : never;

function ask(slot: number, request: Body<DecoderRequest>): Promise<DecoderReply & { ok: true }> {
  const t = thread(slot);
  const id = nextId++;
  return new Promise((resolve, reject) => {
    t.pending.set(id, { resolve, reject });
    send(t, { ...request, id } as DecoderRequest);
  });
}

/**
 * One stream's way to its decoding thread: blocks go in order to the same thread, and the thread
 * keeps the stream's utterance between them.
 */
export class DecoderLane {
  readonly stream = nextStream++;
  private readonly slot: number;
  private released = false;
  /** The grammar this lane prepared decoders for (undefined: none yet). */
  private prepared: Grammar | null | undefined;

  constructor() {
    this.slot = leastLoaded();
    thread(this.slot).streams++;
  }

  /** Loads a decoder for this stream's `grammar` on its thread (see `prepareDecoders`). */
  async prepare(grammar: Grammar | null): Promise<void> {
    await ask(this.slot, { kind: 'prepare', grammar });
    this.prepared = grammar;
  }

  /** Sends one block of the current utterance (`grammar` with its first block). */
  feed(pcm: Int16Array, grammar?: Grammar | null): void {
    const message: DecoderRequest = { id: 0, kind: 'feed', stream: this.stream, pcm };
    if (grammar !== undefined) message.grammar = grammar;
    send(thread(this.slot), message);
  }

  /** Ends the current utterance; its recognition (null when no block was fed). */
  async finish(): Promise<Recognition | null> {
    return (await ask(this.slot, { kind: 'finish', stream: this.stream })).recognition ?? null;
  }

  /** Drops the current utterance, if any. */
  abort(): void {
    const t = threads[this.slot];
    if (t) send(t, { id: 0, kind: 'abort', stream: this.stream });
  }

  /** The stream is done: drops its utterance and unbinds it from its thread. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.abort();
    const t = threads[this.slot];
    if (!t) return;
    t.streams = Math.max(0, t.streams - 1);
    if (this.prepared !== undefined) send(t, { id: 0, kind: 'release', grammar: this.prepared });
  }
}

/** Live decoders per pool key, summed over the decoding threads (tests, metrics). */
export async function decoderThreadPoolSizes(): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const [slot, t] of threads.entries()) {
    if (!t) continue;
    for (const [key, n] of Object.entries((await ask(slot, { kind: 'sizes' })).sizes ?? {})) {
      sizes[key] = (sizes[key] ?? 0) + n;
    }
  }
  return sizes;
}

/** Stops the decoding threads (tests, shutdown); the next request starts new ones. */
export function stopDecoderThread(): void {
  const running = threads;
  threads = [];
  for (const t of running) {
    if (!t) continue;
    t.worker.terminate();
    failAll(t, new Error('pocketsphinx decoding thread stopped'));
  }
}
