/**
 * The pronunciation dictionary side of the offline recogniser (pocketsphinx, Debian packages
 * `libpocketsphinx3` + `pocketsphinx-en-us`): where the engine and its model live, whether they
 * are installed, the word normalisation the grammar uses, and which words the model cannot say.
 *
 * A grammar recogniser can only recognise words its dictionary spells out in phones, so an
 * agent's phrases with a word missing from cmudict are partly unrecognisable: `missingWords`
 * lets config validation warn about them before a call does.
 */

import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Default model directory of Debian's `pocketsphinx-en-us`. */
export const DEFAULT_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';

/** Where the acoustic model, dictionary and language models live (`POCKETSPHINX_MODEL_DIR`). */
export function modelDir(): string {
  return process.env.POCKETSPHINX_MODEL_DIR || DEFAULT_MODEL_DIR;
}

/** The model files the recogniser uses, in `modelDir()`. */
export function modelPaths(dir = modelDir()): {
  hmm: string;
  dict: string;
  lm: string;
} {
  return {
    hmm: join(dir, 'en-us'),
    dict: join(dir, 'cmudict-en-us.dict'),
    lm: join(dir, 'en-us.lm.bin'),
  };
}

const LIBRARY_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib/arm-linux-gnueabihf',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
];

function findLibrary(file: string): string | null {
  for (const dir of LIBRARY_DIRS) {
    const path = join(dir, file);
    if (existsSync(path)) return path;
  }
  return null;
}

/**
 * Paths of the shared libraries for `bun:ffi`, or null where one is missing
 * (`POCKETSPHINX_LIBRARY` overrides the pocketsphinx one).
 */
export function libraryPaths(): { pocketsphinx: string; sphinxbase: string } | null {
  const pocketsphinx = process.env.POCKETSPHINX_LIBRARY || findLibrary('libpocketsphinx.so.3');
  const sphinxbase = findLibrary('libsphinxbase.so.3');
  if (!pocketsphinx || !existsSync(pocketsphinx) || !sphinxbase) return null;
  return { pocketsphinx, sphinxbase };
}

/** Path of the `pocketsphinx_continuous` command (Debian package `pocketsphinx`), or null. */
export function continuousCommand(): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, 'pocketsphinx_continuous');
    if (existsSync(path)) return path;
  }
  return null;
}

/**
 * Whether the recogniser can run here, and if not which Debian package is missing:
 * `pocketsphinx-en-us` for the model, `libpocketsphinx3` for the engine (its shared library;
 * the `pocketsphinx_continuous` command of package `pocketsphinx` is enough for a fallback).
 */
export function pocketsphinxAvailable(): { ok: true } | { ok: false; missing: string } {
  const paths = modelPaths();
  if (!existsSync(join(paths.hmm, 'mdef')) || !existsSync(paths.dict)) {
    return { ok: false, missing: 'pocketsphinx-en-us' };
  }
  if (!libraryPaths() && !continuousCommand()) return { ok: false, missing: 'libpocketsphinx3' };
  return { ok: true };
}

// ---------------------------------------------------------------- words

const ONES = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words of a whole number below one million ("42" → forty two). */
function numberWords(n: number): string[] {
  if (n < 20) return [ONES[n]!];
  if (n < 100) return n % 10 === 0 ? [TENS[n / 10]!] : [TENS[Math.floor(n / 10)]!, ONES[n % 10]!];
  if (n < 1000) {
    const rest = n % 100;
    return [ONES[Math.floor(n / 100)]!, 'hundred', ...(rest ? numberWords(rest) : [])];
  }
  const rest = n % 1000;
  return [...numberWords(Math.floor(n / 1000)), 'thousand', ...(rest ? numberWords(rest) : [])];
}

/**
 * The words of a phrase as the grammar and the dictionary see them: lower-case, punctuation
 * dropped (inner apostrophes kept: "don't" is a cmudict word), hyphens split, whole numbers
 * below a million spelt out, longer digit strings read digit by digit.
 */
export function normalizeWords(text: string): string[] {
  const words: string[] = [];
  const tokens = text
    .toLowerCase()
    .replace(/[’‘]/g, "'")
    .split(/[^a-z0-9']+/);
  for (const raw of tokens) {
    const token = raw.replace(/^'+|'+$/g, '');
    if (!token) continue;
    for (const part of token.split(/(\d+)/)) {
      if (!part || part === "'") continue;
      if (/^\d+$/.test(part)) {
        if (part.length <= 6 && !(part.length > 1 && part.startsWith('0'))) {
          words.push(...numberWords(Number(part)));
        } else {
          for (const digit of part) words.push(ONES[Number(digit)]!);
        }
      } else {
        const word = part.replace(/^'+|'+$/g, '');
        if (word) words.push(word);
      }
    }
  }
  return words;
}

// ---------------------------------------------------------------- cmudict

let loaded: { path: string; entries: Map<string, string[]> } | null = null;

/**
 * The pronunciations of the model's dictionary, word → phone strings (alternates in file
 * order), read once per process (≈ 135 k words) and shared.
 */
export function cmudict(): Map<string, string[]> {
  const path = modelPaths().dict;
  if (loaded?.path === path) return loaded.entries;
  const entries = new Map<string, string[]>();
  const text = readFileSync(path, 'utf8');
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    let word = line.slice(0, space);
    const alt = word.indexOf('(');
    if (alt > 0) word = word.slice(0, alt);
    const phones = line.slice(space + 1).trim();
    if (!phones) continue;
    const list = entries.get(word);
    if (list) list.push(phones);
    else entries.set(word, [phones]);
  }
  loaded = { path, entries };
  return entries;
}

/** Whether the model's dictionary can say `word` (already normalised). */
export function hasWord(word: string): boolean {
  return cmudict().has(word);
}

/**
 * Words of `phrases` (normalised as the grammar normalises them) that the dictionary lacks:
 * the recogniser cannot hear them. Unique, in first-seen order.
 */
export function missingWords(phrases: string[]): string[] {
  const dict = cmudict();
  const missing = new Set<string>();
  for (const phrase of phrases) {
    for (const word of normalizeWords(phrase)) if (!dict.has(word)) missing.add(word);
  }
  return [...missing];
}
