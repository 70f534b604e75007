// The workflows folder as data: names comfyui-api can serve, the sync plan, the tar that carries
// the files, and the shell that applies the plan (run here with sh, as the host runs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  containerFileOf,
  describePlan,
  endpointOf,
  isWorkflowFile,
  nameClashes,
  nameProblem,
  parseShaList,
  planSync,
  tarArchive,
} from "../../lib/comfy/comfyui-api-files.ts";
import { factsCommand, parseFacts, syncCommand } from "../../plugins/comfyui-api/commands.ts";

const sha = (c: string) => c.repeat(64);

test("endpoints and container paths follow comfyui-api's walk: folders are path segments, .ts is read as its .js", () => {
  assert.equal(endpointOf("qwen/qwen_base_txt2img.ts"), "/workflow/qwen/qwen_base_txt2img");
  assert.equal(endpointOf("top.js"), "/workflow/top");
  assert.equal(containerFileOf("sd15/txt2img.ts"), "/workflows/sd15/txt2img.js");
  assert.equal(containerFileOf("a.js"), "/workflows/a.js");
  assert.ok(isWorkflowFile("a/b.ts") && isWorkflowFile("b.js"));
  assert.ok(!isWorkflowFile("types.d.ts") && !isWorkflowFile("README.md") && !isWorkflowFile("a.json"));
});

test("names comfyui-api cannot serve are refused with the reason; clashes in its route tree too", () => {
  assert.equal(nameProblem("qwen/qwen_base-txt2img.ts"), undefined);
  assert.match(nameProblem("my.tsfile.ts")!, /first "\.ts"/);
  assert.match(nameProblem("a b/x.ts")!, /folder name "a b"/);
  assert.match(nameProblem("x/:id.ts")!, /file name ":id\.ts"/);
  assert.deepEqual(nameClashes(["sd15.ts", "sd15/txt2img.ts", "a.ts", "a.js", "b.js"]), [
    { rel: "sd15.ts", problem: "a folder sd15/ beside it has the same endpoint name; comfyui-api keeps only one of them" },
    { rel: "a.js", problem: "a.ts beside it is transpiled over it on the host; keep one of the two" },
  ]);
});

test("sha256sum's listing: ./ dropped, escaped names (\\n, \\\\) read back, other lines ignored", () => {
  const m = parseShaList(`${sha("a")}  ./x.ts\n\\${sha("b")}  ./we\\nird\\\\name.ts\n${sha("c")} *./bin.js\nnot a line\n`);
  assert.deepEqual(
    [...m],
    [
      ["x.ts", sha("a")],
      ["we\nird\\name.ts", sha("b")],
      ["bin.js", sha("c")],
    ],
  );
});

test("the plan: send what differs, remove what the project dropped (its .js too), keep the .js beside a kept .ts", () => {
  const local = new Map([
    ["a.ts", sha("1")],
    ["sub/b.ts", sha("2")],
    ["c.js", sha("3")],
  ]);
  const remote = new Map([
    ["a.ts", sha("1")],
    ["a.js", sha("9")], // unchanged; its generated .js stays
    ["sub/b.ts", sha("0")],
    ["sub/b.js", sha("8")], // changed
    ["old.ts", sha("4")],
    ["old.js", sha("5")], // removed locally: both go
    ["notes.txt", sha("6")], // not the project's: goes
  ]);
  const p = planSync(local, remote);
  assert.deepEqual(p, {
    upload: ["c.js", "sub/b.ts"],
    remove: ["notes.txt", "old.js", "old.ts"],
    unchanged: ["a.ts"],
    generated: ["a.js", "sub/b.js"],
  });
  assert.equal(describePlan(p), "sent 2: c.js, sub/b.ts; removed 3: notes.txt, old.js, old.ts; 1 unchanged");
  assert.equal(describePlan(planSync(local, new Map([...local, ["a.js", sha("7")]]))), "3 files up to date");
});

