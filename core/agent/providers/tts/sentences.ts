/**
 * Sentence splitting for engines that synthesise a whole utterance before returning any audio
 * (flite, festival, espeak-ng writing a file): speaking sentence by sentence lets the first one
 * play while the next is made, and a language model's token stream becomes speakable pieces as
 * soon as each sentence is complete.
 */

/** A clause ending at `,` or `;` is emitted on its own once the buffer is at least this long. */
export const LONG_CLAUSE_CHARS = 120;
/** Text with no break at all is cut at the last space before this length. */
export const MAX_SENTENCE_CHARS = 300;

const SENTENCE_END = /[.!?]/;
const CLAUSE_END = /[,;]/;
/** A sentence with no letter or digit (a lone `.` or `--`) has nothing to say. */
const SPEAKABLE = /[\p{L}\p{N}]/u;

/**
 * Buffers streamed text pieces and hands back whole sentences: at `.`, `!` or `?` followed by
 * white space (or the end, on `flush`), at `,`/`;` once the clause is long, or at a space when a
 * run of text has no break at all. Sentences are trimmed; ones with nothing to say (no letter or digit) are dropped.
 */
export class SentenceSplitter {
  private buffer = '';

  /** Adds a piece of text; returns the sentences it completed, in order. */
  push(piece: string): string[] {
    this.buffer += piece;
    const out: string[] = [];
    for (;;) {
      const cut = this.nextCut();
      if (cut < 0) break;
      const sentence = this.buffer.slice(0, cut).trim();
      this.buffer = this.buffer.slice(cut);
      if (SPEAKABLE.test(sentence)) out.push(sentence);
    }
    return out;
  }

  /** The end of the stream: returns what is left (at most one sentence, or none). */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    return SPEAKABLE.test(rest) ? [rest] : [];
  }

  /** Index just past the first complete sentence in the buffer, or -1. */
  private nextCut(): number {
    const text = this.buffer;
    // The first break in reading order wins, so the result does not depend on how the stream
    // was cut into pieces.
    for (let i = 0; i < text.length - 1; i++) {
      const ch = text[i]!;
      if (!/\s/.test(text[i + 1]!)) continue;
      if (SENTENCE_END.test(ch)) return i + 1;
      if (CLAUSE_END.test(ch) && i + 1 >= LONG_CLAUSE_CHARS) return i + 1;
    }
    if (text.length >= MAX_SENTENCE_CHARS) {
      const space = text.lastIndexOf(' ', MAX_SENTENCE_CHARS);
      return space > 0 ? space : MAX_SENTENCE_CHARS;
    }
    return -1;
  }
}

/** Splits a whole text, or a stream of text pieces, into sentences as they complete. */
export async function* sentencesOf(text: AsyncIterable<string> | string): AsyncGenerator<string> {
  const splitter = new SentenceSplitter();
  if (typeof text === 'string') {
    yield* splitter.push(text);
  } else {
    for await (const piece of text) yield* splitter.push(piece);
  }
  yield* splitter.flush();
}
