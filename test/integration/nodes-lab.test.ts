// nodes:* on two lab hosts (lab4, lab5) running the real comfyui-api with the stand-in ComfyUI,
// which imports each pack's Python at start-up and lists its real node definitions. The packs
// come from a git server on this machine (git's own http-backend: the real InfiniteTalk fork of
// WanVideoWrapper, and packs generated from ComfyUI-Manager's extension-node-map), the
// requirements from a PEP 503 index of stub wheels, a registry pack from a registry stand-in.
// The hosts reach them through SSH remote forwards: git and the registry on the host's loopback
// (`url.<git>.insteadOf https://github.com/` set for the lab only), the index on the host's docker0
// address, where the comfyui container's pip reaches it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { flow, flowfileSource, REPO, type CliResult } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, sshTarget, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";
import { startFakeGit, type FakeGit } from "../support/fake-git.ts";
import { startFakePypi, type FakePypi } from "../support/fake-pypi.ts";
import { startFakeRegistry, type FakeRegistry } from "../support/fake-registry.ts";
import { infiniteTalkPackSource, infiniteTalkRequirements, INFINITETALK_BUNDLE, makePack, packsForClasses } from "../support/fake-packs.ts";
import { REAL_DEFINITIONS } from "../support/pack-definitions.ts";
import { dataPath } from "../unit/comfy/shared-data.ts";
import { seeded, sha256, startFakeHub, type FakeHub } from "../support/fake-hub.ts";
import { checkOpenApi, inputFromSchema, outputsOf, workflowEndpoints } from "../../lib/comfy/comfyui-api-openapi.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import { readWorkflow } from "../../lib/comfy/workflow-read.ts";

const HOSTS = ["lab4", "lab5"] as const;
const WORKFLOW = dataPath("infinitetalk/wanvideo_infinitetalk_single_example.json");
const MANAGER = dataPath("comfyui-manager/extension-node-map.json");
const VENDOR = resolve(REPO, "../shared/vendor/comfyui-api");
const reason =
  (await labUnavailableReason()) ??
  (!WORKFLOW || !MANAGER || !INFINITETALK_BUNDLE
    ? "the InfiniteTalk data, the bundle and ComfyUI-Manager's maps are not in ../shared"
    : null);
const STARTED = "ComfyUI API 1.18.0 started.";
const WAN = "kijai/ComfyUI-WanVideoWrapper";
const KB = 1024;
// InfiniteTalk's model files as the Hugging Face repositories flow looks names up in hold them
// (small stand-ins; none carries a URL in the workflow but clip_vision_h, which the model list knows)
const MODELS = {
  "Kijai/WanVideo_comfy": {
    "Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors": seeded("wan-i2v", 384 * KB),
    "InfiniteTalk/infinite_talk.safetensors": seeded("infinite-talk", 256 * KB),
    "umt5-xxl-enc-bf16.safetensors": seeded("umt5", 256 * KB),
    "Wan2_1_VAE_fp32.safetensors": seeded("vae", 128 * KB),
    "Lightx2v/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors": seeded("lightx2v", 128 * KB),
  },
  "Comfy-Org/Wan_2.1_ComfyUI_repackaged": { "split_files/clip_vision/clip_vision_h.safetensors": seeded("clip-vision", 128 * KB) },
  // what DownloadAndLoadWav2VecModel fetches at run time; it skips *.pt
  "TencentGameMate/chinese-wav2vec2-base": {
    "config.json": Buffer.from('{"model_type":"wav2vec2"}'),
    "preprocessor_config.json": Buffer.from('{"sampling_rate":16000}'),
    "pytorch_model.bin": seeded("wav2vec", 256 * KB),
    "chinese-wav2vec2-base-fairseq-ckpt.pt": seeded("fairseq", 64 * KB),
  },
} as const;

interface Ev {
  type: string;
  host?: string;
  data?: any;
}
const events = (stdout: string): Ev[] =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Ev);

