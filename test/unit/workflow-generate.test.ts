// workflow:generate through the real CLI, in a throwaway project: a real template, the real
// object_info, comfyui-api's real source for the proof, and a local server that speaks
// OpenRouter's chat completions API for --llm.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { flow, REPO, type CliResult } from "../support/cli.ts";
import { fakeEnv, startFakeUpstream, type FakeUpstream } from "../support/fake-upstream.ts";
import { dataPath, needs } from "./comfy/shared-data.ts";
import { staleWarnings } from "../../plugins/workflow/stale.ts";

const VENDOR = resolve(REPO, "../shared/vendor/comfyui-api");
const TEMPLATE = "templates/flux_depth_lora_example.json";
const OBJECT_INFO = "comfyui/object_info.json";
const SKIP = needs(TEMPLATE, OBJECT_INFO) || (existsSync(join(VENDOR, "src/types.ts")) ? false : `no comfyui-api source at ${VENDOR}`);
const T = { skip: SKIP, timeout: 240_000 };

const KEY = "sk-or-v1-flowtest" + Math.random().toString(36).slice(2, 12);

// ---------- a local OpenRouter ----------

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}
interface Seen {
  auth?: string;
  body: { model?: string; messages?: { role: string; content: string }[] };
}

let server: Server;
let baseUrl = "";
// ComfyUI-Manager's data for workflow:deps, from a local server as in workflow-tasks.test.ts
const REF = "comfyui-manager/extension-node-map.json";
let upstream: FakeUpstream | undefined;
let answers: Answer[] = [];
let seen: Seen[] = [];

const readBody = (req: IncomingMessage) =>
  new Promise<string>((res) => {
    let s = "";
    req.on("data", (c: Buffer) => (s += c.toString()));
    req.on("end", () => res(s));
  });

before(async () => {
  if (SKIP) return;
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method !== "POST" || req.url !== "/api/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    seen.push({ auth: req.headers.authorization, body: JSON.parse(body) });
    const a = answers.shift() ?? { status: 500, body: { error: { message: "the test gave no answer" } } };
    res.writeHead(a.status, { "content-type": "application/json", ...a.headers }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
  if (!needs(REF)) upstream = await startFakeUpstream({ staticDir: dirname(dataPath(REF)!) });
});
after(async () => {
  server?.close();
  await upstream?.close();
});

const completion = (content: string): Answer => ({
  status: 200,
  body: { id: "gen-1", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }] },
});

// ---------- a project ----------

/** A project with the template in workflow_templates/ and the workflow plugin reading comfyui-api's source from VENDOR. */
function project(pluginExtra = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "flow-gen-"));
  const allow = [baseUrl, upstream?.url]
    .filter((u): u is string => !!u)
    .map((u) => JSON.stringify(new URL(u).host))
    .join(", ");
  writeFileSync(
    join(dir, "flowfile.ts"),
    `import { defineFlow } from ${JSON.stringify(REPO + "lib/index.ts")};
import { workflow } from ${JSON.stringify(REPO + "plugins/index.ts")};
export default defineFlow({
  plugins: [workflow({ source: { dir: ${JSON.stringify(VENDOR)} }${pluginExtra} })],
  settings: { allowHosts: [${allow}] },
});
`,
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "workflow_templates"));
  copyFileSync(dataPath(TEMPLATE)!, join(dir, "workflow_templates/flux_depth.json"));
  return dir;
}

const OI = ["--object-info", dataPath(OBJECT_INFO) ?? ""];
const ENV = { FLOW_COMFYUI_API_SRC: "", FLOW_COMFYUI_API_URL: "", OPENROUTER_API_KEY: "" };

function gen(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return flow(["run", "workflow:generate", ...args], { cwd: dir, env: { ...ENV, FLOW_OPENROUTER_URL: baseUrl, ...env } });
}

/** The merged `data` events of a --json run. */
function dataOf(stdout: string): Record<string, any> {
  const lines = stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  return Object.assign({}, ...lines.filter((l) => l.type === "data").map((l) => l.data));
}

const out = (r: CliResult) => r.stdout + r.stderr;
const ENDPOINT = "workflows/flux_depth.ts";

// ---------- the deterministic path ----------

