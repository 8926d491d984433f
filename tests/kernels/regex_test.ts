import assert from "node:assert/strict";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { regexKernels } from "../../src/kernels/regex.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, compileOp, runOp } from "./harness.ts";

const dec = new TextDecoder();
const texts = (t: Tensor) => (t.data as Uint8Array[]).map((b) => dec.decode(b));
const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(regexKernels, op, inputs, attrs)[0];

function throwsWith(fn: () => unknown, code: Code, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, message);
    return true;
  });
}

const full = (pattern: string, inputs: (string | Uint8Array)[]) =>
  Array.from(
    run("StaticRegexFullMatch", [Tensor.strings(inputs)], { pattern: attr.string(pattern) })
      .data as Uint8Array,
  );

Deno.test("StaticRegexFullMatch has RE2's syntax and meaning", () => {
  assert.deepEqual(full("a|ab", ["ab", "a", "abc", ""]), [1, 1, 0, 0]);
  assert.deepEqual(full("(?i)hello.*", ["HeLLo world", "say hello"]), [1, 0]);
  assert.deepEqual(full("[[:digit:]]+-(?P<x>[[:alpha:]]+)", ["12-ab", "12-a1"]), [1, 0]);
  // One-letter Unicode classes: \pL is any letter (not the literal "p{L}").
  assert.deepEqual(full("\\pL+", ["héllo", "h3", "pL", "p{L}"]), [1, 0, 1, 0]);
  assert.deepEqual(full("\\PL+", ["123", "1a"]), [1, 0]);
  // Negated POSIX classes inside brackets.
  assert.deepEqual(full("[[:^alpha:]]+", ["123 !", "12a"]), [1, 0]);
  // \s is [\t\n\f\r ] (no \v); . excludes \n unless (?s).
  assert.deepEqual(full("\\s+", [" \t\n\f\r", "\v"]), [1, 0]);
  assert.deepEqual(full(".*", ["line\nbreak"]), [0]);
  assert.deepEqual(full("(?s).*", ["line\nbreak"]), [1]);
  assert.deepEqual(full("\\Qa.b\\E", ["a.b", "axb"]), [1, 0]);
  // \b is ASCII in RE2.
  assert.deepEqual(full("\\bé", ["é"]), [0]);
  // Bytes: a multi-byte character is one character.
  assert.deepEqual(full("^.$", ["é"]), [1]);
  const dyn = runOp(regexKernels, "RegexFullMatch", [
    Tensor.strings(["abc", "abd"]),
    Tensor.strings(["ab[c]"], []),
  ])[0];
  assert.deepEqual(Array.from(dyn.data as Uint8Array), [1, 0]);
});

