/**
 * Regular-expression ops with RE2's meaning: `StaticRegexFullMatch`, `RegexFullMatch`,
 * `StaticRegexReplace`, `RegexReplace` (`core/kernels/regex_full_match_op.cc`,
 * `regex_replace_op.cc`).
 *
 * Patterns run on `re2js` (a pure-JavaScript port of RE2/J, itself a port of RE2): the same
 * syntax (`\pL`, `[[:^alpha:]]`, `(?i)`, `\Q…\E`, no backreferences or lookaround) and
 * linear-time matching, so a hostile pattern or input cannot make a request run for hours.
 * Matching runs on the UTF-8 bytes of each string, so offsets and replacements are byte-exact.
 * Replacement replays `RE2::Replace` / `RE2::GlobalReplace` (rewrite `\0`–`\9` and `\\`; a
 * rewrite naming a group the pattern lacks leaves the string unchanged; an empty match right
 * after the previous match is skipped by one UTF-8 character).
 *
 * Known differences from C++ RE2, refused or documented: `\C` (any byte) is refused at load
 * (UNIMPLEMENTED); on input that is not valid UTF-8, re2js reads each invalid byte as U+FFFD,
 * which `.` and negated classes match, where RE2 matches no invalid byte; error texts are
 * translated to RE2's wording for the common syntax errors.
 *
 * @module
 */
import { RE2JS } from "re2js";
import { Code, ServingError } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel } from "./kernel.ts";

const decoder = new TextDecoder();

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** RE2/J (Go) error descriptions → RE2's RegexpStatus code texts. */
const RE2_ERROR_TEXT: Record<string, string> = {
  "missing closing )": "missing )",
  "unexpected )": "unexpected )",
  "missing closing ]": "missing ]",
  "trailing backslash at end of expression": "trailing \\",
  "invalid nested repetition operator": "bad repetition operator",
  "invalid repeat count": "invalid repetition size",
  "missing argument to repetition operator": "no argument for repetition operator",
  "invalid or unsupported Perl syntax": "invalid perl operator",
  "invalid named capture": "invalid named capture group",
  "duplicate capture group name": "invalid named capture group",
  "invalid escape sequence": "invalid escape sequence",
  "invalid character class": "invalid character class",
  "invalid character class range": "invalid character class range",
  "invalid UTF-8": "invalid UTF-8",
};

/** True if the pattern uses `\C` outside a character class (RE2's any-byte escape). */
function usesAnyByte(pattern: string): boolean {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      if (pattern[i + 1] === "Q") {
        const end = pattern.indexOf("\\E", i + 2);
        if (end < 0) return false;
        i = end + 1;
        continue;
      }
      if (!inClass && pattern[i + 1] === "C") return true;
      i++;
    } else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
  }
  return false;
}

/** A compiled pattern and its number of capturing groups. */
export interface Re2 {
  readonly re: RE2JS;
  readonly groups: number;
}

/**
 * Compiles an RE2 pattern (RE2's default options: UTF-8, Perl classes, leftmost-first).
 *
 * @throws ServingError INVALID_ARGUMENT `Invalid pattern: <p>, error: <RE2 error>`, or
 *   UNIMPLEMENTED for `\C`
 */
export function compileRe2(pattern: string): Re2 {
  if (usesAnyByte(pattern)) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `Invalid pattern: ${pattern}, error: \\C (match any byte) is not supported by this server`,
    );
  }
  try {
    const re = RE2JS.compile(pattern);
    return { re, groups: re.groupCount() };
  } catch (e) {
    const raw = e as { error?: string; input?: string; message?: string };
    const text = raw.error !== undefined ? (RE2_ERROR_TEXT[raw.error] ?? raw.error) : undefined;
    const detail = text === undefined
      ? String(raw.message ?? e)
      : raw.input
      ? `${text}: ${raw.input}`
      : text;
    throw invalid(`Invalid pattern: ${pattern}, error: ${detail}`);
  }
}

