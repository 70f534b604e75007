import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { describeOptions, parseFlags, FlagError } from "../../lib/cli/options.ts";
import { parseDotEnv, Redactor, resolveSecrets, MissingSecretsError } from "../../lib/secrets.ts";

const schema = z.object({
  file: z.array(z.string()).default([]).describe("workflow files"),
  connections: z.number().int().default(16),
  yes: z.boolean().default(false),
  mode: z.enum(["a", "b"]).optional(),
  output: z.string().optional().meta({ alias: "o" }),
});

test("options described from the zod schema: type, default, enum values, alias", () => {
  const info = describeOptions(schema);
  assert.deepEqual(info.map((o) => [o.flag, o.type, o.required]), [
    ["--file", "array", false], ["--connections", "number", false], ["--yes", "boolean", false], ["--mode", "enum", false], ["--output", "string", false],
  ]);
  assert.equal(info[1]!.defaultValue, 16);
  assert.deepEqual(info[3]!.values, ["a", "b"]);
  assert.equal(info[4]!.alias, "o");
});

test("flags: --k v, --k=v, repeated arrays, --no-x, -o alias, words after --", () => {
  const info = describeOptions(schema);
  const r = parseFlags(["--file", "a.json", "--file=b.json,c.json", "--connections", "8", "--no-yes", "-o", "out.json", "--", "nvidia-smi", "-L"], info, []);
  assert.deepEqual(r.values, { file: ["a.json", "b.json", "c.json"], connections: 8, yes: false, output: "out.json" });
  assert.deepEqual(r.rest, ["nvidia-smi", "-L"]);
  assert.equal(parseFlags(["--connections", "x"], info, []).values.connections, "x", "left for zod to reject with the value named");
  assert.throws(() => parseFlags(["--nope"], info, []), (e: Error) => e instanceof FlagError && /unknown option --nope/.test(e.message));
  assert.throws(() => parseFlags(["--output"], info, []), /--output needs a value/);
});

test(".env parsing: export, quotes, comments; the environment wins", () => {
  const env = parseDotEnv(`# tokens\nexport HF_TOKEN="hf_abc def"\nCIVITAI_API_TOKEN=xyz # trailing comment\nQUOTED='a#b'\nbroken line\n`);
  assert.deepEqual(env, { HF_TOKEN: "hf_abc def", CIVITAI_API_TOKEN: "xyz", QUOTED: "a#b" });
});

test("secrets: missing ones named before any host; values redacted everywhere, longest first", () => {
  assert.throws(() => resolveSecrets("models:download", ["HF_TOKEN", "X"], [], { X: "1" }), (e: Error) => e instanceof MissingSecretsError && e.message === "models:download needs HF_TOKEN: set it in the environment or in .env");
  assert.deepEqual(resolveSecrets("t", ["A"], ["B", "C"], { A: "aaaa", C: "cccc" }), { A: "aaaa", C: "cccc" });
  const r = new Redactor();
  r.add("hf_secret");
  r.add("hf_secret_longer");
  r.add("ab"); // too short to redact safely
  assert.equal(r.redact("x hf_secret_longer y hf_secret z ab"), "x *** y *** z ab");
});