test("tarArchive: a ustar that tar unpacks, long paths via the prefix field", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-tar-"));
  try {
    const long = `${"d".repeat(90)}/${"e".repeat(60)}/w.ts`;
    const tar = tarArchive([
      { path: "a.ts", data: Buffer.from("export default 1;\n") },
      { path: "sub/b.ts", data: Buffer.alloc(1500, "x") },
      { path: long, data: Buffer.from("") },
    ]);
    assert.equal(tar.length % 512, 0);
    const r = spawnSync("tar", ["-x", "-f", "-", "-C", dir], { input: tar });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(readFileSync(join(dir, "a.ts"), "utf8"), "export default 1;\n");
    assert.equal(readFileSync(join(dir, "sub/b.ts")).length, 1500);
    assert.equal(readFileSync(join(dir, long), "utf8"), "");
    const list = spawnSync("tar", ["-t", "-v", "-f", "-"], { input: tar }).stdout.toString();
    assert.match(list, /^-rw-r--r-- /m);
    assert.throws(() => tarArchive([{ path: "x".repeat(300), data: Buffer.alloc(0) }]), /too long/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("facts and sync run with sh: one listing, then the plan applied from a tar on stdin (here, without docker)", () => {
  const root = mkdtempSync(join(tmpdir(), "flow-sync-"));
  const dir = join(root, "comfyui-api/workflows");
  const models = join(root, "comfyui/models");
  const marker = join(root, "comfyui-api/workflows.changed");
  try {
    mkdirSync(join(dir, "old"), { recursive: true });
    mkdirSync(join(models, "checkpoints"), { recursive: true });
    writeFileSync(join(models, "checkpoints/m.safetensors"), "x");
    writeFileSync(join(dir, "keep.ts"), "keep\n");
    writeFileSync(join(dir, "keep.js"), "generated\n");
    writeFileSync(join(dir, "old/gone.ts"), "gone\n");
    writeFileSync(join(dir, "old/gone.js"), "gone js\n");
    const sh = (cmd: string, input?: Buffer) => {
      const r = spawnSync("sh", ["-c", cmd], { input });
      return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
    };
    const facts = parseFacts(
      sh(factsCommand({ container: "flow-no-such-container", workflowsDir: dir, modelsDir: models, marker, classes: ["KSampler"] })).out,
    );
    assert.deepEqual([...facts.files.keys()].sort(), ["keep.js", "keep.ts", "old/gone.js", "old/gone.ts"]);
    assert.ok(facts.models.files.has("checkpoints/m.safetensors"));
    assert.equal(facts.container, undefined);
    assert.equal(facts.changedAt, undefined);

    const local = new Map([
      ["keep.ts", facts.files.get("keep.ts")!],
      ["new/sub/n.ts", sha("e")],
    ]);
    const plan = planSync(local, facts.files);
    assert.deepEqual(plan.upload, ["new/sub/n.ts"]);
    assert.deepEqual(plan.remove, ["old/gone.js", "old/gone.ts"]);
    const tar = tarArchive([{ path: "new/sub/n.ts", data: Buffer.from("new\n") }]);
    const before = Date.now();
    const r = sh(
      syncCommand({ workflowsDir: dir, stageParent: join(root, "comfyui-api"), upload: plan.upload, remove: plan.remove, marker }),
      tar,
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(join(dir, "new/sub/n.ts"), "utf8"), "new\n");
    assert.equal(readFileSync(join(dir, "keep.js"), "utf8"), "generated\n");
    assert.ok(!existsSync(join(dir, "old")), "an emptied folder goes too");
    assert.deepEqual(readdirSync(join(root, "comfyui-api")).sort(), ["workflows", "workflows.changed"], "no staging folder left");
    const again = parseFacts(sh(factsCommand({ container: "x", workflowsDir: dir, modelsDir: models, marker, classes: [] })).out);
    assert.ok(again.changedAt! >= before - 1000 && again.changedAt! <= Date.now() + 1000, String(again.changedAt));
    assert.deepEqual(planSync(local, again.files).upload, ["new/sub/n.ts"], "the test's made-up sha differs");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