test(
  "generate writes a proven endpoint; again changes nothing; --check passes, then names a stale template and a hand edit",
  T,
  async () => {
    const dir = project();
    const first = await gen(dir, [...OI, "--json"]);
    assert.equal(first.code, 0, out(first));
    const text = readFileSync(join(dir, ENDPOINT), "utf8");
    assert.match(text, /RequestSchema/);
    assert.match(text, /workflow_templates\/flux_depth\.json/, "the header names the template");
    const d1 = dataOf(first.stdout).generate;
    assert.equal(d1.endpoints.length, 1);
    assert.equal(d1.endpoints[0].status, "written");
    assert.ok(d1.endpoints[0].params.length > 0);

    const second = await gen(dir, [...OI, "--json"]);
    assert.equal(second.code, 0, out(second));
    assert.equal(dataOf(second.stdout).generate.endpoints[0].status, "unchanged");
    assert.equal(readFileSync(join(dir, ENDPOINT), "utf8"), text, "byte-identical on regeneration");

    const ok = await gen(dir, [...OI, "--check"]);
    assert.equal(ok.code, 0, out(ok));
    assert.match(out(ok), /up to date, proven/);

    // the template changes: the endpoint is stale, and the shared check says so too
    const tpl = join(dir, "workflow_templates/flux_depth.json");
    const original = readFileSync(tpl, "utf8");
    const j = JSON.parse(original);
    j.extra = { ...j.extra, flowTest: 1 };
    writeFileSync(tpl, JSON.stringify(j));
    const stale = await gen(dir, [...OI, "--check"]);
    assert.equal(stale.code, 1, out(stale));
    assert.match(out(stale), /workflows\/flux_depth\.ts: stale: workflow_templates\/flux_depth\.json changed since it was generated/);
    const warned = staleWarnings(dir, join(dir, "workflows"));
    assert.equal(warned.length, 1);
    assert.match(warned[0]!, /flux_depth\.ts is stale: workflow_templates\/flux_depth\.json changed/);

    // back to the template it was made from, then an edit by hand
    writeFileSync(tpl, original);
    assert.deepEqual(staleWarnings(dir, join(dir, "workflows")), []);
    writeFileSync(join(dir, ENDPOINT), text.replace(/\n$/, "\n// tweaked by hand\n"));
    const edited = await gen(dir, [...OI, "--check"]);
    assert.equal(edited.code, 1, out(edited));
    assert.match(out(edited), /flux_depth\.ts: differs from what workflow:generate gives now/);

    // a template with no endpoint: reported, and a failure only with --strict
    writeFileSync(join(dir, ENDPOINT), text);
    copyFileSync(tpl, join(dir, "workflow_templates/second.json"));
    const lax = await gen(dir, [...OI, "--check"]);
    assert.equal(lax.code, 0, out(lax));
    assert.match(out(lax), /second\.json: no endpoint is generated from it/);
    const strict = await gen(dir, [...OI, "--check", "--strict"]);
    assert.equal(strict.code, 1, out(strict));
  },
);

test("-o chooses the file, later runs find it by its header; --params renames, and regeneration keeps it", T, async () => {
  const dir = project();
  const target = "workflows/flux/depth.ts";
  const first = await gen(dir, ["--file", "workflow_templates/flux_depth.json", "-o", target, ...OI, "--json"]);
  assert.equal(first.code, 0, out(first));
  const name = dataOf(first.stdout).generate.endpoints[0].params[0] as string;
  assert.ok(existsSync(join(dir, target)));

  writeFileSync(join(dir, "params.json"), JSON.stringify({ rename: { [name]: "renamed_by_test" } }));
  const renamed = await gen(dir, ["--file", "workflow_templates/flux_depth.json", "--params", "params.json", ...OI, "--json"]);
  assert.equal(renamed.code, 0, out(renamed));
  const d = dataOf(renamed.stdout).generate.endpoints[0];
  assert.equal(d.endpoint, target, "the endpoint is found by its header, not made again under workflows/<name>.ts");
  assert.ok(d.params.includes("renamed_by_test") && !d.params.includes(name), d.params.join(", "));
  const text = readFileSync(join(dir, target), "utf8");
  assert.match(text, /renamed_by_test/);

  // no --params: the header's overrides are used, so nothing changes
  const again = await gen(dir, [...OI, "--json"]);
  assert.equal(again.code, 0, out(again));
  assert.equal(dataOf(again.stdout).generate.endpoints[0].status, "unchanged");
  assert.equal(readFileSync(join(dir, target), "utf8"), text);
  assert.deepEqual(readdirSync(join(dir, "workflows")), ["flux"], "no second endpoint");
  const check = await gen(dir, [...OI, "--check"]);
  assert.equal(check.code, 0, out(check));
});

