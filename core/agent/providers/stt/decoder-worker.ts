/**
 * The pocketsphinx decoding thread: a Bun `Worker` that owns its own decoder pools and runs
 * `recognize` off the main event loop (a decode is 50–250 ms of CPU that would otherwise stall
 * every call's 20 ms audio frames). Messages: see `DecoderRequest` / `DecoderReply` in
 * `decoder-thread.ts`.
 */

import type { DecoderReply, DecoderRequest } from './decoder-thread.ts';
import { closeDecoderPools, decoderPoolSizes, prepareDecoders, recognize } from './pocketsphinx.ts';

declare const self: Worker;

self.onmessage = async (event: MessageEvent<DecoderRequest>) => {
  const request = event.data;
  let reply: DecoderReply;
  try {
    if (request.kind === 'recognize') {
      reply = { id: request.id, ok: true, recognition: await recognize(request.pcm, request.grammar) };
    } else if (request.kind === 'prepare') {
      await prepareDecoders(request.grammar);
      reply = { id: request.id, ok: true };
    } else if (request.kind === 'sizes') {
      reply = { id: request.id, ok: true, sizes: decoderPoolSizes() };
    } else {
      closeDecoderPools();
      reply = { id: request.id, ok: true };
    }
  } catch (err) {
    reply = { id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  self.postMessage(reply);
};
