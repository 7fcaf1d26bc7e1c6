/**
 * A pocketsphinx decoding thread: a Bun `Worker` that owns its own decoder pools and the
 * utterances of the streams bound to it, searching each block as it arrives, off the main event
 * loop (the search is ~0.1 × the audio's duration in CPU, which would otherwise stall every
 * call's 20 ms audio frames). It takes requests in batches and reports idle after each (see
 * `decoder-thread.ts` for the messages and why).
 */

import type { DecoderReply, DecoderReport, DecoderRequest } from './decoder-thread.ts';
import {
  closeDecoderPools,
  decoderPoolSizes,
  prepareDecoders,
  releaseDecoders,
  Utterance,
} from './pocketsphinx.ts';

declare const self: Worker;

/** The utterance each stream is speaking, from its first block to finish or abort. */
const utterances = new Map<number, Utterance>();

function failed(id: number, err: unknown): DecoderReply {
  return { id, ok: false, error: err instanceof Error ? err.message : String(err) };
}

/**
 * Runs one request; a reply now, a promise of one (not awaited in order: an utterance waiting
 * for a decoder must not hold up the request that frees one), or null for none.
 */
function handle(request: DecoderRequest): DecoderReply | Promise<DecoderReply> | null {
  switch (request.kind) {
    case 'feed': {
      let utterance = utterances.get(request.stream);
      if (!utterance) {
        utterance = new Utterance(request.grammar ?? null);
        utterances.set(request.stream, utterance);
      }
      utterance.feed(request.pcm);
      return null;
    }
    case 'abort':
      utterances.get(request.stream)?.abort();
      utterances.delete(request.stream);
      return null;
    case 'finish': {
      const utterance = utterances.get(request.stream);
      utterances.delete(request.stream);
      if (!utterance) return { id: request.id, ok: true };
      return utterance.finish().then(
        (recognition): DecoderReply => ({ id: request.id, ok: true, recognition }),
        (err) => failed(request.id, err),
      );
    }
    case 'release':
      releaseDecoders(request.grammar);
      return null;
    case 'prepare':
      return prepareDecoders(request.grammar).then(
        (): DecoderReply => ({ id: request.id, ok: true }),
        (err) => failed(request.id, err),
      );
    case 'sizes':
      return { id: request.id, ok: true, sizes: decoderPoolSizes() };
    case 'close':
      closeDecoderPools();
      return { id: request.id, ok: true };
  }
}

function report(replies: DecoderReply[], idle: boolean): void {
  const message: DecoderReport = { replies, idle };
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<DecoderRequest[]>) => {
  const now: DecoderReply[] = [];
  const later: Promise<DecoderReply>[] = [];
  for (const request of event.data) {
    let reply: DecoderReply | Promise<DecoderReply> | null;
    try {
      reply = handle(request);
    } catch (err) {
      reply = request.id ? failed(request.id, err) : null;
    }
    if (reply instanceof Promise) later.push(reply);
    else if (reply) now.push(reply);
  }
  report(now, true);
  for (const p of later) void p.then((reply) => report([reply], false));
};
