import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { parseArgs } from "citty";
import { describeOptions, FlagError } from "../../lib/cli/options.ts";
import { cittyArgs, readArgs } from "../../lib/cli/args.ts";
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
  assert.deepEqual(
    info.map((o) => [o.flag, o.type, o.required]),
    [
      ["--file", "array", false],
      ["--connections", "number", false],
      ["--yes", "boolean", false],
      ["--mode", "enum", false],
      ["--output", "string", false],
    ],
  );
  assert.equal(info[1]!.defaultValue, 16);
  assert.deepEqual(info[3]!.values, ["a", "b"]);
  assert.equal(info[4]!.alias, "o");
});

test("flags through citty: --k v, --k=v, repeated lists, --no-x, -o alias, words after --", () => {
  const info = describeOptions(schema);
  const def = cittyArgs(info);
  const read = (argv: string[]) => readArgs(parseArgs(argv, def), argv, info);
  const argv = ["--file", "a.json", "--file=b.json,c.json", "--connections", "8", "--no-yes", "-o", "out.json", "--", "nvidia-smi", "-L"];
  const r = read(argv);
  assert.deepEqual(r.values, { file: ["a.json", "b.json", "c.json"], connections: 8, yes: false, output: "out.json" });
  assert.deepEqual(r.rest, ["nvidia-smi", "-L"]);
  assert.deepEqual(r.positionals, []);
  assert.equal(read(["--connections", "x"]).values.connections, "x", "left for zod to reject with the value named");
  assert.throws(
    () => read(["--nope"]),
    (e: Error) => e instanceof FlagError && /unknown option --nope/.test(e.message),
  );
  assert.throws(() => read(["--file"]), /--file needs a value/);
  assert.throws(() => read(["--output"]), /--output needs a value/);
  assert.deepEqual(read(["word", "--yes", "--", "x"]).positionals, ["word"]);
});

test(".env parsing: export, quotes, comments; the environment wins", () => {
  const env = parseDotEnv(`# tokens\nexport HF_TOKEN="hf_abc def"\nCIVITAI_API_TOKEN=xyz # trailing comment\nQUOTED='a#b'\nbroken line\n`);
  assert.deepEqual(env, { HF_TOKEN: "hf_abc def", CIVITAI_API_TOKEN: "xyz", QUOTED: "a#b" });
});

test("secrets: missing ones named before any host; values redacted everywhere, longest first", () => {
  assert.throws(
    () => resolveSecrets("models:download", ["HF_TOKEN", "X"], [], { X: "1" }),
    (e: Error) => e instanceof MissingSecretsError && e.message === "models:download needs HF_TOKEN: set it in the environment or in .env",
  );
  assert.deepEqual(resolveSecrets("t", ["A"], ["B", "C"], { A: "aaaa", C: "cccc" }), { A: "aaaa", C: "cccc" });
  const r = new Redactor();
  r.add("hf_secret");
  r.add("hf_secret_longer");
  r.add("ab"); // too short to redact safely
  assert.equal(r.redact("x hf_secret_longer y hf_secret z ab"), "x *** y *** z ab");
});

test("redaction of values happens before encoding: quotes and backslashes in a secret, keys, deep nesting", () => {
  const r = new Redactor();
  const secret = 'a"b\\c_0123456789';
  r.add(secret);
  const v = r.redactValue({ title: `x ${secret} y`, list: [secret, 1, null, { [secret]: true }] });
  assert.equal(JSON.stringify(v), '{"title":"x *** y","list":["***",1,null,{"***":true}]}');
  // after JSON.stringify the secret no longer matches its own text: why values are redacted first
  assert.ok(r.redact(JSON.stringify({ s: secret })).includes('a\\"b'), "test premise: encoded text escapes the secret");
  let deep: unknown = secret;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  let out = r.redactValue(deep) as unknown;
  for (let i = 0; i < 100_000; i++) out = (out as unknown[])[0];
  assert.equal(out, "***");
  const proto = r.redactValue(JSON.parse('{"__proto__": {"x": 1}}')) as Record<string, unknown>;
  assert.ok(Object.hasOwn(proto, "__proto__"), "a key named __proto__ stays an own key");
});

test("URLs with a credential are masked in any printed text; token values from URLs known", async () => {
  const { urlCredentialValues, stripUrlCredentials, hasUrlCredentials } = await import("../../lib/url-credentials.ts");
  const r = new Redactor();
  assert.equal(
    r.redact("GET https://civitai.com/api/download/models/1?type=Model&token=abc123secret failed"),
    "GET https://civitai.com/api/download/models/1?type=Model&token=*** failed",
  );
  assert.equal(r.redact("see https://u:pw@example.com/x"), "see https://example.com/x");
  assert.equal(
    r.redact("https://cdn.example/x?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&v=1"),
    "https://cdn.example/x?X-Amz-Signature=***&X-Amz-Credential=***&v=1",
  );
  assert.equal(
    stripUrlCredentials("https://civitai.com/api/download/models/1?token=abc&type=Model"),
    "https://civitai.com/api/download/models/1?type=Model",
  );
  assert.equal(
    stripUrlCredentials("https://huggingface.co/a/b/resolve/main/c.safetensors"),
    "https://huggingface.co/a/b/resolve/main/c.safetensors",
  );
  assert.deepEqual(urlCredentialValues("https://x.io/f?token=t0k3n&apiKey=k3y&download=true"), ["t0k3n", "k3y"]);
  assert.ok(hasUrlCredentials("https://x.io/f?hf_token=1") && !hasUrlCredentials("https://x.io/f?download=true&type=Model"));
});

test("a byte stream is redacted across chunk boundaries and otherwise passed through unchanged", () => {
  const r = new Redactor();
  r.add("s3cr3t_value");
  const data = Buffer.concat([
    Buffer.from([0, 255, 1]),
    Buffer.from("head s3cr3t_value mid s3cr3t_valu"),
    Buffer.from([0xe2, 0x82]),
    Buffer.from("e end s3cr3t_value"),
  ]);
  for (const size of [1, 2, 5, 7, 64]) {
    const got: Buffer[] = [];
    const s = r.stream((c) => got.push(c));
    for (let i = 0; i < data.length; i += size) s.write(data.subarray(i, i + size));
    s.end();
    assert.deepEqual(
      Buffer.concat(got),
      Buffer.concat([
        Buffer.from([0, 255, 1]),
        Buffer.from("head *** mid s3cr3t_valu"),
        Buffer.from([0xe2, 0x82]),
        Buffer.from("e end ***"),
      ]),
      `chunks of ${size}`,
    );
  }
  const got2: Buffer[] = [];
  const plain = new Redactor().stream((c) => got2.push(c));
  plain.write(Buffer.from("abc"));
  assert.equal(Buffer.concat(got2).toString(), "abc", "no secrets: nothing held back");
});

test(".env: a stray line without '=' does not swallow the next secret (why not util.parseEnv on Node 20)", () => {
  assert.deepEqual(parseDotEnv("broken line\nHF_TOKEN=hf_x\n"), { HF_TOKEN: "hf_x" });
});
