import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { shJoin, shQuote, QuoteError } from "../../lib/quote.ts";
import { hostileStrings } from "../support/fuzz.ts";

test("safe words stay bare, others are single-quoted", () => {
  assert.equal(shQuote("abc-1.2/x:y@z"), "abc-1.2/x:y@z");
  assert.equal(shQuote(""), "''");
  assert.equal(shQuote("a b"), "'a b'");
  assert.equal(shQuote("it's"), `'it'\\''s'`);
  assert.equal(shJoin(["echo", "$HOME", 3]), "echo '$HOME' 3");
});

test("a NUL byte is refused with a clear error", () => {
  assert.throws(
    () => shQuote("a\0b"),
    (e: Error) => e instanceof QuoteError && /NUL byte/.test(e.message),
  );
});

test("10,000 hostile strings come back unchanged through POSIX sh (dash) printf", () => {
  const strings = hostileStrings(10_000, 7);
  // One sh process prints every quoted word NUL-separated: the shell parses all 10,000 quotings.
  const script = `printf '%s\\0' ${strings.map(shQuote).join(" ")}`;
  const r = spawnSync("sh", ["-c", script], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  const back = r.stdout.toString("utf8").split("\0").slice(0, -1);
  assert.equal(back.length, strings.length);
  for (let i = 0; i < strings.length; i++) assert.equal(back[i], strings[i], `string #${i}`);
});