/** RE2::FullMatch of each element. */
function fullMatch(re: Re2, x: Tensor): Tensor {
  const s = x.strings;
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = re.re.matcher(s[i]).matches() ? 1 : 0;
  return new Tensor(DataType.DT_BOOL, x.shape, out);
}

/** RE2::MaxSubmatch: the largest `\N` in a rewrite (`\\` is skipped). */
function maxSubmatch(rewrite: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < rewrite.length; i++) {
    if (rewrite[i] !== 0x5c) continue;
    i++;
    const c = rewrite[i];
    if (c >= 0x30 && c <= 0x39) max = Math.max(max, c - 0x30);
  }
  return max;
}

/** A growable byte buffer. */
class Bytes {
  #buf = new Uint8Array(64);
  length = 0;
  push(b: number): void {
    this.#reserve(1);
    this.#buf[this.length++] = b;
  }
  append(src: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    this.#reserve(end - start);
    this.#buf.set(src.subarray(start, end), this.length);
    this.length += end - start;
  }
  #reserve(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
  }
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

/** Group spans of the current match as [start, end) byte offsets (-1 if unset). */
type Spans = number[];

/**
 * RE2::Rewrite: appends `rewrite` with `\N` replaced by group N; false (after appending what
 * came before) on an invalid escape.
 */
function rewriteInto(out: Bytes, rewrite: Uint8Array, text: Uint8Array, spans: Spans): boolean {
  const nvec = spans.length / 2;
  for (let i = 0; i < rewrite.length; i++) {
    const c = rewrite[i];
    if (c !== 0x5c) {
      out.push(c);
      continue;
    }
    i++;
    const d = i < rewrite.length ? rewrite[i] : -1;
    if (d >= 0x30 && d <= 0x39) {
      const n = d - 0x30;
      if (n >= nvec) return false;
      if (spans[2 * n] >= 0) out.append(text, spans[2 * n], spans[2 * n + 1]);
    } else if (d === 0x5c) out.push(0x5c);
    else return false;
  }
  return true;
}

/** A matcher over one string. */
type Matcher = ReturnType<RE2JS["matcher"]>;

/** The match at or after `from` with its group spans, or undefined. */
function search(m: Matcher, from: number, nvec: number): Spans | undefined {
  if (!m.find(from)) return undefined;
  const spans: Spans = [];
  for (let g = 0; g < nvec; g++) spans.push(m.start(g), m.end(g));
  return spans;
}