Deno.test("RE2 rejects what it lacks (backreferences, lookaround) with RE2's error text", () => {
  const bad = (p: string, text: RegExp) =>
    throwsWith(
      () => compileOp(regexKernels, "StaticRegexFullMatch", { pattern: attr.string(p) }),
      Code.INVALID_ARGUMENT,
      text,
    );
  bad("(", /^Invalid pattern: \(, error: missing \): \($/);
  bad("[a", /^Invalid pattern: \[a, error: missing \]: \[a$/);
  bad("(a)\\1", /^Invalid pattern: \(a\)\\1, error: invalid escape sequence: \\1$/);
  bad("(?=a)", /error: invalid perl operator: \(\?=$/);
  bad("a**", /error: bad repetition operator: \*\*$/);
  bad("x{1001}", /error: invalid repetition size: \{1001\}$/);
  throwsWith(
    () => compileOp(regexKernels, "StaticRegexFullMatch", { pattern: attr.string("a\\C") }),
    Code.UNIMPLEMENTED,
    /\\C/,
  );
  throwsWith(
    () =>
      runOp(regexKernels, "RegexFullMatch", [
        Tensor.strings(["a"]),
        Tensor.strings(["a", "b"]),
      ]),
    Code.INVALID_ARGUMENT,
    /^Pattern must be scalar, but received \[2\]$/,
  );
});

Deno.test("(a+)+b on a long input finishes (linear-time matching, no backtracking)", () => {
  // With a backtracking engine this input takes ~2^30 steps per starting position.
  const input = "a".repeat(30) + "c";
  assert.deepEqual(full("(a+)+b", [input, "a".repeat(100_000)]), [0, 0]);
  const out = run("StaticRegexReplace", [Tensor.strings([input])], {
    pattern: attr.string("(a|aa)+$"),
    rewrite: attr.string("x"),
    replace_global: attr.bool(true),
  });
  assert.deepEqual(texts(out), [input]);
});

// RE2's own replace tests (re2_test.cc, ReplaceTest): pattern, rewrite, input, Replace result,
// GlobalReplace result.
const RE2_REPLACE_CASES: [string, string, string, string, string][] = [
  [
    "(qu|[b-df-hj-np-tv-z]*)([a-z]+)",
    "\\2\\1ay",
    "the quick brown fox jumps over the lazy dogs.",
    "ethay quick brown fox jumps over the lazy dogs.",
    "ethay ickquay ownbray oxfay umpsjay overay ethay azylay ogsday.",
  ],
  [
    "\\w+",
    "\\0-NOSPAM",
    "abcd.efghi@google.com",
    "abcd-NOSPAM.efghi@google.com",
    "abcd-NOSPAM.efghi-NOSPAM@google-NOSPAM.com-NOSPAM",
  ],
  ["^", "(START)", "foo", "(START)foo", "(START)foo"],
  ["^", "(START)", "", "(START)", "(START)"],
  ["$", "(END)", "", "(END)", "(END)"],
  ["b", "bb", "ababababab", "abbabababab", "abbabbabbabbabb"],
  ["b", "bb", "bbbbbb", "bbbbbbb", "bbbbbbbbbbbb"],
  ["b+", "bb", "bbbbbb", "bb", "bb"],
  ["b*", "bb", "bbbbbb", "bb", "bb"],
  ["b*", "bb", "aaaaa", "bbaaaaa", "bbabbabbabbabbabb"],
  ["a.*a", "(\\0)", "aba\naba", "(aba)\naba", "(aba)\n(aba)"],
];

Deno.test("StaticRegexReplace / RegexReplace replay RE2::Replace and RE2::GlobalReplace", () => {
  for (const [pattern, rewrite, input, single, global] of RE2_REPLACE_CASES) {
    for (const [g, expected] of [[false, single], [true, global]] as const) {
      const out = run("StaticRegexReplace", [Tensor.strings([input])], {
        pattern: attr.string(pattern),
        rewrite: attr.string(rewrite),
        replace_global: attr.bool(g),
      });
      assert.deepEqual(texts(out), [expected], `${pattern} ${rewrite} global=${g}`);
      const dyn = runOp(regexKernels, "RegexReplace", [
        Tensor.strings([input]),
        Tensor.strings([pattern], []),
        Tensor.strings([rewrite], []),
      ], { replace_global: attr.bool(g) })[0];
      assert.deepEqual(texts(dyn), [expected]);
    }
  }
  // Empty matches step over whole UTF-8 characters.
  const e = run("StaticRegexReplace", [Tensor.strings(["éa"])], {
    pattern: attr.string("x*"),
    rewrite: attr.string("-"),
    replace_global: attr.bool(true),
  });
  assert.deepEqual(texts(e), ["-é-a-"]);
  // "\\" is a backslash; a group the pattern lacks, or a bad escape, leaves the string as is.
  const rw = (rewrite: string, g = false) =>
    texts(run("StaticRegexReplace", [Tensor.strings(["a1b22c"])], {
      pattern: attr.string("([0-9])"),
      rewrite: attr.string(rewrite),
      replace_global: attr.bool(g),
    }))[0];
  assert.equal(rw("$\\\\"), "a$\\b22c");
  assert.equal(rw("\\2"), "a1b22c");
  assert.equal(rw("\\2", true), "a1b22c");
  assert.equal(rw("<\\x>"), "a1b22c");
  // Invalid UTF-8 passes through untouched where nothing matches.
  const raw = Uint8Array.of(0x61, 0xff, 0x62);
  const kept = run("StaticRegexReplace", [Tensor.strings([raw])], {
    pattern: attr.string("z"),
    rewrite: attr.string("y"),
  });
  assert.deepEqual(Array.from(kept.strings[0]), [0x61, 0xff, 0x62]);
});