test("a file workflow:generate did not write is not overwritten; -o needs one --file", T, async () => {
  const dir = project();
  mkdirSync(join(dir, "workflows"));
  writeFileSync(join(dir, ENDPOINT), "// mine\n");
  const r = await gen(dir, OI);
  assert.equal(r.code, 1, out(r));
  assert.match(out(r), /flux_depth\.ts exists and was not written by workflow:generate/);
  assert.equal(readFileSync(join(dir, ENDPOINT), "utf8"), "// mine\n");
  const two = await gen(dir, ["-o", "x.ts", ...OI]);
  assert.notEqual(two.code, 0);
  assert.match(out(two), /-o\/--output needs exactly one --file/);
});

test(
  "workflow:deps warns about an endpoint whose template changed since it was generated",
  { ...T, skip: SKIP || needs(REF) },
  async () => {
    const dir = project();
    const r = await gen(dir, OI);
    assert.equal(r.code, 0, out(r));
    const env = fakeEnv(upstream!, mkdtempSync(join(tmpdir(), "flow-gen-cache-")));
    const deps = () => flow(["run", "workflow:deps"], { cwd: dir, env });
    const before = await deps();
    assert.equal(before.code, 0, out(before));
    assert.doesNotMatch(out(before), /is stale/);
    const tpl = join(dir, "workflow_templates/flux_depth.json");
    writeFileSync(tpl, readFileSync(tpl, "utf8").replace(/\}\s*$/, ', "flowTest": 1}'));
    const after = await deps();
    assert.equal(after.code, 0, out(after));
    assert.match(
      out(after),
      /warn: workflows\/flux_depth\.ts is stale: workflow_templates\/flux_depth\.json changed since it was generated/,
    );
  },
);

// ---------- --llm against the local OpenRouter ----------

/** The generator's own endpoint with its header comment taken off: a reply that passes the proof. */
async function goodReply(): Promise<string> {
  const dir = project();
  const r = await gen(dir, OI);
  assert.equal(r.code, 0, out(r));
  const body = readFileSync(join(dir, ENDPOINT), "utf8")
    .split("\n")
    .filter((l, i, all) => !(l.startsWith("//") && all.slice(0, i).every((p) => p.startsWith("//"))))
    .join("\n");
  return "Here is the endpoint:\n\n```typescript\n" + body + "```\n";
}

function noKeyIn(...rs: CliResult[]) {
  for (const r of rs) assert.ok(!out(r).includes(KEY), "the key never shows in flow's output");
}

test("--llm: a reply that passes the proof is written, with comfyui-api's own prompt sent; --check proves it again", T, async () => {
  const reply = await goodReply();
  const dir = project(`, llm: { model: "test/from-flowfile" }`);
  seen = [];
  answers = [completion(reply)];
  const r = await gen(dir, ["--file", "workflow_templates/flux_depth.json", "--llm", ...OI, "--json"], { OPENROUTER_API_KEY: KEY });
  assert.equal(r.code, 0, out(r));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.auth, `Bearer ${KEY}`);
  assert.equal(seen[0]!.body.model, "test/from-flowfile", "the flowfile's model when --model is not given");
  const [system, user] = seen[0]!.body.messages!;
  assert.equal(system!.content, readFileSync(join(VENDOR, "claude-endpoint-creation-prompt.md"), "utf8"));
  assert.ok(
    Object.values(JSON.parse(user!.content)).every((n: any) => typeof n.class_type === "string"),
    "the API prompt is sent",
  );
  const text = readFileSync(join(dir, ENDPOINT), "utf8");
  assert.match(text, /^\/\/ Written by test\/from-flowfile/);
  assert.match(text, /flow-llm-origin: \{"template":"workflow_templates\/flux_depth\.json"/);
  assert.equal(dataOf(r.stdout).generate.endpoints[0].by, "llm");

  const check = await gen(dir, [...OI, "--check"]);
  assert.equal(check.code, 0, out(check));
  // a plain run leaves the LLM's endpoint alone while its template is unchanged
  const plain = await gen(dir, OI);
  assert.equal(plain.code, 0, out(plain));
  assert.equal(readFileSync(join(dir, ENDPOINT), "utf8"), text);
  noKeyIn(r, check, plain);
});

