// api:workflows and api:verify end to end on a lab host (lab7) running the REAL comfyui-api 1.18.0
// (the lab image) in front of the stand-in ComfyUI, through the `flow` binary as a user runs it:
// two workflows (one in a sub-folder) synced, served and answering with an image; one changed:
// only it sent, one restart; one deleted: gone from the host and the OpenAPI; a type error
// refused before anything is sent; a missing model folder refused by the dependency check, and,
// when the folder goes after the sync, named by api:verify with comfyui-api's own log line.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const HOST = "lab7"; // other lab tests use lab1..lab6
const VENDOR = resolve(REPO, "../shared/vendor/comfyui-api");
const reason = (await labUnavailableReason()) ?? (existsSync(join(VENDOR, "src/types.ts")) ? null : `no comfyui-api source at ${VENDOR}`);
const ROOT = "/home/ubuntu"; // the login user's home: the data root of a host with no provider
const WF = `${ROOT}/comfyui-api/workflows`;
const MODELS = `${ROOT}/comfyui/models`;
const STARTED = "ComfyUI API 1.18.0 started.";

// Written for this test on the model of comfyui-api's example-workflows/sd1.5/txt2img.ts.
const workflow = (o: { summary: string; folder?: string; loader?: string; input?: string; example?: string; typo?: boolean }) =>
  `
import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import config ` +
  `from "../config";

const RequestSchema = z.object({
  prompt: z.string().describe("The positive ` +
  `prompt for image generation"),
  negative_prompt: z.string().optional().default("blurry").describe("The ` +
  `negative prompt"),
  width: z.number().int().min(64).max(2048).optional().default(512).describe("Width ` +
  `of the generated image"),
  height: z.number().int().min(64).max(2048).optional().default(512).describe("Height ` +
  `of the generated image"),
  seed: z.number().int().optional().default(() => Math.floor(Math.random() ` +
  `* 1e9)).describe("Seed"),
  steps: z.number().int().min(1).max(100).optional().default(20).describe("Number ` +
  `of sampling steps"),
  cfg_scale: z.number().min(0).max(20).optional().default(8).describe("Classifier-free ` +
  `guidance scale"),
  sampler_name: config.samplers.optional().default("euler").describe("Name ` +
  `of the sampler to use"),
  scheduler: config.schedulers.optional().default("normal").describe("Type ` +
  `of scheduler to use"),
  model: config.models.${o.folder ?? "checkpoints"}.enum.optional()
    .default(config.models.${o.folder ?? "checkpoints"}.all[0]).describe("Model ` +
  `file"),
});

type InputType = z.infer<typeof RequestSchema>;
${o.example ? `\nexport const example = ${o.example};\n` : ""}
function ` +
  `generateWorkflow(input: InputType): ComfyPrompt {
  return {
    "3": {
      inputs: {
  ` +
  `      seed: input.${o.typo ? "sed" : "seed"}, steps: input.steps, cfg: input.cfg_scale, sampler_name: ` +
  `input.sampler_name,
        scheduler: input.scheduler, denoise: 1, model: ["4", 0], positive: ` +
  `["6", 0], negative: ["7", 0], latent_image: ["5", 0],
      },
      class_type: "KSampler",
 ` +
  `   },
    "4": { inputs: { ${o.input ?? "ckpt_name"}: input.model }, class_type: "${o.loader ?? "CheckpointLoaderSimple"}" ` +
  `},
    "5": { inputs: { width: input.width, height: input.height, batch_size: 1 }, class_type: ` +
  `"EmptyLatentImage" },
    "6": { inputs: { text: input.prompt, clip: ["4", 1] }, class_type: ` +
  `"CLIPTextEncode" },
    "7": { inputs: { text: input.negative_prompt, clip: ["4", 1] }, class_type: ` +
  `"CLIPTextEncode" },
    "8": { inputs: { samples: ["3", 0], vae: ["4", 2] }, class_type: "VAEDecode" ` +
  `},
    "9": { inputs: { filename_prefix: "lab", images: ["8", 0] }, class_type: "SaveImage" ` +
  `},
  };
}

const workflow: Workflow = { RequestSchema, generateWorkflow, summary: ${JSON.stringify(o.summary)} ` +
  `};

export default workflow;
`;

