/**
 * Whether a caller's words so far end a turn. The VAD closes a turn after `endpointing.minMs`
 * of silence; when the words look unfinished ("I'd like to book a table for…"), the
 * conversation waits longer, up to `endpointing.maxMs`, for the caller to go on.
 */
export interface TurnDetector {
  /** True when `text` reads as a complete turn. */
  isComplete(text: string): boolean;
}

/** Words a sentence rarely ends on: a turn ending on one is probably mid-phrase. */
const CONTINUATIONS = new Set([
  'and',
  'or',
  'but',
  'so',
  'because',
  'the',
  'a',
  'an',
  'to',
  'for',
  'of',
  'with',
  'at',
  'in',
  'on',
  'my',
  'your',
  'our',
  'um',
  'uh',
  'er',
  'erm',
  'like',
  'if',
  'then',
  'that',
  'is',
  'are',
  'was',
  'i',
  "i'm",
  'we',
  'from',
  'about',
  'some',
]);

/** A lexical detector: an unfinished last word or a trailing comma means mid-phrase. */
export class LexicalTurnDetector implements TurnDetector {
  isComplete(text: string): boolean {
    const t = text.trim().toLowerCase();
    if (t.length === 0) return true;
    if (/[,;:-]$/.test(t)) return false;
    const last =
      t
        .replace(/[.!?]+$/, '')
        .split(/\s+/)
        .pop() ?? '';
    return !CONTINUATIONS.has(last);
  }
}
