import type { ChatMessage, LanguageModel, LlmChunk, ToolSpec } from '../types.ts';
import { ProviderError } from '../types.ts';

export interface ResilienceOptions {
  /** Attempts per provider for retryable failures before any output (default 3). */
  attempts?: number;
  /** First retry delay; doubles each time, with jitter (default 200 ms). */
  backoffMs?: number;
  /** No first chunk within this long counts as a retryable failure (default 8 s). */
  firstChunkTimeoutMs?: number;
  /** Consecutive failures after which a provider is skipped for `openMs` (default 5). */
  breakerFailures?: number;
  openMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * A circuit breaker per provider name, shared by every call in the process: after a run of
 * failures the provider is skipped (its calls go straight to the fallback, or fail fast) until
 * a cool-down passes, so a dead vendor does not cost every call a timeout.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = -Infinity;

  constructor(
    private readonly limit: number,
    private readonly openMs: number,
    private readonly now: () => number,
  ) {}

  get open(): boolean {
    return this.failures >= this.limit && this.now() - this.openedAt < this.openMs;
  }

  success(): void {
    this.failures = 0;
  }

  failure(): void {
    this.failures++;
    if (this.failures >= this.limit) this.openedAt = this.now();
  }
}

const breakers = new Map<string, CircuitBreaker>();

function breakerFor(name: string, opts: ResilienceOptions): CircuitBreaker {
  let b = breakers.get(name);
  if (!b) {
    b = new CircuitBreaker(opts.breakerFailures ?? 5, opts.openMs ?? 30_000, opts.now ?? Date.now);
    breakers.set(name, b);
  }
  return b;
}

/** Forgets every breaker's state (tests). */
export function resetBreakers(): void {
  breakers.clear();
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * A language model with retries, a first-chunk timeout, a fallback provider and circuit
 * breaking. Retries happen only before the first chunk (a reply half spoken is not restarted);
 * a non-retryable failure (a refused key) moves to the fallback at once; when every provider
 * fails, the last error is thrown for the conversation to apologise and end the call.
 */
export class ResilientLanguageModel implements LanguageModel {
  readonly name: string;

  constructor(
    private readonly providers: LanguageModel[],
    private readonly opts: ResilienceOptions = {},
  ) {
    if (providers.length === 0) throw new Error('no language model');
    this.name = providers.map((p) => p.name).join('>');
  }

  async *complete(
    messages: ChatMessage[],
    req: { tools?: ToolSpec[]; signal: AbortSignal },
  ): AsyncIterable<LlmChunk> {
    const attempts = this.opts.attempts ?? 3;
    const sleep = this.opts.sleep ?? defaultSleep;
    let last: unknown = null;
    for (const provider of this.providers) {
      const breaker = breakerFor(provider.name, this.opts);
      if (breaker.open) {
        last = new ProviderError(
          `${provider.name}: skipped after repeated failures`,
          provider.name,
          true,
          'circuit_open',
        );
        continue;
      }
      for (let attempt = 0; attempt < attempts; attempt++) {
        if (req.signal.aborted) return;
        let started = false;
        try {
          for await (const chunk of this.withFirstChunkTimeout(provider, messages, req)) {
            started = true;
            yield chunk;
          }
          breaker.success();
          return;
        } catch (err) {
          if (req.signal.aborted) return;
          // Words already spoken cannot be taken back: a failure after output ends the reply.
          if (started) throw err;
          last = err;
          const retryable = err instanceof ProviderError ? err.retryable : false;
          if (!retryable) break;
          if (attempt + 1 < attempts) {
            const base = (this.opts.backoffMs ?? 200) * 2 ** attempt;
            await sleep(base / 2 + Math.random() * base, req.signal);
          }
        }
      }
      breaker.failure();
    }
    throw last ?? new ProviderError('no language model answered', this.name, true);
  }

  private async *withFirstChunkTimeout(
    provider: LanguageModel,
    messages: ChatMessage[],
    req: { tools?: ToolSpec[]; signal: AbortSignal },
  ): AsyncIterable<LlmChunk> {
    const timeoutMs = this.opts.firstChunkTimeoutMs ?? 8000;
    const attempt = new AbortController();
    const signal = AbortSignal.any([req.signal, attempt.signal]);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, timeoutMs);
    try {
      let first = true;
      for await (const chunk of provider.complete(messages, { tools: req.tools, signal })) {
        if (first) {
          clearTimeout(timer);
          first = false;
        }
        yield chunk;
      }
      if (timedOut)
        throw new ProviderError(
          `${provider.name}: no answer within ${timeoutMs} ms`,
          provider.name,
          true,
          'timeout',
        );
    } finally {
      clearTimeout(timer);
    }
  }
}
