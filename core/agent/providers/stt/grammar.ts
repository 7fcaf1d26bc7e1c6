/**
 * Turns a scripted agent's expected phrases into what a pocketsphinx grammar decoder loads:
 * a JSGF grammar (one public rule, the phrases as alternatives) and a dictionary holding only
 * the grammar's words (8 MB and ~35 ms to load, against ~29 MB with all of cmudict).
 *
 * Phrases are normalised like `normalizeWords`; words the dictionary lacks are dropped from
 * their phrase (the recogniser cannot hear them; `missingWords` reports them). Files are
 * written once per distinct phrase set, keyed by a hash of it, and reused by every call.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmudict, modelDir, normalizeWords } from './dictionary.ts';

/** A compiled grammar: its files and the phrases it can recognise. */
export interface Grammar {
  /** Hash of the normalised phrase set (and model directory): the pool key. */
  readonly key: string;
  readonly jsgfPath: string;
  readonly dictPath: string;
  /**
   * Recognisable phrases: the normalised word string the decoder returns → the phrase as the
   * agent wrote it (first writer wins when two normalise alike).
   */
  readonly phrases: ReadonlyMap<string, string>;
  /** Words dropped because the dictionary lacks them. */
  readonly dropped: readonly string[];
}

/** Where grammar files go (`POCKETSPHINX_CACHE_DIR`, else a folder in the OS temp dir). */
export function grammarCacheDir(): string {
  return process.env.POCKETSPHINX_CACHE_DIR || join(tmpdir(), 'sipai-pocketsphinx');
}

const grammars = new Map<string, Grammar>();

/**
 * The JSGF text for normalised phrases (each a list of dictionary words): a grammar `agent`
 * with one public rule `<phrase>` whose alternatives are the phrases.
 */
export function jsgfText(phrases: readonly string[]): string {
  return `#JSGF V1.0;\n\ngrammar agent;\n\npublic <phrase> =\n    ${phrases.join('\n  | ')}\n  ;\n`;
}

/** Dictionary lines (cmudict format, alternates as `word(2)`) for `words`, sorted. */
export function dictionaryText(words: Iterable<string>): string {
  const dict = cmudict();
  const lines: string[] = [];
  for (const word of [...new Set(words)].sort()) {
    const prons = dict.get(word);
    if (!prons) continue;
    prons.forEach((phones, i) => {
      lines.push(i === 0 ? `${word} ${phones}` : `${word}(${i + 1}) ${phones}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

/** Writes `text` to `path` atomically (a sibling temp file renamed over it). */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * The grammar for `phrases`, compiled on first use and cached (in memory and on disk).
 * Returns null when no phrase has a recognisable word (the caller falls back to the full
 * language model).
 */
export function compileGrammar(phrases: readonly string[]): Grammar | null {
  const dict = cmudict();
  const byWords = new Map<string, string>();
  const dropped = new Set<string>();
  for (const phrase of phrases) {
    const words = normalizeWords(phrase).filter((w) => {
      if (dict.has(w)) return true;
      dropped.add(w);
      return false;
    });
    if (words.length === 0) continue;
    const key = words.join(' ');
    if (!byWords.has(key)) byWords.set(key, phrase.trim());
  }
  if (byWords.size === 0) return null;

  const normalised = [...byWords.keys()].sort();
  const key = createHash('sha256')
    .update(modelDir())
    .update('\0')
    .update(normalised.join('\n'))
    .digest('hex')
    .slice(0, 16);
  const cached = grammars.get(key);
  if (cached) return cached;

  const dir = join(grammarCacheDir(), key);
  const jsgfPath = join(dir, 'agent.gram');
  const dictPath = join(dir, 'agent.dict');
  if (!existsSync(jsgfPath) || !existsSync(dictPath)) {
    mkdirSync(dir, { recursive: true });
    writeAtomic(dictPath, dictionaryText(normalised.flatMap((p) => p.split(' '))));
    writeAtomic(jsgfPath, jsgfText(normalised));
  }
  const grammar: Grammar = { key, jsgfPath, dictPath, phrases: byWords, dropped: [...dropped] };
  grammars.set(key, grammar);
  return grammar;
}