function recapOf(stdout: string, host: string): { ok: number; changed: number; failed: number } {
  const m = new RegExp(`^${host}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+[\\d.]+s`, "m").exec(stdout);
  assert.ok(m, `no recap line for ${host} in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, failed: +m[4]! };
}

describe("api:workflows and api:verify against the real comfyui-api on a lab host", { skip: reason ?? false, timeout: 15 * 60_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  const timings: string[] = [];
  const sh = async (script: string) => {
    const r = await run("ssh", sshArgv(inv.hosts[HOST]!.port, "ubuntu", "sudo sh -s"), {
      input: `set -eu\n${script}\n`,
      allowFail: true,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r.stdout;
  };
  const api = async (path: string) => JSON.parse(await sh(`curl -fsS http://127.0.0.1:3000${path}`));
  const paths = async () =>
    Object.keys((await api("/docs/json")).paths)
      .filter((p) => p.startsWith("/workflow/"))
      .sort();
  const startedAt = () => sh("docker inspect -f '{{.State.StartedAt}}' comfyui");
  const starts = async () => (await sh("docker logs comfyui 2>&1")).split("\n").filter((l) => l.includes(STARTED)).length;
  const hostFiles = async () =>
    (await sh(`cd ${WF} && find . -type f | sort`))
      .trim()
      .split("\n")
      .map((l) => l.replace(/^\.\//, ""));
  const write = (rel: string, text: string) => {
    mkdirSync(join(dir, "workflows", rel, ".."), { recursive: true });
    writeFileSync(join(dir, "workflows", rel), text);
  };
  const flowRun = async (what: string, args: string[]) => {
    const t0 = Date.now();
    const r = await flow(["run", ...args, "--hosts", HOST], { cwd: dir });
    timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    return r;
  };

  before(async () => {
    const t0 = Date.now();
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST, (m) => process.stderr.write(`[standin] ${m}\n`));
    dir = mkdtempSync(join(tmpdir(), "flow-api-lab-"));
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { comfyui, comfyuiApi } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  plugins: [ops(), comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 120 }),
    comfyuiApi({ source: { dir: ${JSON.stringify(VENDOR)} }, readyTimeoutSeconds: 120 })],
});`),
    );
    write("txt2img.ts", workflow({ summary: "SD 1.5 text to image (lab)" }));
    write("sd15/small.ts", workflow({ summary: "small images (lab)", example: `{ prompt: "a lab fox", width: 64, height: 64 }` }));
    const up = await flow(["run", "comfyui:up", "--hosts", HOST], { cwd: dir });
    assert.equal(up.code, 0, up.stdout + up.stderr);
    await sh(`echo 'not really a model' > ${MODELS}/checkpoints/lab-sd15.safetensors`);
    timings.push(`fresh host + comfyui:up: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  });

  after(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (timings.length) process.stderr.write(`api-lab timings: ${timings.join("; ")}\n`);
  });

  test(
    "two workflows (one in a sub-folder) synced: type-checked, sent, one restart, both in " + "/docs/json, both answer POST with an image",
    async () => {
      const before = await starts();
      const r = await flowRun("first sync + smoke", ["api:workflows", "--smoke"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /type-check against comfyui-api 1\.18\.0: ok \(2 workflows pass/);
      assert.match(r.stdout, /workflows in \/home\/ubuntu\/comfyui-api\/workflows: changed \(sent 2: sd15\/small\.ts, txt2img\.ts\)/);
      assert.match(r.stdout, /comfyui-api restarted to load the workflows: changed \(restarted; \/ready after/);
      assert.equal(await starts(), before + 1, "one restart");
      assert.deepEqual(await paths(), ["/workflow/sd15/small", "/workflow/txt2img"]);
      // comfyui-api transpiled each .ts beside itself
      assert.deepEqual(await hostFiles(), ["sd15/small.js", "sd15/small.ts", "txt2img.js", "txt2img.ts"]);
      // --smoke: each POSTed (small with its example, txt2img with its defaults + a made-up prompt), each with an image
      assert.match(r.stdout, /^lab7\s+POST \/workflow\/sd15\/small\s+200\s+[\d.]+\s+\S+_lab_00001_\.png \(input: its example\)$/m);
      assert.match(
        r.stdout,
        /^lab7\s+POST \/workflow\/txt2img\s+200\s+[\d.]+\s+\S+_lab_00001_\.png \(input: its defaults, made up: prompt\)$/m,
      );
      // and without flow: the real server, the stand-in ComfyUI, a PNG back
      const out = await sh(
        `curl -sS -H 'content-type: application/json' -d '{"input":{"prompt":"a cat","width":96,"height":64}}' ` +
          `http://127.0.0.1:3000/workflow/sd15/small`,
      );
      const png = Buffer.from(JSON.parse(out).images[0], "base64");
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      assert.equal(png.readUInt32BE(16), 96);
    },
  );

  test("a second run sends nothing and does not restart", async () => {
    const since = await startedAt();
    const r = await flowRun("second run (no change)", ["api:workflows"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(recapOf(r.stdout, HOST).changed, 0, r.stdout);
    assert.match(r.stdout, /workflows in \S+: ok \(2 files up to date\)/);
    assert.match(r.stdout, /restarted to load the workflows: ok \(nothing changed: no restart\)/);
    assert.equal(await startedAt(), since);
  });

  test("one file changed: only it is sent, one restart, the new version served", async () => {
    const other = await sh(`stat -c '%i %Y' ${WF}/txt2img.ts`);
    const before = await starts();
    write(
      "sd15/small.ts",
      workflow({ summary: "small images, second edition", example: `{ prompt: "a lab fox", width: 64, height: 64 }` }),
    );
    const dry = await flowRun("dry run", ["api:workflows", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stdout);
    assert.match(dry.stdout, /workflows in \S+: would change \(to send 1: sd15\/small\.ts; 1 unchanged\)/);
    assert.equal(await starts(), before, "a dry run restarts nothing");
    const r = await flowRun("one file changed", ["api:workflows"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /workflows in \S+: changed \(sent 1: sd15\/small\.ts; 1 unchanged\)/);
    assert.equal(recapOf(r.stdout, HOST).changed, 2, r.stdout);
    assert.equal(await starts(), before + 1, "exactly one restart");
    assert.equal(await sh(`stat -c '%i %Y' ${WF}/txt2img.ts`), other, "the unchanged file was not touched");
    assert.equal((await api("/docs/json")).paths["/workflow/sd15/small"].post.summary, "small images, second edition");
  });

  test("one file deleted: gone from the host (its .js too) and from the OpenAPI", async () => {
    rmSync(join(dir, "workflows/txt2img.ts"));
    const r = await flowRun("one file deleted", ["api:workflows"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /changed \(removed 2: txt2img\.js, txt2img\.ts; 1 unchanged\)/);
    assert.deepEqual(await hostFiles(), ["sd15/small.js", "sd15/small.ts"]);
    assert.deepEqual(await paths(), ["/workflow/sd15/small"]);
    assert.match(r.stdout, /OpenAPI lists exactly the workflows of workflows\/: ok \(1 workflow, as expected\)/);
  });

  test("a workflow that does not type-check is refused before anything is sent: the host is unchanged", async () => {
    const listing = await sh(`cd ${WF} && find . -type f -exec sha256sum {} + | sort`);
    const since = await startedAt();
    write("bad/typo.ts", workflow({ summary: "typo", typo: true }));
    write("sd15/small.ts", readFileSync(join(dir, "workflows/sd15/small.ts"), "utf8").replace("second edition", "third edition"));
    const r = await flowRun("type error refused", ["api:workflows"]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        String.raw`type-check against comfyui-api 1\.18\.0: failed \(1 problem; nothing was changed on the ho` +
          String.raw`st:\nbad\/typo\.ts:\d+:\d+: Property 'sed' does not exist on type .*Did you mean 'seed'\?`,
      ),
    );
    assert.doesNotMatch(r.stdout, /workflows in \S+: (changed|ok)/);
    assert.equal(await sh(`cd ${WF} && find . -type f -exec sha256sum {} + | sort`), listing);
    assert.equal(await startedAt(), since);
    rmSync(join(dir, "workflows/bad"), { recursive: true });
  });

  test(
    "model folders: one the host lacks is refused; synced once there; gone after a restart, " +
      "api:verify names it with comfyui-api's log line (and an emptied one by its empty enum)",
    async () => {
      write("extra/ipadapter.ts", workflow({ summary: "needs models/ipadapter", folder: "ipadapter" }));
      write("extra/lora.ts", workflow({ summary: "needs a lora", folder: "loras", loader: "LoraLoaderModelOnly", input: "lora_name" }));
      const refused = await flowRun("missing model folder refused", ["api:workflows"]);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(
        refused.stdout,
        /extra\/ipadapter\.ts: reads config\.models\.ipadapter, but models\/ipadapter is not a folder on the host/,
      );
      assert.match(refused.stdout, /extra\/lora\.ts: reads config\.models\.loras, but models\/loras on the host is empty/);
      assert.deepEqual(await hostFiles(), ["sd15/small.js", "sd15/small.ts"], "nothing sent");

      await sh(
        `mkdir -p ${MODELS}/ipadapter && echo x > ${MODELS}/ipadapter/ip-adapter_sd15.safetensors ` +
          `&& echo x > ${MODELS}/loras/style.safetensors`,
      );
      const ok = await flowRun("synced once the models are there", ["api:workflows"]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.deepEqual(await paths(), ["/workflow/extra/ipadapter", "/workflow/extra/lora", "/workflow/sd15/small"]);

      // the models go (a cleanup, another tool), and the box restarts: comfyui-api builds config.models anew
      await sh(`rm -rf ${MODELS}/ipadapter ${MODELS}/loras/style.safetensors
docker restart comfyui >/dev/null
for i in $(seq 120); do curl -fsS -o /dev/null http://127.0.0.1:3000/ready 2>/dev/null && exit 0; sleep 0.5; done; exit 1`);
      const v = await flowRun("api:verify names the broken ones", ["api:verify"]);
      assert.equal(v.code, 1, v.stdout);
      assert.match(
        v.stdout,
        new RegExp(
          String.raw`^lab7\s+\/workflow\/extra\/ipadapter\s+missing\s+comfyui-api: "Failed to evaluate workflow` +
            String.raw` file" \(\/workflows\/extra\/ipadapter\.js\): Cannot read properties of undefined \(readin` +
            String.raw`g 'enum'\)$`,
          "m",
        ),
      );
      assert.match(
        v.stdout,
        new RegExp(
          String.raw`^lab7\s+\/workflow\/extra\/lora\s+empty enum\s+input\.model accepts no value: an empty enu` +
            String.raw`m \(it reads config\.models\.loras: models\/loras had no files when comfyui-api started\)$`,
          "m",
        ),
      );
      assert.match(v.stdout, /^lab7\s+\/workflow\/sd15\/small\s+served$/m);
      assert.match(v.stdout, /^lab7\s+\/health\s+200\s/m);
      assert.equal(recapOf(v.stdout, HOST).failed, 1);
    },
  );
});
