// Models of custom loaders: their folders (the pack table, a host's /object_info, the flowfile), a
// name without a URL looked up in Hugging Face repositories, and repositories nodes snapshot at run
// time, pure and through workflow:deps / workflow:lock against a local stand-in for the Hub.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readWorkflow } from "../../lib/comfy/workflow-read.ts";
import { modelDeps, type ModelDep } from "../../lib/comfy/model-deps.ts";
import {
  CUSTOM_LOADER_INPUTS,
  DEFAULT_MODEL_REPOS,
  fnmatch,
  folderListingsFromObjectInfo,
  inferLoaderInputs,
  matchModelName,
  snapshotFiles,
} from "../../lib/comfy/custom-loaders.ts";
import { parseObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { LOCK_VERSION, type LockFile } from "../../lib/comfy/lockfile.ts";
import { validateFlow } from "../../lib/flowfile/load.ts";
import { lookupSources, type SourceWork } from "../../plugins/models/resolve.ts";
import { planCleanup } from "../../plugins/models/plan.ts";
import { hfClient } from "../../plugins/shared/hf.ts";
import { flow, REPO } from "../support/cli.ts";
import { seeded, sha256, startFakeHub, type FakeHub } from "../support/fake-hub.ts";
import { dataPath, needs } from "./comfy/shared-data.ts";

const INFINITETALK = "infinitetalk/wanvideo_infinitetalk_single_example.json";
const wf = (nodes: unknown[]) => readWorkflow({ nodes, links: [] }, "t.json");
const byName = (models: ModelDep[]) => Object.fromEntries(models.map((m) => [m.name, m]));

const VAE = seeded("vae", 3000);
const VAE_OTHER = seeded("vae-other", 2000);
const W2V_BIN = seeded("w2v", 4000);
const W2V_PT = seeded("w2v-pt", 1000);
const W2V_CONFIG = Buffer.from('{"model_type":"wav2vec2"}');

let hub: FakeHub;
before(async () => {
  hub = await startFakeHub({
    hf: {
      "Comfy-Org/first": { files: { "split_files/vae/other.safetensors": VAE_OTHER, "split_files/vae/dup.safetensors": VAE_OTHER } },
      "Kijai/second": {
        files: { "Wan2_1_VAE_fp32.safetensors": VAE, "dup.safetensors": VAE },
        treeExtra: [
          { path: "../evil.safetensors", size: 5, lfs: { oid: "b".repeat(64), size: 5 } },
          { path: "/abs/evil.safetensors", size: 5 },
        ],
      },
      "TencentGameMate/chinese-wav2vec2-base": {
        files: { "config.json": W2V_CONFIG, "pytorch_model.bin": W2V_BIN, "chinese-wav2vec2-base-fairseq-ckpt.pt": W2V_PT },
        plain: ["config.json"],
        treeExtra: [{ path: "sub/../../../escape.bin", size: 1 }],
      },
    },
    // ComfyUI-Manager's four files, empty: what workflow:deps / workflow:lock read first
    files: {
      "extension-node-map.json": Buffer.from("{}"),
      "custom-node-list.json": Buffer.from('{"custom_nodes":[]}'),
      "model-list.json": Buffer.from('{"models":[]}'),
      "github-stats.json": Buffer.from("{}"),
    },
    treePageSize: 2,
  });
});
after(async () => {
  await hub?.close();
});

const client = () => hfClient({ hubUrl: hub.url, allowHosts: [new URL(hub.url).host] });
const trees = (repo: string) => hub.stats.seen.filter((s) => s.startsWith(`GET /api/models/${repo}/tree/`)).length;

test(
  "InfiniteTalk: every model gets its folder from the pack table; the wav2vec repository is a snapshot",
  { skip: needs(INFINITETALK) },
  () => {
    const r = modelDeps(readWorkflow(JSON.parse(readFileSync(dataPath(INFINITETALK)!, "utf8")), "infinitetalk.json"));
    const folders = Object.fromEntries(r.models.map((m) => [m.name, m.folder]));
    assert.deepEqual(folders, {
      "clip_vision_h.safetensors": "clip_vision",
      "infinite_talk.safetensors": "diffusion_models",
      "Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors": "diffusion_models",
      "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors": "loras",
      "umt5-xxl-enc-bf16.safetensors": "text_encoders",
      "Wan2_1_VAE_fp32.safetensors": "vae",
    });
    assert.deepEqual(r.snapshots, [
      {
        repo: "TencentGameMate/chinese-wav2vec2-base",
        folder: "transformers/TencentGameMate/chinese-wav2vec2-base",
        ignore: ["*.pt"],
        optional: false,
        usedBy: [{ key: "137", type: "DownloadAndLoadWav2VecModel", input: "model" }],
      },
    ]);
    assert.deepEqual(r.refused, []);
  },
);

test("the pack table: API inputs by name, multi-LoRA widgets by place; a snapshot value outside the node's options is refused", () => {
  const api = readWorkflow(
    {
      "1": { class_type: "WanVideoModelLoader", inputs: { model: "w.gguf", base_precision: "bf16" } },
      "2": { class_type: "ADE_AnimateDiffLoRALoader", inputs: { name: "pan.ckpt", strength: 1 } },
      "3": { class_type: "DownloadAndLoadFlorence2Model", inputs: { model: "microsoft/Florence-2-large", precision: "fp16" } },
    },
    "api.json",
  );
  const r = modelDeps(api);
  assert.equal(byName(r.models)["w.gguf"]?.folder, "diffusion_models");
  assert.equal(byName(r.models)["pan.ckpt"]?.folder, "animatediff_motion_lora");
  assert.deepEqual(
    r.snapshots.map((s) => [s.repo, s.folder, s.ignore]),
    [["microsoft/Florence-2-large", "LLM/Florence-2-large", []]],
  );
  const multi = modelDeps(
    wf([
      {
        id: 1,
        type: "WanVideoLoraSelectMulti",
        widgets_values: ["a.safetensors", 1, "none", 1, "c.safetensors", 0.5, "none", 1, "none", 1],
      },
      { id: 2, type: "DownloadAndLoadWav2VecModel", widgets_values: ["evil/repo", "fp16", "main_device"] },
    ]),
  );
  assert.deepEqual(
    multi.models.map((m) => `${m.folder}/${m.name}`),
    ["loras/a.safetensors", "loras/c.safetensors"],
  );
  assert.deepEqual(multi.snapshots, []);
  assert.equal(multi.refused.length, 1);
  assert.match(multi.refused[0]!.reason, /DownloadAndLoadWav2VecModel\.model: not one of the repositories the node offers/);
  // every table entry names a folder a models root can hold
  for (const [cls, inputs] of Object.entries(CUSTOM_LOADER_INPUTS)) for (const l of inputs) assert.match(l.folder, /^[a-z_]+$/, cls);
});

/** A host's /object_info: core loaders (their combos are the folder listings) and custom ones. */
const OBJECT_INFO = parseObjectInfo({
  UNETLoader: { input: { required: { unet_name: [["wan.safetensors", "talk.safetensors"]], weight_dtype: [["default"]] } } },
  LoraLoaderModelOnly: { input: { required: { model: ["MODEL"], lora_name: [["l.safetensors"]] } } },
  CheckpointLoaderSimple: { input: { required: { ckpt_name: [["same.safetensors"]] } } },
  CLIPVisionLoader: { input: { required: { clip_name: [["same.safetensors"]] } } },
  // a seed before it: its control_after_generate value takes a widget place too
  TalkLoader: {
    input: {
      required: {
        seed: ["INT", { default: 0 }],
        model: [["none", "talk.safetensors", "wan.safetensors"]],
        other: [["talk.safetensors"]],
        twin: [["same.safetensors"]],
      },
    },
    input_order: { required: ["seed", "model", "other", "twin"] },
  },
  // the new combo form
  LoraPick: { input: { required: { pick: ["COMBO", { options: ["l.safetensors"] }] } } },
  WanVideoVAELoader: { input: { required: { model_name: [["taew.safetensors"]] } } },
});

test("object_info: a combo that is exactly one folder's listing reads that folder; a partial or twice-listed one stays undecided", () => {
  const listings = folderListingsFromObjectInfo(OBJECT_INFO);
  assert.deepEqual(listings, {
    checkpoints: ["same.safetensors"],
    loras: ["l.safetensors"],
    diffusion_models: ["wan.safetensors", "talk.safetensors"],
    clip_vision: ["same.safetensors"],
  });
  const inferred = inferLoaderInputs(OBJECT_INFO, { ...listings, vae_approx: ["taew.safetensors"], upscale_models: [] });
  assert.deepEqual(inferred, {
    TalkLoader: [{ input: "model", folder: "diffusion_models", widgetIndex: 2 }],
    LoraPick: [{ input: "pick", folder: "loras", widgetIndex: 0 }],
    WanVideoVAELoader: [{ input: "model_name", folder: "vae_approx", widgetIndex: 0 }],
  });
  const r = modelDeps(
    wf([{ id: 1, type: "TalkLoader", widgets_values: [7, "fixed", "talk.safetensors", "talk.safetensors", "same.safetensors"] }]),
    {
      loaderInputs: inferred,
    },
  );
  const got = Object.fromEntries(r.models.map((m) => [m.name, [m.folder, m.usedBy[0]?.input]]));
  assert.deepEqual(got, { "talk.safetensors": ["diffusion_models", "model"], "same.safetensors": [undefined, undefined] });
});

test("folder order: the flowfile's over object_info's over the pack table's", () => {
  const w = wf([
    { id: 1, type: "WanVideoVAELoader", widgets_values: ["taew.safetensors", "bf16"] },
    { id: 2, type: "MultiTalkModelLoader", widgets_values: ["infinite_talk.safetensors", "fp16"] },
  ]);
  const table = byName(modelDeps(w).models);
  assert.equal(table["taew.safetensors"]?.folder, "vae");
  const loaderInputs = inferLoaderInputs(OBJECT_INFO, { vae_approx: ["taew.safetensors"] });
  const host = byName(modelDeps(w, { loaderInputs }).models);
  assert.equal(host["taew.safetensors"]?.folder, "vae_approx");
  const userFolders = { "taew.safetensors": "vae/mine", "infinite_talk.safetensors": "diffusion_models/talk" };
  const user = byName(modelDeps(w, { loaderInputs, userFolders }).models);
  assert.equal(user["taew.safetensors"]?.folder, "vae/mine");
  assert.equal(user["infinite_talk.safetensors"]?.folder, "diffusion_models/talk");
  // a hostile folder from the flowfile is refused like any other
  const bad = modelDeps(w, { userFolders: { "taew.safetensors": "../../etc" } });
  assert.equal(
    bad.models.find((m) => m.name === "taew.safetensors"),
    undefined,
  );
  assert.match(bad.refused[0]!.reason, /folder: path segment/);
});

test("flowfile: models entries are a URL or { url, folder }; folders go to modelFolders, URLs stay in models; modelRepos checked", () => {
  const url = "https://huggingface.co/o/r/resolve/main/t.safetensors";
  const f = validateFlow(
    {
      models: { "a.safetensors": url, "t.safetensors": { url, folder: "diffusion_models" }, "f.safetensors": { folder: "LLM/x" } },
      settings: { modelRepos: ["Kijai/WanVideo_comfy"] },
    },
    "f",
  );
  assert.deepEqual(f.models, { "a.safetensors": url, "t.safetensors": url });
  assert.deepEqual(f.modelFolders, { "t.safetensors": "diffusion_models", "f.safetensors": "LLM/x" });
  assert.deepEqual(f.settings.modelRepos, ["Kijai/WanVideo_comfy"]);
  assert.equal(validateFlow({}, "f").settings.modelRepos, undefined);
  assert.throws(
    () => validateFlow({ models: { "x.safetensors": { folder: "../up" } } }, "f"),
    /models\.x\.safetensors\.folder: expected a models folder/,
  );
  assert.throws(() => validateFlow({ models: { "x.safetensors": {} } }, "f"), /give url, folder or both/);
  assert.throws(() => validateFlow({ models: { "x.safetensors": { path: "y" } } }, "f"), /unknown key "path"/);
  assert.throws(
    () => validateFlow({ settings: { modelRepos: ["not-a-repo"] } }, "f"),
    /settings\.modelRepos\.0: expected a Hugging Face repository/,
  );
});

test("name matching: the path naming the folder wins, else the first repository; different files under one name are said", () => {
  const listings = [
    { repo: "A/one", files: [{ path: "split_files/diffusion_models/x.safetensors", size: 1, sha256: "1".repeat(64) }] },
    {
      repo: "B/two",
      files: [
        { path: "vae/x.safetensors", size: 2, sha256: "2".repeat(64) },
        { path: "y.safetensors", size: 3, sha256: "3".repeat(64) },
        { path: "../x.safetensors", size: 9 },
      ],
    },
    { repo: "C/three", files: [{ path: "mirror/y.safetensors", size: 3, sha256: "3".repeat(64) }] },
  ];
  const vae = matchModelName("x.safetensors", "vae", listings);
  assert.ok(vae.found);
  assert.equal(vae.match.url, "https://huggingface.co/B/two/resolve/main/vae/x.safetensors");
  assert.match(vae.note ?? "", /2 different files carry this name .*took B\/two\/vae\/x\.safetensors \(its path names the folder vae\)/);
  const loose = matchModelName("sub/x.safetensors", undefined, listings);
  assert.ok(loose.found);
  assert.equal(loose.match.repo, "A/one");
  assert.equal(loose.match.folderFromPath, "diffusion_models");
  assert.match(loose.note ?? "", /first in settings\.modelRepos order/);
  // the same bytes in two repositories: one file, nothing to say
  const y = matchModelName("y.safetensors", undefined, listings);
  assert.ok(y.found && y.note === undefined && y.match.repo === "B/two");
  assert.deepEqual(matchModelName("z.safetensors", "vae", listings), { found: false });
  assert.match(vae.refused?.[0] ?? "", /^B\/two: listed path "\.\.\/x\.safetensors" refused: path segment/);
  assert.ok(fnmatch("*.pt", "a/b.pt") && !fnmatch("*.pt", "b.pth"));
  // the default list: Comfy-Org's repositories first, owner/name each
  assert.ok(DEFAULT_MODEL_REPOS.every((r) => /^[\w.-]+\/[\w.-]+$/.test(r)));
  assert.equal(DEFAULT_MODEL_REPOS.at(-1), "Kijai/WanVideo_comfy");
});

test("lookup: found in the second repository, a snapshot expanded, hostile listed paths refused, each repository listed once", async () => {
  hub.resetStats();
  const work = (): SourceWork[] => [
    {
      workflow: "a.json",
      models: [
        { name: "Wan2_1_VAE_fp32.safetensors", folder: "vae", optional: false, usedBy: [], found: ["loader-widget"] },
        { name: "evil.safetensors", folder: "vae", optional: false, usedBy: [], found: ["loader-widget"] },
      ],
      snapshots: [
        {
          repo: "TencentGameMate/chinese-wav2vec2-base",
          folder: "transformers/TencentGameMate/chinese-wav2vec2-base",
          ignore: ["*.pt"],
          optional: false,
          usedBy: [{ key: "2", type: "DownloadAndLoadWav2VecModel", input: "model" }],
        },
      ],
    },
    {
      workflow: "b.json",
      models: [{ name: "Wan2_1_VAE_fp32.safetensors", folder: "vae", optional: true, usedBy: [], found: [] }],
      snapshots: [],
    },
  ];
  const w = work();
  const repos = ["Comfy-Org/first", "Kijai/second"];
  const r = await lookupSources(w, { client: client(), repos, offline: false });
  const vae = w[0]!.models[0]!;
  const url = "https://huggingface.co/Kijai/second/resolve/main/Wan2_1_VAE_fp32.safetensors";
  assert.equal(vae.url, url);
  assert.equal(vae.urlFrom, "repo-lookup");
  assert.deepEqual(vae.source, { kind: "huggingface", repo: "Kijai/second", revision: "main", path: "Wan2_1_VAE_fp32.safetensors" });
  assert.deepEqual(r.facts[url], { size: VAE.length, sha256: sha256(VAE) });
  assert.equal(w[1]!.models[0]!.url, url);
  // "../evil.safetensors" and "/abs/evil.safetensors" are in Kijai/second's listing: never matched
  assert.equal(w[0]!.models[1]!.url, undefined);
  assert.deepEqual(r.unresolved, ["vae/evil.safetensors: not in the repositories of settings.modelRepos"]);
  const snap = w[0]!.models.slice(2);
  const base = "https://huggingface.co/TencentGameMate/chinese-wav2vec2-base/resolve/main";
  assert.deepEqual(
    snap.map((m) => [m.folder, m.name, m.url, m.urlFrom, m.optional]),
    [
      ["transformers/TencentGameMate/chinese-wav2vec2-base", "config.json", `${base}/config.json`, "repo-snapshot", false],
      ["transformers/TencentGameMate/chinese-wav2vec2-base", "pytorch_model.bin", `${base}/pytorch_model.bin`, "repo-snapshot", false],
    ],
  );
  assert.deepEqual(r.facts[`${base}/pytorch_model.bin`], { size: W2V_BIN.length, sha256: sha256(W2V_BIN) });
  assert.deepEqual(r.facts[`${base}/config.json`], { size: W2V_CONFIG.length });
  assert.ok(
    r.problems.some((p) => /sub\/\.\.\/\.\.\/\.\.\/escape\.bin.* refused: path segment/.test(p)),
    r.problems.join("\n"),
  );
  const abs = /^Kijai\/second: listed path "\/abs\/evil\.safetensors" refused: absolute path/;
  assert.ok(
    r.problems.some((p) => abs.test(p)),
    r.problems.join("\n"),
  );
  // pages of 2 entries: several requests per listing, yet one listing per repository, also when asked again
  const before = ["Comfy-Org/first", "Kijai/second", "TencentGameMate/chinese-wav2vec2-base"].map(trees);
  assert.ok(
    before.every((n) => n >= 2),
    String(before),
  );
  await lookupSources(work(), { client: client(), repos, offline: false });
  assert.deepEqual(["Comfy-Org/first", "Kijai/second", "TencentGameMate/chinese-wav2vec2-base"].map(trees), before);
  assert.ok(!hub.stats.seen.some((s) => s.includes("paths-info")));
});

test("lookup: the lock's entries come first (nothing listed); offline lists nothing and names what stays open", async () => {
  hub.resetStats();
  const lockUrl = "https://huggingface.co/Locked/repo/resolve/main/v.safetensors";
  const lock: LockFile = {
    version: LOCK_VERSION,
    workflows: {
      "a.json": {
        contentHash: "x",
        packs: [],
        unresolved: [],
        models: [
          { folder: "vae", name: "v.safetensors", url: lockUrl, optional: false },
          {
            folder: "LLM/Florence-2-base",
            name: "model.safetensors",
            url: "https://huggingface.co/microsoft/Florence-2-base/resolve/main/model.safetensors",
            optional: false,
          },
        ],
      },
    },
  };
  const snapshot = { repo: "microsoft/Florence-2-base", folder: "LLM/Florence-2-base", ignore: [], optional: false, usedBy: [] };
  const w: SourceWork[] = [
    {
      workflow: "a.json",
      models: [{ name: "v.safetensors", folder: "vae", optional: false, usedBy: [], found: [] }],
      snapshots: [snapshot],
    },
  ];
  const r = await lookupSources(w, { client: client(), repos: ["Kijai/second"], lock, offline: false });
  assert.equal(w[0]!.models[0]!.url, lockUrl);
  assert.equal(w[0]!.models[0]!.urlFrom, "lock");
  assert.deepEqual(
    w[0]!.models.slice(1).map((m) => `${m.folder}/${m.name} ${m.urlFrom}`),
    ["LLM/Florence-2-base/model.safetensors lock"],
  );
  assert.deepEqual(r.unresolved, []);
  assert.deepEqual(hub.stats.seen, [], "nothing asked of the Hub");
  const off: SourceWork[] = [
    { workflow: "b.json", models: [{ name: "q.safetensors", optional: false, usedBy: [], found: [] }], snapshots: [snapshot] },
  ];
  const o = await lookupSources(off, { client: client(), repos: ["Kijai/second"], offline: true });
  assert.deepEqual(o.unresolved, [
    "?/q.safetensors: not looked up by name (offline)",
    "microsoft/Florence-2-base (for LLM/Florence-2-base): not listed (offline)",
  ]);
  assert.deepEqual(hub.stats.seen, []);
});

test("snapshot files: ignore patterns as the node's, a hostile snapshot folder refused, and cleanup keeps the folder whole", () => {
  const snap = { repo: "o/r", folder: "transformers/o/r", ignore: ["*.bin", "*.h5"], optional: false, usedBy: [] };
  const got = snapshotFiles(snap, [
    { path: "config.json", size: 1 },
    { path: "pytorch_model.bin", size: 2 },
    { path: "tf/model.h5", size: 3 },
    { path: "model.safetensors", size: 4, sha256: "4".repeat(64) },
    { path: "/etc/passwd", size: 5 },
  ]);
  assert.deepEqual(
    got.files.map((f) => f.name),
    ["config.json", "model.safetensors"],
  );
  assert.match(got.refused.join("\n"), /"\/etc\/passwd" refused: absolute path/);
  assert.match(snapshotFiles({ ...snap, folder: "../x" }, [{ path: "a", size: 1 }]).refused[0] ?? "", /folder: path segment/);
  const f = (path: string) => ({ path, size: 10, ino: path.length, links: 1 });
  const plan = planCleanup([f("transformers/o/r/pytorch_model.bin"), f("transformers/o/old.bin"), f("loras/x.safetensors")], [], false, [
    "transformers/o/r",
  ]);
  assert.deepEqual(
    plan.remove.map((x) => x.path),
    ["transformers/o/old.bin", "loras/x.safetensors"],
  );
});

/** A project using this checkout's plugins, reference data and Hugging Face from the fake hub. */
function project(workflows: Record<string, unknown>, flowExtra: string) {
  const dir = mkdtempSync(join(tmpdir(), "flow-loaders-"));
  const host = new URL(hub.url).host;
  writeFileSync(
    join(dir, "flowfile.ts"),
    `import { defineFlow } from ${JSON.stringify(REPO + "lib/index.ts")};
import { workflow, models } from ${JSON.stringify(REPO + "plugins/index.ts")};
export default defineFlow({ plugins: [workflow(), models()], settings: { allowHosts: [${JSON.stringify(host)}], ${flowExtra} } });
`,
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "workflow_templates"));
  for (const [n, w] of Object.entries(workflows)) writeFileSync(join(dir, "workflow_templates", n), JSON.stringify(w));
  const env = {
    FLOW_COMFY_DATA_URL: `${hub.url}/files/`,
    FLOW_HF_URL: hub.url,
    XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), "flow-loaders-cache-")),
  };
  return { dir, env };
}