test("--llm: a refused key stops the run, names OPENROUTER_API_KEY, writes nothing", T, async () => {
  const dir = project();
  seen = [];
  answers = [{ status: 401, body: { error: { message: "No auth credentials found", code: 401 } } }];
  const r = await gen(dir, ["--llm", "--model", "x/y", ...OI], { OPENROUTER_API_KEY: KEY });
  assert.equal(r.code, 1, out(r));
  assert.match(out(r), /OPENROUTER_API_KEY was refused/);
  assert.equal(seen.length, 1, "not asked again");
  assert.ok(!existsSync(join(dir, ENDPOINT)));
  noKeyIn(r);
});

test("--llm: 429 is waited out (Retry-After) and the next answer used", T, async () => {
  const reply = await goodReply();
  const dir = project();
  seen = [];
  answers = [{ status: 429, body: { error: { message: "rate limited" } }, headers: { "retry-after": "0" } }, completion(reply)];
  const r = await gen(dir, ["--llm", "--model", "x/y", ...OI, "--json"], { OPENROUTER_API_KEY: KEY });
  assert.equal(r.code, 0, out(r));
  assert.equal(seen.length, 2);
  assert.equal(dataOf(r.stdout).generate.endpoints[0].by, "llm");
  noKeyIn(r);
});

test("--llm: 429 on every try fails the file clearly", T, async () => {
  const dir = project();
  seen = [];
  const limited: Answer = { status: 429, body: { error: { message: "rate limited" } }, headers: { "retry-after": "0" } };
  answers = [limited, limited, limited, limited, limited];
  const r = await gen(dir, ["--llm", "--model", "x/y", ...OI], { OPENROUTER_API_KEY: KEY });
  assert.equal(r.code, 1, out(r));
  assert.match(out(r), /kept answering 429/);
  assert.equal(seen.length, 4);
  assert.ok(!existsSync(join(dir, ENDPOINT)));
  answers = [];
});

test("--llm: a reply that is not valid TypeScript, or no TypeScript at all, leaves the generator's endpoint", T, async () => {
  for (const reply of ["```ts\nexport default {{ this is not a workflow\n```\n", "I am sorry, I cannot convert this workflow."]) {
    const dir = project();
    seen = [];
    answers = [completion(reply)];
    const r = await gen(dir, ["--llm", "--model", "x/y", ...OI, "--json"], { OPENROUTER_API_KEY: KEY });
    assert.equal(r.code, 0, out(r));
    assert.match(out(r), /x\/y's endpoint is not used: (it fails the proof|its reply holds no TypeScript)/);
    const e = dataOf(r.stdout).generate.endpoints[0];
    assert.equal(e.by, "generator");
    const text = readFileSync(join(dir, ENDPOINT), "utf8");
    assert.doesNotMatch(text, /flow-llm-origin/);
    noKeyIn(r);
  }
});

test("--llm without OPENROUTER_API_KEY stops before anything runs, naming it", T, async () => {
  const dir = project();
  seen = [];
  const r = await gen(dir, ["--llm", ...OI]);
  assert.notEqual(r.code, 0);
  assert.match(out(r), /--llm needs OPENROUTER_API_KEY/);
  assert.equal(seen.length, 0);
});

test("a PNG ComfyUI saved, with the workflow in its tEXt chunk, generates the same endpoint as the JSON export", T, async () => {
  const dir = project();
  const json = await gen(dir, [...OI]);
  assert.equal(json.code, 0, out(json));
  const fromJson = readFileSync(join(dir, ENDPOINT), "utf8");
  // a PNG as ComfyUI writes it: signature, a tEXt "workflow" chunk, IEND (CRCs are not read)
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type, "latin1"), data, Buffer.alloc(4)]);
  };
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ui = readFileSync(join(dir, "workflow_templates/flux_depth.json"), "latin1");
  const png = Buffer.concat([sig, chunk("tEXt", Buffer.from(`workflow\0${ui}`, "latin1")), chunk("IEND", Buffer.alloc(0))]);
  writeFileSync(join(dir, "flux_depth.png"), png);
  const r = await gen(dir, [...OI, "--file", "flux_depth.png", "-o", "workflows/from_png.ts"]);
  assert.equal(r.code, 0, out(r));
  const fromPng = readFileSync(join(dir, "workflows/from_png.ts"), "utf8");
  // the same endpoint; only the header's template path differs
  const body = (t: string) => t.split("\n").filter((l) => !l.startsWith("// template:") && !l.startsWith("// sha256:"));
  assert.deepEqual(body(fromPng), body(fromJson));
  assert.match(fromPng, /\/\/ template: "flux_depth\.png"/);
});
