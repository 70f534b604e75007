// The code stays readable in a side-by-side diff: no line of flow's own code over 140 columns
// (Prettier wraps code at 140; a long message or shell text is split into concatenations).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "../support/cli.ts";

const FOLDERS = ["lib", "plugins", "providers", "tasks", "bench", "test", "bin"];

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === "node_modules" || name === "fixtures" || name.startsWith(".")) continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|mjs)$/.test(name)) yield p;
  }
}

test("no line over 140 columns in flow's code", () => {
  const long: string[] = [];
  for (const top of FOLDERS)
    for (const file of sources(join(REPO, top)))
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => line.length > 140 && long.push(`${relative(REPO, file)}:${i + 1} (${line.length})`));
  assert.deepEqual(long, []);
});