const TALK = {
  nodes: [
    { id: 1, type: "WanVideoVAELoader", widgets_values: ["Wan2_1_VAE_fp32.safetensors", "bf16"] },
    { id: 2, type: "DownloadAndLoadWav2VecModel", widgets_values: ["TencentGameMate/chinese-wav2vec2-base", "fp16", "main_device"] },
    { id: 3, type: "LoadWanVideoT5TextEncoder", widgets_values: ["nowhere.safetensors", "bf16", "offload_device", "disabled"] },
  ],
  links: [],
};

test("workflow:lock records a model found by name (size, sha256) and a snapshot's files; --offline names what stays open", async () => {
  hub.resetStats();
  const { dir, env } = project(
    { "talk.json": TALK, "vae.json": { nodes: [TALK.nodes[0]], links: [] } },
    'modelRepos: ["Comfy-Org/first", "Kijai/second"]',
  );
  const r = await flow(["run", "workflow:lock"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /found by name: vae\/Wan2_1_VAE_fp32\.safetensors: Kijai\/second\/Wan2_1_VAE_fp32\.safetensors/);
  assert.match(r.stdout, /no source: text_encoders\/nowhere\.safetensors: not in the repositories of settings\.modelRepos\n/);
  const lock = JSON.parse(readFileSync(join(dir, "flow.lock.json"), "utf8")) as LockFile;
  const talk = lock.workflows["workflow_templates/talk.json"]!;
  const folder = "transformers/TencentGameMate/chinese-wav2vec2-base";
  const w2v = "https://huggingface.co/TencentGameMate/chinese-wav2vec2-base/resolve/main";
  assert.deepEqual(talk.models, [
    {
      folder: "vae",
      name: "Wan2_1_VAE_fp32.safetensors",
      url: "https://huggingface.co/Kijai/second/resolve/main/Wan2_1_VAE_fp32.safetensors",
      size: VAE.length,
      sha256: sha256(VAE),
      optional: false,
    },
    { folder, name: "config.json", url: `${w2v}/config.json`, size: W2V_CONFIG.length, optional: false },
    { folder, name: "pytorch_model.bin", url: `${w2v}/pytorch_model.bin`, size: W2V_BIN.length, sha256: sha256(W2V_BIN), optional: false },
  ]);
  assert.ok(talk.unresolved.includes("model text_encoders/nowhere.safetensors: no source URL"), talk.unresolved.join("\n"));
  assert.equal(lock.workflows["workflow_templates/vae.json"]!.models[0]!.sha256, sha256(VAE));
  // two workflows need Kijai/second: listed once in the run (its 4 entries in pages of 2)
  assert.equal(trees("Kijai/second"), 2, hub.stats.seen.join("\n"));
  assert.ok(!hub.stats.seen.some((s) => s.includes("paths-info")), "the listing's facts are not asked again");

  const off = await flow(["run", "workflow:lock", "--offline"], { cwd: dir, env });
  assert.equal(off.code, 0, off.stdout + off.stderr);
  assert.match(off.stdout, /no source: vae\/Wan2_1_VAE_fp32\.safetensors: not looked up by name \(offline\)/);
  assert.match(
    off.stdout,
    /no source: TencentGameMate\/chinese-wav2vec2-base \(for transformers\/TencentGameMate\/chinese-wav2vec2-base\): not listed/,
  );
  const offLock = JSON.parse(readFileSync(join(dir, "flow.lock.json"), "utf8")) as LockFile;
  const open = offLock.workflows["workflow_templates/talk.json"]!.unresolved;
  assert.ok(open.includes(`repository TencentGameMate/chinese-wav2vec2-base (for ${folder}): its files not listed`), open.join("\n"));
});

test("workflow:deps --object-info: custom loaders' folders read off it; the flowfile's folder wins", async () => {
  const ui = {
    nodes: [
      { id: 1, type: "TalkLoader", widgets_values: [1, "fixed", "talk.safetensors", "x", "same.safetensors"] },
      { id: 2, type: "LoraPick", widgets_values: ["l.safetensors"] },
    ],
    links: [],
  };
  const { dir, env } = project({ "t.json": ui }, "");
  writeFileSync(join(dir, "oi.json"), JSON.stringify(OBJECT_INFO));
  const folders = async (extra: string[]) => {
    const r = await flow(["run", "workflow:deps", "--json", ...extra], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const data = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((l) => l.type === "data" && l.data.deps);
    return Object.fromEntries(data.data.deps.workflows[0].models.map((m: { name: string; folder: string | null }) => [m.name, m.folder]));
  };
  assert.deepEqual(await folders([]), { "talk.safetensors": null, "same.safetensors": null, "l.safetensors": null });
  const inferred = { "talk.safetensors": "diffusion_models", "same.safetensors": null, "l.safetensors": "loras" };
  assert.deepEqual(await folders(["--object-info", join(dir, "oi.json")]), inferred);
  writeFileSync(
    join(dir, "flowfile.ts"),
    readFileSync(join(dir, "flowfile.ts"), "utf8").replace(
      "settings:",
      'models: { "talk.safetensors": { folder: "diffusion_models/talk" } }, settings:',
    ),
  );
  assert.deepEqual(await folders(["--object-info", join(dir, "oi.json")]), { ...inferred, "talk.safetensors": "diffusion_models/talk" });
});
