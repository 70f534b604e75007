import { test } from "node:test";
import assert from "node:assert/strict";
import { posix } from "node:path";
import { joinInside, safeFolder, safeModelRelPath, safePackDir, safeRepoUrl, safeUrl } from "../../../lib/comfy/safe-names.ts";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { modelDeps } from "../../../lib/comfy/model-deps.ts";

test("model names: normal ones pass, Windows backslashes normalised", () => {
  assert.deepEqual(safeModelRelPath("flux1-dev.safetensors"), { ok: true, value: "flux1-dev.safetensors" });
  assert.deepEqual(safeModelRelPath("SDXL\\x (v2).safetensors"), { ok: true, value: "SDXL/x (v2).safetensors" });
});

test("model names: traversal, absolute, NUL, shell metacharacters, options, URLs refused", () => {
  for (const bad of [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "C:\\x",
    "a\0b",
    "a;b",
    "$(id)",
    "`id`",
    "a|b",
    "a\nb",
    "-rf",
    "..",
    ".",
    "",
    "a//",
    "http://x/y",
    "~/x",
    "a'b",
    'a"b',
  ])
    assert.equal(safeModelRelPath(bad).ok, false, JSON.stringify(bad));
});

test("folders, pack dirs, URLs, repo URLs", () => {
  assert.ok(safeFolder("controlnet/SDXL").ok);
  assert.equal(safeFolder("../custom_nodes").ok, false);
  assert.equal(safePackDir("a/b").ok, false);
  assert.equal(safePackDir(".git").ok, false);
  assert.ok(safeUrl("https://huggingface.co/a/b/resolve/main/c").ok);
  for (const u of ["file:///etc/passwd", "https://user:pw@host/x", "javascript:alert(1)", "https://h/a b", "ftp://x/y"])
    assert.equal(safeUrl(u).ok, false, u);
  assert.deepEqual(safeRepoUrl("https://github.com/kijai/ComfyUI-KJNodes.git"), {
    ok: true,
    value: "https://github.com/kijai/ComfyUI-KJNodes",
  });
  for (const u of ["https://github.com/a/..", "https://github.com/a/b/c", "https://evil.com/a/b", "https://github.com/a/-b"])
    assert.equal(safeRepoUrl(u).ok, false, u);
  assert.equal(joinInside("/m/loras", "../x").ok, false);
});

// Deterministic generator so a failure reproduces.
function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}
const PIECES = [
  "..",
  ".",
  "/",
  "\\",
  "\0",
  ";",
  "$(",
  "`",
  "|",
  "&",
  ">",
  "~",
  "%2e%2e",
  "C:",
  "//",
  "\n",
  " ",
  "-",
  "a",
  "loras",
  "x.safetensors",
  "é",
  "*",
  "?",
  "'",
  '"',
  "file:",
  "http://",
  "..\\..\\",
  "/etc/passwd",
  "\u202e",
];

test("fuzz: 1,000 generated hostile workflows, no resolved path leaves its models folder", () => {
  const r = rng(42);
  const pick = () => PIECES[Math.floor(r() * PIECES.length)];
  const word = () => Array.from({ length: 1 + Math.floor(r() * 6) }, pick).join("");
  const loaders = ["LoraLoader", "CheckpointLoaderSimple", "VAELoader", "UNETLoader", "DualCLIPLoader", "Custom"];
  let models = 0;
  for (let i = 0; i < 1000; i++) {
    const nodes = Array.from({ length: 1 + Math.floor(r() * 5) }, (_, k) => ({
      id: k,
      type: loaders[Math.floor(r() * loaders.length)],
      mode: [0, 2, 4][Math.floor(r() * 3)],
      widgets_values: [word() + (r() < 0.5 ? ".safetensors" : ""), word()],
      properties: {
        models: [{ name: word(), directory: r() < 0.5 ? word() : "loras", url: r() < 0.5 ? "https://h.co/" + word() : word() }],
      },
    }));
    const res = modelDeps(readWorkflow({ nodes, links: [] }, `fuzz${i}.json`));
    for (const m of res.models) {
      models++;
      const root = "/srv/comfy/models";
      const folderDir = posix.resolve(root, m.folder ?? "unsorted");
      assert.ok(folderDir.startsWith(root + "/"), `folder escapes: ${JSON.stringify(m.folder)}`);
      const full = posix.resolve(folderDir, m.name);
      assert.ok(full.startsWith(folderDir + "/"), `name escapes: ${JSON.stringify(m.name)}`);
      assert.ok(!/[\0\n;`$|&<>'"\\]/.test(m.name + (m.folder ?? "")), `metacharacter kept: ${JSON.stringify(m.name)}`);
      if (m.url) assert.ok(/^https:\/\/[a-z0-9.-]+\//.test(m.url) && !/[\s\0]/.test(m.url), `url ${m.url}`);
    }
  }
  assert.ok(models > 100, "the generator also produces some acceptable names");
});