/** The byte length of the valid UTF-8 character at `p`, or 0 if the bytes there are invalid. */
function utf8Length(s: Uint8Array, p: number): number {
  const b = s[p];
  const n = b < 0x80
    ? 1
    : b >= 0xc2 && b < 0xe0
    ? 2
    : b >= 0xe0 && b < 0xf0
    ? 3
    : b >= 0xf0 && b < 0xf5
    ? 4
    : 0;
  if (n === 0 || p + n > s.length) return 0;
  for (let k = 1; k < n; k++) if ((s[p + k] & 0xc0) !== 0x80) return 0;
  const cp = n === 2
    ? ((b & 0x1f) << 6) | (s[p + 1] & 0x3f)
    : n === 3
    ? ((b & 0x0f) << 12) | ((s[p + 1] & 0x3f) << 6) | (s[p + 2] & 0x3f)
    : n === 4
    ? ((b & 0x07) << 18) | ((s[p + 1] & 0x3f) << 12) | ((s[p + 2] & 0x3f) << 6) |
      (s[p + 3] & 0x3f)
    : b;
  // Overlong forms, surrogates and values past U+10FFFF are decoding errors.
  if (
    (n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
    (n === 4 && (cp < 0x10000 || cp > 0x10ffff))
  ) return 0;
  return n;
}

/** RE2::Replace: the first match only; unchanged if there is none or the rewrite is bad. */
function replaceFirst(re: Re2, text: Uint8Array, rewrite: Uint8Array): Uint8Array {
  const nvec = 1 + maxSubmatch(rewrite);
  if (nvec > 1 + re.groups) return text;
  const spans = search(re.re.matcher(text), 0, nvec);
  if (spans === undefined) return text;
  const s = new Bytes();
  if (!rewriteInto(s, rewrite, text, spans)) return text;
  const out = new Bytes();
  out.append(text, 0, spans[0]);
  out.append(s.bytes(), 0, s.length);
  out.append(text, spans[1], text.length);
  return out.bytes();
}

/** RE2::GlobalReplace: every non-overlapping match, left to right. */
function replaceGlobal(re: Re2, text: Uint8Array, rewrite: Uint8Array): Uint8Array {
  const nvec = 1 + maxSubmatch(rewrite);
  if (nvec > 1 + re.groups) return text;
  const out = new Bytes();
  const m = re.re.matcher(text);
  let p = 0;
  let lastEnd = -1;
  let count = 0;
  while (p <= text.length) {
    const spans = search(m, p, nvec);
    if (spans === undefined) break;
    const [start, end] = spans;
    if (p < start) out.append(text, p, start);
    if (start === lastEnd && start === end) {
      // An empty match right after the previous match: step over one character.
      const n = p < text.length ? utf8Length(text, p) : 0;
      if (n > 0) {
        out.append(text, p, p + n);
        p += n;
        continue;
      }
      if (p < text.length) out.append(text, p, p + 1);
      p++;
      continue;
    }
    rewriteInto(out, rewrite, text, spans);
    p = end;
    lastEnd = p;
    count++;
  }
  if (count === 0) return text;
  if (p < text.length) out.append(text, p, text.length);
  return out.bytes();
}

function replaceEach(x: Tensor, re: Re2, rewrite: Uint8Array, global: boolean): Tensor {
  const s = x.strings;
  const out = new Array<Uint8Array>(s.length);
  for (let i = 0; i < s.length; i++) {
    out[i] = global ? replaceGlobal(re, s[i], rewrite) : replaceFirst(re, s[i], rewrite);
  }
  return new Tensor(DataType.DT_STRING, x.shape, out);
}

/** The pattern of a RegexFullMatch/RegexReplace input, compiled once per distinct value. */
function patternCache(): (pattern: Tensor) => Re2 {
  let last: string | undefined;
  let value: Re2;
  return (t) => {
    if (t.rank !== 0) {
      throw invalid(`Pattern must be scalar, but received ${shapeString(t.shape)}`);
    }
    const p = decoder.decode(t.strings[0]);
    if (p !== last) {
      value = compileRe2(p);
      last = p;
    }
    return value;
  };
}

/** Regex kernels. */
export const regexKernels: Kernel[] = [
  {
    op: "StaticRegexFullMatch",
    compile(ctx) {
      const re = compileRe2(ctx.attr.string("pattern"));
      return ([x]) => [fullMatch(re, x)];
    },
  },
  {
    op: "RegexFullMatch",
    compile() {
      const get = patternCache();
      return ([x, pattern]) => [fullMatch(get(pattern), x)];
    },
  },
  {
    op: "StaticRegexReplace",
    compile(ctx) {
      const re = compileRe2(ctx.attr.string("pattern"));
      const rewrite = ctx.attr.bytes("rewrite");
      const global = ctx.attr.bool("replace_global", true);
      return ([x]) => [replaceEach(x, re, rewrite, global)];
    },
  },
  {
    op: "RegexReplace",
    compile(ctx) {
      const global = ctx.attr.bool("replace_global", true);
      const get = patternCache();
      return ([x, pattern, rewrite]) => {
        const re = get(pattern);
        if (rewrite.rank !== 0) {
          throw invalid(`Rewrite must be scalar, but received ${shapeString(rewrite.shape)}`);
        }
        return [replaceEach(x, re, rewrite.strings[0], global)];
      };
    },
  },
];
