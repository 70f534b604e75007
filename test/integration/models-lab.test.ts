// models:* against a real lab host (lab6): the download runs there, the fake hub runs here and is
// reached through SSH remote forwards (same 127.0.0.1/localhost URLs on both sides, no private traffic).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { flow, flowfileSource, FLOW_BIN, REPO, type CliResult } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, type LabInventory } from "../lab/lab.ts";
import { seeded, sha256, startFakeHub, type FakeHub } from "../support/fake-hub.ts";

const why = await labUnavailableReason();
const MB = 1024 * 1024;
const HF_TOKEN = "hf_good_" + Math.random().toString(36).slice(2, 12);
/** a valid token of another account, not granted the gated repository */
const HF_OTHER = "hf_other_" + Math.random().toString(36).slice(2, 12);
const FILES = {
  a: seeded("a", 3 * MB),
  b: seeded("b", 2 * MB),
  c: seeded("c", 1 * MB),
  g: seeded("g", 1 * MB),
  big: seeded("big", 16 * MB),
};
const ROOT = "/home/ubuntu/comfyui/models";

function workflow(models: { name: string; url: string; directory: string }[]): string {
  return JSON.stringify({ nodes: [{ id: 1, type: "ModelHolder", mode: 0, properties: { models }, widgets_values: [] }], links: [] });
}