function recapOf(stdout: string, host: string) {
  const m = new RegExp(`^${host}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+([\\d.]+)s`, "m").exec(stdout);
  assert.ok(m, `no recap line for ${host} in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, skipped: +m[3]!, failed: +m[4]!, seconds: +m[5]! };
}

/** A static file server for ComfyUI-Manager's maps (FLOW_COMFY_DATA_URL). */
async function serveDir(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "/").split("?")[0]!.slice(1));
    const file = join(dir, name);
    if (!name || name.includes("..") || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json" }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, server };
}

/** GitHub's "commit of a ref" answered from the fake git server: the default branch's head. */
async function fakeGithub(git: FakeGit): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const m = /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/?]+)/.exec(req.url ?? "");
    const commits = m
      ? (() => {
          try {
            return git.commits(`${m[1]}/${m[2]}`);
          } catch {
            return [];
          }
        })()
      : [];
    if (!commits.length) return void res.writeHead(404, { "content-type": "application/json" }).end('{"message":"Not Found"}');
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sha: commits.at(-1) }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe("custom node packs on lab hosts", { skip: reason ?? false, timeout: 20 * 60_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  let git: FakeGit;
  let pypi: FakePypi;
  let registry: FakeRegistry;
  let refdata: { url: string; server: Server };
  let github: { url: string; server: Server };
  let hub: FakeHub;
  let wanCommit: string;
  const tunnels: ChildProcess[] = [];
  const extra: Record<string, { commits: string[] }> = {};
  const timings: Record<string, number> = {};

  const sh = async (host: string, script: string, allowFail = false) => {
    const r = await run("ssh", sshArgv(inv.hosts[host]!.port, "ubuntu", "sh -s"), {
      input: `set -eu\n${script}\n`,
      allowFail: true,
      timeoutMs: 120_000,
    });
    if (!allowFail) assert.equal(r.code, 0, `${host}: ${script}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const starts = async (host: string) =>
    (await sh(host, "sudo docker logs comfyui 2>&1")).split("\n").filter((l) => l.includes(STARTED)).length;
  const env = () => ({
    FLOW_COMFY_DATA_URL: refdata.url,
    FLOW_REGISTRY_URL: registry.url,
    FLOW_GITHUB_API_URL: github.url,
    FLOW_HF_URL: hub.url,
    XDG_CACHE_HOME: join(dir, ".cache"),
  });
  const runFlow = (args: string[]): Promise<CliResult> => flow(["run", ...args], { cwd: dir, env: env() });
  const headOf = async (host: string, pack: string) => (await sh(host, `git -C ~/comfyui/custom_nodes/${pack} rev-parse HEAD`)).trim();
  const objectInfo = async (host: string): Promise<Record<string, any>> =>
    JSON.parse(await sh(host, "curl -fsS http://127.0.0.1:8188/object_info"));

  before(async () => {
    await ensureLab({ hosts: 5, docker: true });
    for (const h of HOSTS) inv = await resetHost(h);
    for (const h of HOSTS) await ensureStandinImage(inv, h);

    // the packs: the real WanVideoWrapper fork, generated packs for the other classes the workflow uses, and a few of our own
    const wan = await infiniteTalkPackSource();
    wanCommit = wan.commit;
    const classes = ["ImageResizeKJv2", "VHS_VideoCombine", "AudioCrop", "AudioSeparation"];
    const fromMap = await packsForClasses(MANAGER!, classes, { commits: 2 });
    const own = join(mkdtempSync(join(tmpdir(), "flow-nodes-lab-packs-")), "lab");
    const mine: Record<string, string> = {};
    for (const [name, spec] of Object.entries({
      okpack: { classes: ["LabOkNode"], requirements: [] as string[] },
      pipfail: { classes: ["LabPipFailNode"], requirements: ["lab-missing-dep>=1"] },
      importfail: { classes: ["LabImportFailNode"], requirements: ["lab-broken-dep"], importRequirements: true },
    })) {
      const p = await makePack(join(own, name), { name, ...spec, commits: 2 });
      mine[`lab/${name}`] = p.dir;
      extra[name] = { commits: p.commits };
    }
    git = await startFakeGit({ repos: { ...fromMap.repos, [WAN]: wan.dir, ...mine } });
    // VideoHelperSuite brings OpenCV, which WanVideoWrapper's InfiniteTalk code imports without declaring it
    for (const url of fromMap.byClass.VHS_VideoCombine ?? []) {
      await git.addCommit(new URL(url).pathname.slice(1).replace(/\.git$/, ""), {
        files: { "requirements.txt": "opencv-python-headless\n" },
      });
    }
    const reqs = infiniteTalkRequirements();
    pypi = await startFakePypi({
      packages: {
        ...reqs.packages,
        // installs fine, but its module is not the one the pack imports: the pack fails to load
        "lab-broken-dep": [{ version: "1.0.0", importName: "lab_not_what_the_pack_imports" }],
        "opencv-python-headless": [{ version: "4.10.0.84" }],
      },
    });
    registry = await startFakeRegistry({
      nodes: { "lab-registry-pack": { versions: ["1.0.0", "1.1.0"], classes: ["LabRegistryNode"], name: "lab-registry-pack" } },
    });
    refdata = await serveDir(join(MANAGER!, ".."));
    hub = await startFakeHub({
      hf: Object.fromEntries(Object.entries(MODELS).map(([repo, files]) => [repo, { files: { ...files } as Record<string, Buffer> }])),
    });
    github = await fakeGithub(git);

    for (const h of HOSTS) {
      const lab = inv.hosts[h]!;
      const fwd = [
        `${git.port}:127.0.0.1:${git.port}`,
        `${registry.port}:127.0.0.1:${registry.port}`,
        `0.0.0.0:${pypi.port}:127.0.0.1:${pypi.port}`,
        ...[hub.url, hub.cdnUrl].map((u) => `${new URL(u).port}:127.0.0.1:${new URL(u).port}`),
      ];
      const t = spawn("ssh", ["-N", "-o", "ExitOnForwardFailure=yes", ...fwd.flatMap((f) => ["-R", f]), ...sshTarget(lab.port, lab.user)], {
        stdio: "ignore",
      });
      tunnels.push(t);
      // for the lab only: github.com is the git server on this machine
      await sh(h, `git config --global url.${git.url}/.insteadOf https://github.com/`);
      for (let i = 0; i < 100; i++) {
        const code = await sh(
          h,
          `curl -s -o /dev/null -w '%{http_code}' ${registry.url}/nodes/nope; echo; ` +
            `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${pypi.port}/simple/`,
          true,
        );
        if (code.includes("404\n200")) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // the comfyui container's pip reaches the index on the host's docker0 address
    const gw = (await sh("lab4", "ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1")).trim();
    assert.match(gw, /^\d+\.\d+\.\d+\.\d+$/);

    dir = mkdtempSync(join(tmpdir(), "flow-nodes-lab-"));
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    mkdirSync(join(dir, "workflow_templates"));
    writeFileSync(join(dir, "workflow_templates", "infinitetalk.json"), readFileSync(WORKFLOW!));
    const allow = [registry.url, refdata.url, github.url, hub.url, hub.cdnUrl].map((u) => new URL(u).host).concat(`${gw}:${pypi.port}`);
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { comfyui, comfyuiApi, models, nodes, workflow } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  settings: { allowHosts: ${JSON.stringify(allow)}, modelRepos: ["Comfy-Org/Wan_2.1_ComfyUI_repackaged", "Kijai/WanVideo_comfy"] },
  plugins: [
    ops(), workflow(), models(),
    // the fleet runs the InfiniteTalk fork's commit of WanVideoWrapper, whatever the workflow was saved with
    nodes({ pins: { "ComfyUI-WanVideoWrapper": ${JSON.stringify(`https://github.com/${WAN}@${wanCommit}`)} },
      pipIndexUrl: ${JSON.stringify(`http://${gw}:${pypi.port}/simple/`)} }),
    comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 120 }),
    comfyuiApi({ source: { dir: ${JSON.stringify(VENDOR)} }, readyTimeoutSeconds: 120 }),
  ],
});`),
    );
    const up = await runFlow(["comfyui:up", "--hosts", HOSTS.join(",")]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const lock = await runFlow(["workflow:lock"]);
    assert.equal(lock.code, 0, lock.stdout + lock.stderr);
  });

  after(async () => {
    for (const t of tunnels) t.kill();
    await Promise.all([git?.close(), pypi?.close(), registry?.close(), hub?.close()]);
    refdata?.server.close();
    github?.server.close();
    if (Object.keys(timings).length) console.log(`# nodes-lab timings: ${JSON.stringify(timings)}`);
  });

  const lockFile = () => JSON.parse(readFileSync(join(dir, "flow.lock.json"), "utf8"));
  const lockedPacks = () => lockFile().workflows["workflow_templates/infinitetalk.json"].packs as any[];

  test("hostile packs are refused before any host is touched", async () => {
    for (const bad of ["../x", "https://github.com/o/r/../../x", "file:///etc/passwd", "http://github.com/o/r", "a b"]) {
      const r = await runFlow(["nodes:install", "--hosts", "lab4", bad]);
      assert.equal(r.code, 2, `${bad}: ${r.stdout}${r.stderr}`);
    }
    assert.equal((await sh("lab4", "ls ~/comfyui/custom_nodes")).trim(), "ComfyUI-Manager");
  });

  test("nodes:update moves the workflows' unpinned packs to the newest commit and records it in flow.lock.json", async () => {
    const before = lockedPacks();
    const r = await runFlow(["nodes:update", "--hosts", "lab4"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /ComfyUI-WanVideoWrapper is pinned in the flowfile: not updated/);
    const after = lockedPacks();
    for (const p of after.filter((x: any) => !/WanVideoWrapper/.test(x.repo ?? x.id))) {
      const name = new URL(p.repo).pathname.slice(1);
      assert.equal(p.kind, "git");
      assert.equal(p.commit, git.commits(name).at(-1), `${name} in the lock`);
      const folder = name.split("/")[1]!;
      assert.equal(await headOf("lab4", folder), p.commit, `${folder} on lab4`);
    }
    assert.notDeepEqual(before, after);
  });

  test("nodes:install --dry-run lists what it would install and changes nothing", async () => {
    const r = await runFlow(["nodes:install", "--hosts", "lab5", "--dry-run"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ComfyUI-WanVideoWrapper: clone .*would clone/);
    assert.equal((await sh("lab5", "ls ~/comfyui/custom_nodes")).trim(), "ComfyUI-Manager");
  });

  test("InfiniteTalk on a clean host: packs as locked, requirements importable, classes loaded; a second run changes nothing", async () => {
    const startsBefore = await starts("lab5");
    let t0 = Date.now();
    const first = await runFlow(["nodes:install", "--hosts", "lab5"]);
    timings.firstInstallSeconds = (Date.now() - t0) / 1000;
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(await starts("lab5"), startsBefore + 1, "one restart");
    assert.equal(await headOf("lab5", "ComfyUI-WanVideoWrapper"), wanCommit);
    for (const p of lockedPacks().filter((x: any) => !/WanVideoWrapper/.test(x.repo ?? ""))) {
      assert.equal(await headOf("lab5", new URL(p.repo).pathname.split("/")[2]!), p.commit);
    }
    // the requirements went into the persistent target, importable by the container's Python
    await sh(
      "lab5",
      "sudo docker exec comfyui python3 -c " +
        "'import ftfy, einops, diffusers, peft, sentencepiece, google.protobuf, pyloudnorm, gguf, accelerate'",
    );
    assert.match(await sh("lab5", "ls ~/comfyui/python"), /einops/);
    const oi = await objectInfo("lab5");
    const used = [...new Set((JSON.parse(readFileSync(WORKFLOW!, "utf8")).nodes as { type: string }[]).map((n) => n.type))];
    const missing = used.filter((c) => !oi[c] && !["Note", "Reroute", "MarkdownNote"].includes(c));
    assert.deepEqual(missing, [], "every class the workflow uses is in /object_info");
    assert.equal(oi.WanVideoModelLoader.python_module, "custom_nodes.ComfyUI-WanVideoWrapper");
    assert.ok(oi.WanVideoModelLoader.input.required.model, "WanVideoWrapper's real input definitions");

    t0 = Date.now();
    const second = await runFlow(["nodes:install", "--hosts", "lab5"]);
    timings.secondInstallSeconds = (Date.now() - t0) / 1000;
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(recapOf(second.stdout, "lab5").changed, 0, second.stdout);
    assert.equal(await starts("lab5"), startsBefore + 1, "no restart");
    assert.match(second.stdout, /restart ComfyUI: skipped \(nothing changed\)/);
  });

  test("InfiniteTalk's models: each in the folder its loader reads, found by name and locked with size and sha256", async () => {
    const models = lockFile().workflows["workflow_templates/infinitetalk.json"].models as any[];
    for (const [repo, files] of Object.entries(MODELS)) {
      for (const [path, content] of Object.entries(files)) {
        if (path.endsWith(".pt")) continue;
        const m = models.find((x) => x.url.endsWith(`/${repo}/resolve/main/${path}`));
        assert.ok(m, `${repo}/${path} in the lock: ${JSON.stringify(models.map((x) => x.url))}`);
        if (path.endsWith(".safetensors")) assert.deepEqual([m.size, m.sha256], [content.length, sha256(content)], path);
      }
    }
    const t0 = Date.now();
    const r = await runFlow(["models:download", "--hosts", "lab5"]);
    timings.modelsDownloadSeconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const K = MODELS["Kijai/WanVideo_comfy"];
    const where: Record<string, Buffer> = {
      "diffusion_models/Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors": K["Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors"],
      "diffusion_models/infinite_talk.safetensors": K["InfiniteTalk/infinite_talk.safetensors"],
      "text_encoders/umt5-xxl-enc-bf16.safetensors": K["umt5-xxl-enc-bf16.safetensors"],
      "vae/Wan2_1_VAE_fp32.safetensors": K["Wan2_1_VAE_fp32.safetensors"],
      "loras/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors":
        K["Lightx2v/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"],
      "clip_vision/clip_vision_h.safetensors":
        MODELS["Comfy-Org/Wan_2.1_ComfyUI_repackaged"]["split_files/clip_vision/clip_vision_h.safetensors"],
      "transformers/TencentGameMate/chinese-wav2vec2-base/pytorch_model.bin":
        MODELS["TencentGameMate/chinese-wav2vec2-base"]["pytorch_model.bin"],
    };
    const sums = await sh("lab5", `cd ~/comfyui/models && sha256sum ${Object.keys(where).join(" ")}`);
    for (const [rel, content] of Object.entries(where)) {
      assert.ok(sums.split("\n").includes(`${sha256(content)}  ${rel}`), `${rel}:\n${sums}`);
    }
    assert.equal(
      (await sh("lab5", "ls ~/comfyui/models/transformers/TencentGameMate/chinese-wav2vec2-base")).trim().split("\n").sort().join(","),
      "config.json,preprocessor_config.json,pytorch_model.bin",
    );
    // the pack's own loaders list what is on disk now
    const oi = await objectInfo("lab5");
    assert.ok(oi.WanVideoModelLoader.input.required.model[0].includes("Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors"));
    assert.ok(oi.LoadWanVideoT5TextEncoder.input.required.model_name[0].includes("umt5-xxl-enc-bf16.safetensors"));
  });

  test("two hosts in parallel end with identical nodes:list --json", async () => {
    const r = await runFlow(["nodes:install", "--hosts", HOSTS.join(",")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const list = await runFlow(["nodes:list", "--hosts", HOSTS.join(","), "--json"]);
    assert.equal(list.code, 0, list.stdout + list.stderr);
    const of = (h: string) => events(list.stdout).find((e) => e.type === "data" && e.host === h && e.data.nodes)!.data.nodes.packs;
    const [a, b] = HOSTS.map(of);
    assert.ok(a.length >= 5, JSON.stringify(a));
    assert.deepEqual(a, b);
    const wan = a.find((p: any) => p.name === "ComfyUI-WanVideoWrapper");
    assert.deepEqual([wan.at, wan.dirty, wan.disabled, wan.importFailed], [wanCommit, false, false, false]);
    assert.ok(wan.classes.includes("WanVideoSampler"));
  });

  test("a pack with local changes is left as it is; --force moves it and keeps a patch", async () => {
    const kj = lockedPacks().find((p: any) => /KJNodes/i.test(p.repo));
    const name = new URL(kj.repo).pathname.slice(1);
    const folder = name.split("/")[1]!;
    const older = git.commits(name)[0]!;
    await sh("lab4", `echo '# mine' >> ~/comfyui/custom_nodes/${folder}/__init__.py`);
    const r = await runFlow(["nodes:install", "--hosts", "lab4", `https://github.com/${name}@${older}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /local changes .*__init__\.py.*left as it is/);
    assert.match(await sh("lab4", `tail -n 1 ~/comfyui/custom_nodes/${folder}/__init__.py`), /# mine/);
    assert.equal(await headOf("lab4", folder), kj.commit);
    const f = await runFlow(["nodes:install", "--hosts", "lab4", "--force", `https://github.com/${name}@${older}`]);
    assert.equal(f.code, 0, f.stdout + f.stderr);
    assert.equal(await headOf("lab4", folder), older);
    assert.match(await sh("lab4", `cat ~/backups/nodes-replaced/*/${folder}.patch`), /\+# mine/);
    // back as locked for the tests after this one
    const back = await runFlow(["nodes:install", "--hosts", "lab4"]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  test("a pip failure names the pack and the requirement; the other packs are installed", async () => {
    const r = await runFlow(["nodes:install", "--hosts", "lab4", "https://github.com/lab/pipfail", "https://github.com/lab/okpack"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /pipfail: pip could not install requirement lab-missing-dep/);
    assert.equal(await headOf("lab4", "okpack"), extra.okpack!.commits.at(-1));
    assert.ok((await objectInfo("lab4")).LabOkNode, "okpack loaded after the restart");
  });

  test("a requirement that breaks the pack's import: reported from ComfyUI's log, and by nodes:list", async () => {
    const r = await runFlow(["nodes:install", "--hosts", "lab4", "https://github.com/lab/importfail"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /importfail: ComfyUI could not import it: No module named 'lab_broken_dep'/);
    const list = await runFlow(["nodes:list", "--hosts", "lab4", "--json"]);
    const packs = events(list.stdout).find((e) => e.type === "data" && e.data.nodes)!.data.nodes.packs;
    const bad = packs.find((p: any) => p.name === "importfail");
    assert.deepEqual([bad.importFailed, bad.error], [true, "No module named 'lab_broken_dep'"]);
  });

  test("a registry pack: that version unpacked and recorded; nodes:update moves it to the latest", async () => {
    const r = await runFlow(["nodes:install", "--hosts", "lab4", "lab-registry-pack@1.0.0"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(await sh("lab4", "cat ~/comfyui/custom_nodes/lab-registry-pack/.flow-pack.json"), /"version":"1.0.0"/);
    assert.ok((await objectInfo("lab4")).LabRegistryNode);
    const u = await runFlow(["nodes:update", "--hosts", "lab4", "lab-registry-pack"]);
    assert.equal(u.code, 0, u.stdout + u.stderr);
    assert.match(await sh("lab4", "cat ~/comfyui/custom_nodes/lab-registry-pack/.flow-pack.json"), /"version":"1.1.0"/);
  });

  test("a pack named bare is what ComfyUI-Manager's list calls it, pinned to its default branch's head", async () => {
    const kj = lockedPacks().find((p: any) => /KJNodes/i.test(p.repo));
    const name = new URL(kj.repo).pathname.slice(1);
    const head = await git.addCommit(name, { files: { "NEWS.md": "bare name\n" } });
    const r = await runFlow(["nodes:install", "--hosts", "lab4", "ComfyUI-KJNodes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await headOf("lab4", name.split("/")[1]!), head);
    // two repositories of one name would be a guess: refused, naming them, before any host
    const none = await runFlow(["nodes:install", "--hosts", "lab4", "no-such-pack-anywhere"]);
    assert.equal(none.code, 2, none.stdout + none.stderr);
    assert.match(none.stdout + none.stderr, /pack no-such-pack-anywhere: /);
    // the workflows' lock is theirs: back as locked for the tests after this one
    const back = await runFlow(["nodes:install", "--hosts", "lab4"]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  test("update a locked pack to a new upstream commit, then remove a pack", async () => {
    const kj = lockedPacks().find((p: any) => /KJNodes/i.test(p.repo));
    const name = new URL(kj.repo).pathname.slice(1);
    const folder = name.split("/")[1]!;
    const fresh = await git.addCommit(name, { files: { "CHANGELOG.md": "newer\n" } });
    const u = await runFlow(["nodes:update", "--hosts", "lab4", folder]);
    assert.equal(u.code, 0, u.stdout + u.stderr);
    assert.equal(await headOf("lab4", folder), fresh);
    assert.equal(lockedPacks().find((p: any) => /KJNodes/i.test(p.repo)).commit, fresh);

    const startsBefore = await starts("lab4");
    const rm = await runFlow(["nodes:remove", "--hosts", "lab4", "--yes", "okpack"]);
    assert.equal(rm.code, 0, rm.stdout + rm.stderr);
    assert.equal((await sh("lab4", "test -e ~/comfyui/custom_nodes/okpack && echo there || echo gone")).trim(), "gone");
    assert.equal(await starts("lab4"), startsBefore + 1);
    assert.equal((await objectInfo("lab4")).LabOkNode, undefined);
    // a pack the workflows use is not removed without --force
    const no = await runFlow(["nodes:remove", "--hosts", "lab4", "--yes", "ComfyUI-WanVideoWrapper"]);
    assert.equal(no.code, 1, no.stdout + no.stderr);
    assert.match(no.stdout + no.stderr, /infinitetalk\.json use: --force removes it anyway/);
  });

  // ---- issue 14: the user's four workflows on lab5, which has InfiniteTalk's packs and models

  const FIXTURE = join(REPO, "test/fixtures/data/comfyui/object_info_infinitetalk.json");
  const FRONTEND_ONLY = new Set(["Note", "MarkdownNote", "Reroute", "PrimitiveNode"]);
  const workflowClasses = () =>
    [...new Set((JSON.parse(readFileSync(WORKFLOW!, "utf8")).nodes as { type: string }[]).map((n) => n.type))]
      .filter((c) => !FRONTEND_ONLY.has(c))
      .sort();
  const ENDPOINTS: Record<string, string> = {
    "qwen/qwen_base_txt2img": "qwen_base_txt2img.json",
    "qwen/qwen_img_edit": "qwen_img_edit.json",
    "flux/flux_depth": "flux_depth.json",
    "wan/infinitetalk": "infinitetalk.json",
  };
  const absentEndpoints = Object.keys(ENDPOINTS).filter((e) => !existsSync(join(REPO, "workflows", `${e}.ts`)));

  test(
    "InfiniteTalk's object_info: the classes its workflow uses as lab5 reports them, equal to the committed fixture " +
      "(FLOW_WRITE_FIXTURES=1 writes it)",
    async () => {
      const out = join(mkdtempSync(join(tmpdir(), "flow-object-info-")), "object_info.json");
      const t0 = Date.now();
      const r = await runFlow(["workflow:object-info", "--hosts", "lab5", "-o", out]);
      timings.objectInfoSeconds = (Date.now() - t0) / 1000;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const host = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>;
      const classes = workflowClasses();
      assert.deepEqual(
        classes.filter((c) => !host[c]),
        [],
        "every class the workflow uses",
      );
      const mine = Object.fromEntries(classes.map((c) => [c, host[c]]));
      if (process.env.FLOW_WRITE_FIXTURES === "1") writeFileSync(FIXTURE, JSON.stringify(mine, null, 1) + "\n");
      assert.ok(existsSync(FIXTURE), `${FIXTURE} is missing: FLOW_WRITE_FIXTURES=1 node test/run.mjs nodes-lab writes it`);
      const fixture = JSON.parse(readFileSync(FIXTURE, "utf8")) as Record<string, any>;
      assert.deepEqual(Object.keys(fixture), classes);
      for (const c of classes) assert.deepEqual(withoutFileLists(host[c]), withoutFileLists(fixture[c]), c);
      // the real pack's own definitions, the core ones from a real ComfyUI's, the generated packs' as
      // their upstream packs declare them (pack-definitions.ts), Video Combine an output node
      assert.equal(fixture.WanVideoSampler.python_module, "custom_nodes.ComfyUI-WanVideoWrapper");
      assert.ok(fixture.WanVideoSampler.input_order.required.includes("image_embeds"));
      assert.equal(fixture.LoadAudio.python_module, "comfy_extras.nodes_audio");
      assert.equal(fixture.VHS_VideoCombine.output_node, true);
      for (const [c, d] of Object.entries(REAL_DEFINITIONS)) {
        const order = {
          required: Object.keys(d.required ?? {}),
          optional: Object.keys(d.optional ?? {}),
          hidden: Object.keys(d.hidden ?? {}),
        };
        const want = Object.fromEntries(Object.entries(order).filter(([, names]) => names.length));
        assert.deepEqual([fixture[c].input_order, fixture[c].output, fixture[c].category], [want, d.returnTypes, d.category], c);
      }
      assert.ok(fixture.WanVideoModelLoader.input.required.model[0].includes("Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors"));
    },
  );

  test("the stand-in runs Video Combine as VideoHelperSuite does: a video in output/, listed under `gifs`", async () => {
    const prompt = {
      "1": { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
      "2": {
        class_type: "VHS_VideoCombine",
        inputs: {
          images: ["1", 0],
          frame_rate: 25,
          loop_count: 0,
          filename_prefix: "lab_combine",
          format: "video/h264-mp4",
          pix_fmt: "yuv420p",
          crf: 19,
          save_metadata: true,
          trim_to_audio: false,
          pingpong: false,
          save_output: true,
        },
      },
    };
    const post = (body: unknown) =>
      sh(
        "lab5",
        `curl -sS -H 'content-type: application/json' --data-binary @- http://127.0.0.1:8188/prompt <<'EOF'\n${JSON.stringify(body)}\nEOF`,
      );
    const queued = JSON.parse(await post({ prompt }));
    assert.equal(typeof queued.prompt_id, "string", JSON.stringify(queued));
    let entry: any;
    for (let i = 0; i < 100 && !entry; i++) {
      entry = JSON.parse(await sh("lab5", `curl -fsS http://127.0.0.1:8188/history/${queued.prompt_id}`))[queued.prompt_id];
      if (!entry) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(entry, "the prompt finished");
    const [gif] = entry.outputs["2"].gifs;
    assert.deepEqual([gif.filename, gif.subfolder, gif.type, gif.format], ["lab_combine_00001.mp4", "", "output", "video/h264-mp4"]);
    assert.match(await sh("lab5", "head -c 12 ~/comfyui/output/lab_combine_00001.mp4 | tail -c 8"), /^ftypisom$/);
    await sh("lab5", "sudo rm -f ~/comfyui/output/lab_combine_00001.mp4");
    // without its images it is refused, as ComfyUI refuses a required input missing
    delete (prompt["2"].inputs as Partial<(typeof prompt)["2"]["inputs"]>).images;
    const refused = JSON.parse(await post({ prompt }));
    assert.equal(refused.node_errors?.["2"]?.errors?.[0]?.type, "required_input_missing", JSON.stringify(refused));
  });

  test(
    "the four endpoints on lab5: api:workflows syncs them, /docs/json lists them with their schemas, " +
      "and a POST of each with its defaults (and media) answers 200 with an output from the stand-in",
    { skip: absentEndpoints.length ? `not generated yet: ${absentEndpoints.map((e) => `workflows/${e}.ts`).join(", ")}` : false },
    async () => {
      // the model files their defaults name, as small stand-ins where the models are not there already
      const files = new Set<string>();
      const media = new Set<string>();
      for (const template of Object.values(ENDPOINTS)) {
        const text = readFileSync(join(REPO, "workflow_templates", template), "utf8");
        for (const m of modelDeps(readWorkflow(Buffer.from(text), template)).models) files.add(`${m.folder}/${m.name}`);
        // media named in widgets that comfyui-api does not upload (e.g. InfiniteTalk's reference video) must be in input/
        for (const n of JSON.parse(text).nodes as { widgets_values?: unknown }[]) {
          for (const v of Array.isArray(n.widgets_values) ? n.widgets_values : []) {
            if (typeof v === "string" && /^[^/]+\.(png|jpe?g|webp|mp4|webm|mov|wav|mp3|flac)$/i.test(v)) media.add(v);
          }
        }
        mkdirSync(join(dir, "workflow_templates"), { recursive: true });
        writeFileSync(join(dir, "workflow_templates", template), text);
      }
      const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      await sh(
        "lab5",
        [...files]
          .map(
            (f) =>
              `sudo mkdir -p "$(dirname ~/comfyui/models/${q(f)})"; test -e ~/comfyui/models/${q(f)} || ` +
              `echo 'a lab stand-in model' | sudo tee ~/comfyui/models/${q(f)} >/dev/null`,
          )
          .concat(
            [...media].map((f) => `test -e ~/comfyui/input/${q(f)} || echo 'lab media' | sudo tee ~/comfyui/input/${q(f)} >/dev/null`),
          )
          .join("\n"),
      );
      for (const e of Object.keys(ENDPOINTS)) {
        mkdirSync(join(dir, "workflows", e, ".."), { recursive: true });
        writeFileSync(join(dir, "workflows", `${e}.ts`), readFileSync(join(REPO, "workflows", `${e}.ts`)));
      }
      let t0 = Date.now();
      const sync = await runFlow(["api:workflows", "--hosts", "lab5"]);
      timings.apiWorkflowsSeconds = (Date.now() - t0) / 1000;
      assert.equal(sync.code, 0, sync.stdout + sync.stderr);

      const doc = JSON.parse(await sh("lab5", "curl -fsS http://127.0.0.1:3000/docs/json"));
      const paths = Object.keys(ENDPOINTS).map((e) => `/workflow/${e}`);
      const check = checkOpenApi(doc, paths);
      assert.deepEqual([check.missing, check.unexpected, check.emptyEnums], [[], [], []], JSON.stringify(check));
      const schemas = workflowEndpoints(doc);
      for (const path of paths) {
        const schema = schemas.get(path);
        assert.ok(schema && Object.keys((schema.properties as object) ?? {}).length, `${path}: its input schema`);
        const { input, madeUp } = inputFromSchema(schema);
        // required media: a small PNG, WAV or MP4 in base64, which comfyui-api saves into input/ for its loader
        for (const k of madeUp) {
          const kind = mediaKind(k, (schema.properties as Record<string, { description?: string }>)[k]?.description);
          if (kind) input[k] = SAMPLE_MEDIA[kind].toString("base64");
        }
        t0 = Date.now();
        const body = JSON.stringify({ id: `lab-${path.split("/").at(-1)}`, input });
        const res = await sh(
          "lab5",
          `curl -sS -o /tmp/flow-endpoint-body -w '%{http_code}' -H 'content-type: application/json' ` +
            `--data-binary @- http://127.0.0.1:3000${path} <<'EOF'\n${body}\nEOF\necho; cat /tmp/flow-endpoint-body`,
        );
        timings[`post ${path}`] = (Date.now() - t0) / 1000;
        const [status, ...rest] = res.split("\n");
        assert.equal(status, "200", `${path} (input ${JSON.stringify(input).slice(0, 300)}): ${rest.join("\n").slice(0, 2000)}`);
        const got = outputsOf(JSON.parse(rest.join("\n")));
        assert.ok(got.images >= 1, `${path}: ${JSON.stringify(got)}`);
        assert.match(got.filenames.join(" "), path.endsWith("/infinitetalk") ? /\.mp4\b/ : /\.png\b/, path);
      }
    },
  );
});

// Combos that list files (models, inputs): what the disk holds at the moment, not part of a definition.
const FILE_NAME = /\.(safetensors|sft|ckpt|pt2?|pth|bin|pkl|gguf|onnx|yaml|wav|mp3|flac|ogg|m4a|mp4|webm|mkv|mov|gif|png|jpe?g|webp)$/i;

/** A definition with each file-listing combo's values replaced by one marker, so two moments compare. */
function withoutFileLists(def: any): any {
  const input: Record<string, unknown> = {};
  for (const [section, specs] of Object.entries((def?.input ?? {}) as Record<string, Record<string, unknown>>)) {
    input[section] = Object.fromEntries(
      Object.entries(specs ?? {}).map(([name, spec]) => {
        if (!Array.isArray(spec)) return [name, spec];
        const v1 = Array.isArray(spec[0]);
        const values: unknown = v1 ? spec[0] : spec[0] === "COMBO" ? spec[1]?.options : undefined;
        if (!Array.isArray(values) || !(values.length === 0 || values.some((x) => typeof x === "string" && FILE_NAME.test(x)))) {
          return [name, spec];
        }
        return [name, v1 ? [["<files>"], ...spec.slice(1)] : ["COMBO", { ...spec[1], options: ["<files>"] }]];
      }),
    );
  }
  return { ...def, input };
}

/** What kind of upload a required field is, by its name or description (the endpoints name them so). */
function mediaKind(name: string, description = ""): keyof typeof SAMPLE_MEDIA | undefined {
  const text = `${name} ${description}`;
  if (/audio|sound|voice|speech/i.test(text)) return "audio";
  if (/video/i.test(text)) return "video";
  if (/image|photo|picture|mask/i.test(text)) return "image";
  return undefined;
}

/** Small files comfyui-api recognises by their first bytes (its guessFileExtensionFromBase64). */
const SAMPLE_MEDIA = {
  // 1x1 grey PNG
  image: Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==", "base64"),
  // 0.1 s of silence, 8 kHz 16-bit mono WAV
  audio: (() => {
    const data = Buffer.alloc(1600);
    const h = Buffer.alloc(44);
    h.write("RIFF", 0);
    h.writeUInt32LE(36 + data.length, 4);
    h.write("WAVEfmt ", 8);
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20);
    h.writeUInt16LE(1, 22);
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(16000, 28);
    h.writeUInt16LE(2, 32);
    h.writeUInt16LE(16, 34);
    h.write("data", 36);
    h.writeUInt32LE(data.length, 40);
    return Buffer.concat([h, data]);
  })(),
  // an ISO media file-type box and an empty free box
  video: Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from("ftypisom"), Buffer.from([0, 0, 2, 0]), Buffer.from("isommp41")]),
};