describe("models plugin on a lab host", { skip: why ?? false, timeout: 900_000 }, () => {
  let inv: LabInventory;
  let hub: FakeHub;
  let dir: string;
  let env: Record<string, string>;
  const tunnels: ChildProcess[] = [];

  const sshArgs = () => {
    const h = inv.hosts.lab6!;
    const opts = ["-o", `UserKnownHostsFile=${inv.knownHostsFile}`, "-o", "BatchMode=yes"];
    return ["-i", h.identityFile, ...opts, "-p", String(h.port), `${h.user}@127.0.0.1`];
  };
  // async: the fake hub lives in this process, a blocking spawnSync would stall it mid-download
  const onHost = (command: string) =>
    new Promise<string>((resolve) => {
      const c = spawn("ssh", [...sshArgs(), command], { stdio: ["ignore", "pipe", "ignore"] });
      let out = "";
      c.stdout.on("data", (d: Buffer) => (out += d));
      const t = setTimeout(() => c.kill(), 30_000);
      c.on("close", () => (clearTimeout(t), resolve(out)));
    });
  const run = (args: string[], extra: Record<string, string> = {}) =>
    flow(["run", ...args, "--hosts", "lab6"], { cwd: dir, env: { ...env, ...extra } });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(150);
    }
  }
  const doneBytes = async () => {
    const tail = await onHost("tail -n 5 ~/.flow/runs/models-download/events.jsonl 2>/dev/null");
    const lines = tail.split("\n").filter((l) => l.includes('"type":"progress"'));
    return lines.length ? (JSON.parse(lines.at(-1)!) as { done: number }).done : 0;
  };
  const hostSha = async (p: string) => (await onHost(`sha256sum ${ROOT}/${p} 2>/dev/null | cut -c1-64`)).trim();
  /**
   * flow as a child we can SIGKILL (a laptop that drops off). The last run's events go first: its
   * progress must not pass for this run's (a wait for "half done" would end before it started).
   */
  async function flowChild(args: string[]): Promise<{ child: ChildProcess; done: Promise<CliResult>; out: () => string }> {
    await onHost("rm -f ~/.flow/runs/models-download/events.jsonl");
    const child = spawn(process.execPath, [FLOW_BIN, "run", ...args, "--hosts", "lab6"], {
      cwd: dir,
      env: { ...process.env, CI: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c));
    const done = new Promise<CliResult>((r) => child.on("close", (code) => r({ code, stdout, stderr: "" })));
    return { child, done, out: () => stdout };
  }
  const killScript = () =>
    onHost(`for p in $(pgrep -f models-download-); do [ "$(cat /proc/$p/comm)" = node ] && kill -KILL $p; done; true`);

  before(async () => {
    await ensureLab({ hosts: 6 });
    inv = await resetHost("lab6");
    hub = await startFakeHub({
      token: HF_TOKEN,
      tokens: [HF_OTHER],
      hf: {
        "org/models": { files: { "a.safetensors": FILES.a, "b.safetensors": FILES.b, "big.safetensors": FILES.big } },
        "org/gated": { gated: true, grantedTo: [HF_TOKEN], files: { "g.safetensors": FILES.g } },
      },
      civitai: [{ id: 77, files: [{ name: "c.safetensors", content: FILES.c }], needsToken: true }],
    });
    // one forward per port; without a bind address sshd listens on the host's loopback (v4 and v6), so "localhost" works too
    const ports = [new URL(hub.url).port, new URL(hub.cdnUrl).port];
    const forwards = ports.flatMap((p) => ["-R", `${p}:127.0.0.1:${p}`]);
    const t = spawn("ssh", ["-N", "-o", "ExitOnForwardFailure=yes", ...forwards, ...sshArgs()], { stdio: "ignore" });
    tunnels.push(t);
    const probe = `curl -s -o /dev/null -w '%{http_code}' ${hub.url}/nope; echo; curl -s -o /dev/null -w '%{http_code}' ${hub.cdnUrl}/x`;
    await until("the forwards", async () => (await onHost(probe)).includes("404\n403"), 20_000);

    dir = mkdtempSync(join(tmpdir(), "flow-models-"));
    const hf = (name: string, repo = "org/models") => `https://huggingface.co/${repo}/resolve/main/${name}`;
    mkdirSync(join(dir, "workflow_templates"));
    const w = (name: string, models: Parameters<typeof workflow>[0]) =>
      writeFileSync(join(dir, "workflow_templates", name), workflow(models));
    w("main.json", [
      { name: "a.safetensors", url: hf("a.safetensors"), directory: "loras" },
      { name: "b.safetensors", url: hf("b.safetensors"), directory: "diffusion_models" },
      { name: "c.safetensors", url: "https://civitai.com/api/download/models/77", directory: "checkpoints" },
    ]);
    w("gated.json", [{ name: "g.safetensors", url: hf("g.safetensors", "org/gated"), directory: "loras" }]);
    w("html.json", [{ name: "page.safetensors", url: "https://files.example.com/html/page.safetensors", directory: "loras" }]);
    w("big.json", [{ name: "big.safetensors", url: hf("big.safetensors"), directory: "checkpoints" }]);
    // a hostile origin: HEAD (the user's machine) sees a file, GET (the host) a redirect to the cloud's metadata service
    const meta = encodeURIComponent("http://169.254.169.254/latest/meta-data/");
    w("ssrf.json", [{ name: "meta.safetensors", url: `https://files.example.com/go?only=GET&to=${meta}`, directory: "loras" }]);
    w("org.json", [
      { name: "o.safetensors", url: "https://files.example.com/files/o.safetensors", directory: "loras" },
      { name: "b.safetensors", url: hf("b.safetensors"), directory: "diffusion_models" },
    ]);
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`import { models } from ${JSON.stringify(join(REPO, "plugins/models/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  // the fake hub is reached on loopback (through the SSH forwards on the host): listed, or every download is refused
  settings: { connectTimeoutMs: 8000, allowHosts: ${JSON.stringify([new URL(hub.url).host, new URL(hub.cdnUrl).host])} },
  plugins: [ops(), models({ connections: 4, mirrors: { "https://files.example.com/": ${JSON.stringify(hub.url + "/")} } })],
});`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    env = {
      FLOW_HF_URL: hub.url,
      FLOW_CIVITAI_URL: hub.url,
      FLOW_COMFY_DATA_URL: `${hub.url}/no-data/`,
      XDG_CACHE_HOME: join(dir, ".cache"),
      HF_TOKEN: "",
      CIVITAI_API_TOKEN: "",
    };
  });

  after(async () => {
    for (const t of tunnels) t.kill();
    await hub?.close();
  });

  test("fresh download: placed with the right sha256, no Authorization across the redirect, token never in ps", async () => {
    hub.resetStats();
    hub.faults.rate = 1 * MB; // per connection: the run lasts long enough for ps to see it
    const seen: string[] = [];
    let stop = false;
    const probe = (async () => {
      while (!stop) {
        seen.push(await onHost("ps -eo args"));
        await sleep(100);
      }
    })();
    const r = await run(["models:download", "--workflow", "workflow_templates/main.json"], { HF_TOKEN, CIVITAI_API_TOKEN: HF_TOKEN });
    stop = true;
    await probe;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 downloaded, 0 skipped, 0 failed/);
    assert.equal(await hostSha("loras/a.safetensors"), sha256(FILES.a));
    assert.equal(await hostSha("diffusion_models/b.safetensors"), sha256(FILES.b));
    assert.equal(await hostSha("checkpoints/c.safetensors"), sha256(FILES.c));
    const cdnAuth = hub.stats.cdnAuth;
    assert.ok(cdnAuth.length > 0 && cdnAuth.every((a) => a === undefined), `Authorization reached the CDN: ${cdnAuth}`);
    assert.ok(
      seen.some((s) => s.includes("models-download-")),
      "ps never saw the download",
    );
    assert.ok(!seen.some((s) => s.includes(HF_TOKEN)), "the token showed in ps on the host");
    assert.ok(!r.stdout.includes(HF_TOKEN) && !r.stderr.includes(HF_TOKEN));
    console.log(`fresh: ${hub.stats.bytes} bytes fetched for ${FILES.a.length + FILES.b.length + FILES.c.length}`);
  });

  test("re-run: everything skipped, 0 bytes fetched", async () => {
    hub.resetStats();
    const r = await run(["models:download", "--workflow", "workflow_templates/main.json"], { HF_TOKEN, CIVITAI_API_TOKEN: HF_TOKEN });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /0 downloaded, 3 skipped, 0 failed/);
    assert.equal(hub.stats.bytes, 0);
  });

  test("--dry-run scans the host: ok when every file is there, else which files and how many bytes", async () => {
    hub.resetStats();
    const tokens = { HF_TOKEN, CIVITAI_API_TOKEN: HF_TOKEN };
    const present = await run(["models:download", "--workflow", "workflow_templates/main.json", "--dry-run"], tokens);
    assert.equal(present.code, 0, present.stdout);
    assert.match(present.stdout, /download 3 files \(4 connections each\): ok \(all 3 files present\)/);
    assert.doesNotMatch(present.stdout, /would download/);
    const both = ["--workflow", "workflow_templates/main.json", "--workflow", "workflow_templates/big.json"];
    const missing = await run(["models:download", ...both, "--dry-run"], tokens);
    assert.equal(missing.code, 0, missing.stdout);
    assert.match(missing.stdout, /would download checkpoints\/big\.safetensors \(16\.8 MB\)/);
    assert.match(missing.stdout, /download 4 files .*: would change \(would download 1 of 4 files, 16\.8 MB\)/);
    assert.doesNotMatch(missing.stdout, /would download loras\/a\.safetensors/);
    assert.equal(hub.stats.bytes, 0);
    assert.equal((await onHost(`ls ${ROOT}/checkpoints/ | grep -c big || true`)).trim(), "0");
  });

  test("gated file without a token fails before any download; a wrong token is named, its value never shown", async () => {
    hub.resetStats();
    const r = await run(["models:download", "--workflow", "workflow_templates/gated.json", "--workflow", "workflow_templates/big.json"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /g\.safetensors is in the gated or private repository org\/gated: set HF_TOKEN/);
    assert.equal(hub.stats.requests, 0, "bytes were requested before the token problem was reported");
    assert.equal((await onHost(`ls ${ROOT}/checkpoints/ | grep -c big || true`)).trim(), "0");
    // a wrong token: whoami refuses it before any lookup, the message names HF_TOKEN, never its value
    const wrong = "hf_wrong_" + Math.random().toString(36).slice(2, 12);
    hub.resetStats();
    const w = await run(["models:download", "--workflow", "workflow_templates/gated.json"], { HF_TOKEN: wrong });
    // the preflight stops the run before any host is touched: exit 2, nothing on stdout (no run started)
    assert.equal(w.code, 2, w.stdout + w.stderr);
    assert.equal(w.stdout, "");
    assert.match(w.stderr, /Hugging Face refused HF_TOKEN \(HTTP 401 from .*\/api\/whoami-v2\)/);
    assert.ok(!w.stdout.includes(wrong) && !w.stderr.includes(wrong));
    const asked = hub.stats.seen.filter((x) => !x.startsWith("GET /no-data/"));
    assert.deepEqual(asked, ["GET /api/whoami-v2"], "a lookup went out with a refused token");
    // a good token the gated repository did not grant: named with the file and the repository
    const other = await run(["models:download", "--workflow", "workflow_templates/gated.json"], { HF_TOKEN: HF_OTHER });
    assert.equal(other.code, 1);
    assert.match(other.stdout, /Hugging Face refused HF_TOKEN for g\.safetensors in org\/gated \(HTTP 403\)/);
    assert.ok(!other.stdout.includes(HF_OTHER));
    assert.equal(hub.stats.requests, 0, "bytes were requested");
    const cw = await run(["models:download", "--workflow", "workflow_templates/main.json"], { HF_TOKEN, CIVITAI_API_TOKEN: wrong });
    assert.equal(cw.code, 1);
    assert.match(cw.stdout, /CivitAI refused CIVITAI_API_TOKEN/);
    assert.ok(!cw.stdout.includes(wrong));
  });

  test("an HTML page is refused, never saved as a model", async () => {
    const r = await run(["models:download", "--workflow", "workflow_templates/html.json"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /page\.safetensors.*HTML page/);
    assert.equal((await onHost(`test -e ${ROOT}/loras/page.safetensors && echo yes || echo no`)).trim(), "no");
  });

  test("the host refuses a redirect the user's machine never saw: to the cloud's metadata service", async () => {
    hub.resetStats();
    const r = await run(["models:download", "--workflow", "workflow_templates/ssrf.json"]);
    assert.equal(r.code, 1, r.stdout);
    const refusal = new RegExp(
      "failed loras/meta\\.safetensors: refused redirect from http://127\\.0\\.0\\.1:\\d+/go " +
        "to http://169\\.254\\.169\\.254/latest/meta-data/: " +
        "169\\.254\\.169\\.254 is a link-local address",
    );
    assert.match(r.stdout, refusal);
    const asked = hub.stats.seen.filter((x) => !x.startsWith("GET /no-data/")); // reference data: none here
    assert.deepEqual(asked, ["HEAD /go", "GET /go"], "the user's machine asked with HEAD, the host with GET; nothing else");
    assert.equal((await onHost(`test -e ${ROOT}/loras/meta.safetensors && echo yes || echo no`)).trim(), "no");
  });

  test("SIGKILL of the script at half, a corrupted byte in what was written: resumed, the bad copy never placed, <= 1.05x", async () => {
    hub.resetStats();
    hub.faults.rate = 1 * MB;
    const first = await flowChild(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    await until("half of big", async () => (await doneBytes()) >= FILES.big.length / 2, 60_000);
    await killScript();
    const r1 = await first.done;
    assert.equal(r1.code, 1, r1.stdout);
    const atKill = hub.stats.bytes;
    hub.faults.rate = undefined;
    const r2 = await run(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    assert.equal(r2.code, 0, r2.stdout);
    assert.equal(await hostSha("checkpoints/big.safetensors"), sha256(FILES.big));
    const ratio = hub.stats.bytes / FILES.big.length;
    console.log(`resume: ${atKill} bytes before the kill, ${hub.stats.bytes} in total for ${FILES.big.length} (${ratio.toFixed(3)}x)`);
    assert.ok(ratio <= 1.05, `fetched ${ratio}x the file`);

    // again, now with a flipped byte inside the part already written before the re-run
    await onHost(`rm -f ${ROOT}/checkpoints/big.safetensors ${ROOT}/checkpoints/.big.safetensors.sha256`);
    hub.resetStats();
    hub.faults.rate = 1 * MB;
    const third = await flowChild(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    await until("half of big", async () => (await doneBytes()) >= FILES.big.length / 2, 60_000);
    await killScript();
    await third.done;
    hub.faults.rate = undefined;
    await onHost(`printf 'XXXXXXXX' | dd of=${ROOT}/checkpoints/big.safetensors.part bs=1 seek=1000 conv=notrunc 2>/dev/null`);
    const r4 = await run(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    assert.equal(r4.code, 0, r4.stdout);
    assert.equal(await hostSha("checkpoints/big.safetensors"), sha256(FILES.big));
    console.log(`corrupted part: ${hub.stats.bytes} bytes fetched in total for ${FILES.big.length}`);
  });

  test("flow disconnected mid-download: the download goes on, cleanup leaves its .part alone, a re-run re-attaches", async () => {
    await onHost(`rm -f ${ROOT}/checkpoints/big.safetensors ${ROOT}/checkpoints/.big.safetensors.sha256`);
    hub.resetStats();
    hub.faults.rate = 256 * 1024;
    const first = await flowChild(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    await until("some of big", async () => (await doneBytes()) >= FILES.big.length / 16, 60_000);
    first.child.kill("SIGKILL");
    await first.done;
    const before = await doneBytes();
    await sleep(1500);
    assert.ok((await doneBytes()) > before, "the download stopped with flow");
    // a download is running: no .part is touched, whoever needs it
    const keep = ["--workflow", "workflow_templates/main.json", "--workflow", "workflow_templates/org.json"];
    const c = await run(["models:cleanup", ...keep, "--yes"]);
    assert.equal(c.code, 0, c.stdout);
    assert.match(c.stdout, /a download is running: leaving 2 partial files alone/);
    assert.equal((await onHost(`test -e ${ROOT}/checkpoints/big.safetensors.part && echo yes`)).trim(), "yes");
    const attach = run(["models:download", "--workflow", "workflow_templates/big.json", "--connections", "2"]);
    await sleep(4000); // attached and shown some progress by now: let the rest go fast
    hub.faults.rate = 4 * MB;
    const again = await attach;
    assert.equal(again.code, 0, again.stdout);
    assert.match(again.stdout, /re-attached/);
    assert.match(again.stdout, / \/ 16\.8 MB \d+% at .*ETA/);
    assert.equal(await hostSha("checkpoints/big.safetensors"), sha256(FILES.big));
    hub.faults.rate = undefined;
  });

  test("report: per-folder sizes, free space, ready or missing bytes per workflow", async () => {
    const both = ["--workflow", "workflow_templates/main.json", "--workflow", "workflow_templates/org.json"];
    const r = await run(["models:report", ...both], { HF_TOKEN, CIVITAI_API_TOKEN: HF_TOKEN });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /loras\s+1 files\s+3\.15 MB/);
    assert.match(r.stdout, /free of/);
    assert.match(r.stdout, /workflow_templates\/main\.json: ok \(ready\)/);
    assert.match(r.stdout, /missing loras\/o\.safetensors \(size unknown\)/);
  });

  test("organize: dry-run shows moves; a real run moves and hardlinks identical files", async () => {
    await onHost(
      [
        `mkdir -p ${ROOT}/checkpoints ${ROOT}/vae`,
        `head -c 5000 /dev/urandom > ${ROOT}/checkpoints/o.safetensors`,
        `head -c 7000 /dev/urandom > ${ROOT}/vae/d1.safetensors`,
        `cp ${ROOT}/vae/d1.safetensors ${ROOT}/vae/d2.safetensors`,
        `mv ${ROOT}/diffusion_models/b.safetensors ${ROOT}/loras/b.safetensors`,
      ].join(" && "),
    );
    const dry = await run(["models:organize", "--workflow", "workflow_templates/org.json", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stdout);
    assert.match(dry.stdout, /would move checkpoints\/o\.safetensors -> loras\/o\.safetensors/);
    assert.match(dry.stdout, /would move loras\/b\.safetensors -> diffusion_models\/b\.safetensors/);
    assert.match(dry.stdout, /would link vae\/d2\.safetensors -> vae\/d1\.safetensors/);
    assert.equal((await onHost(`test -e ${ROOT}/checkpoints/o.safetensors && echo yes`)).trim(), "yes");
    const r = await run(["models:organize", "--workflow", "workflow_templates/org.json"]);
    assert.equal(r.code, 0, r.stdout);
    const moved = await onHost(`test -e ${ROOT}/loras/o.safetensors && test ! -e ${ROOT}/checkpoints/o.safetensors && echo yes`);
    assert.equal(moved.trim(), "yes");
    assert.equal(await hostSha("diffusion_models/b.safetensors"), sha256(FILES.b));
    assert.equal((await onHost(`stat -c %i ${ROOT}/vae/d1.safetensors ${ROOT}/vae/d2.safetensors | uniq | wc -l`)).trim(), "1");
    const again = await run(["models:organize", "--workflow", "workflow_templates/org.json"]);
    assert.match(again.stdout, /every needed model is where ComfyUI looks/);
    assert.match(again.stdout, /no duplicates/);
  });

  test("cleanup: lists unused files with sizes; --yes deletes them; what any workflow needs stays, --workflow or not", async () => {
    await onHost(`head -c 4000 /dev/urandom > ${ROOT}/loras/stale.safetensors`);
    const list = await run(["models:cleanup", "--workflow", "workflow_templates/org.json"]);
    assert.equal(list.code, 0, list.stdout);
    assert.match(list.stdout, /unused loras\/stale\.safetensors \(4\.00 KB\)/);
    assert.match(list.stdout, /unused vae\/d1\.safetensors \(7\.00 KB, 2 links\)/);
    assert.match(list.stdout, /run with --yes to delete them/);
    // main.json and big.json need these: --workflow org.json must not make them unused
    assert.doesNotMatch(list.stdout, /loras\/a\.safetensors|checkpoints\/c\.safetensors|checkpoints\/big\.safetensors/);
    assert.match(list.stdout, /keeping the models of every workflow in workflow_templates\/ too/);
    const del = await run(["models:cleanup", "--workflow", "workflow_templates/org.json", "--yes"]);
    assert.equal(del.code, 0, del.stdout);
    assert.match(del.stdout, /deleted \d+ files/);
    const gone = await onHost(`test -e ${ROOT}/loras/stale.safetensors || test -e ${ROOT}/vae/d1.safetensors || echo gone`);
    assert.equal(gone.trim(), "gone");
    const kept = [
      "loras/a.safetensors",
      "checkpoints/c.safetensors",
      "checkpoints/big.safetensors",
      "loras/o.safetensors",
      "diffusion_models/b.safetensors",
    ];
    assert.equal((await onHost(`${kept.map((k) => `test -e ${ROOT}/${k}`).join(" && ")} && echo kept`)).trim(), "kept");
  });
});
