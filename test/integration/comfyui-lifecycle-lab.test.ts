// comfyui:restart, comfyui:snapshot and comfyui:update against a real lab host (lab10) running the
// lab image (the real comfyui-api in front of the stand-in ComfyUI). Two more images are made on
// the host's own engine from the stand-in: one that fails at start-up (FAIL_STARTUP=1 committed
// into its environment) and a plain second tag of the stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO, type CliResult } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const why = await labUnavailableReason();
const HOST = "lab10";
const BROKEN = "flow-comfy-standin:broken";
const GOOD = "flow-comfy-standin:second";
const SNAPSHOTS = "/home/ubuntu/backups/snapshots";
const PROMPT_MS = 4000;
const PYTHON = "/opt/flow/python";
const WHEELS = `${PYTHON}/.wheels`;
// pip in the container finds the test's own wheels, offline
const ENV = { PROMPT_DURATION_MS: String(PROMPT_MS), PIP_NO_INDEX: "1", PIP_FIND_LINKS: WHEELS };

// Two versions of a small package, built into wheels in the container (the stand-in has python,
// pip and setuptools, no coreutils); 1.0 has a module 2.0 does not.
const BUILD_WHEELS = `import os, shutil, subprocess, sys
for v in ("1.0", "2.0"):
    src = "/tmp/lab-pkg-" + v
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src + "/labpkg")
    open(src + "/labpkg/__init__.py", "w").write("V = %r\\n" % v)
    if v == "1.0":
        open(src + "/labpkg/old_only.py", "w").write("X = 1\\n")
    open(src + "/setup.py", "w").write('from setuptools import setup\\nsetup(name="lab_pkg", version="%s", packages=["labpkg"])\\n' % v)
    wheel = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", "${WHEELS}", src]
    subprocess.run([sys.executable, "-m", "pip", *wheel], check=True, cwd="/tmp")
`;
// The target as another install would leave it at `version`: that version's files only.
const PIP_AT = (version: string) => `import os, shutil, subprocess, sys, glob
t = "${PYTHON}"
for p in glob.glob(t + "/lab_pkg-*.dist-info") + glob.glob(t + "/labpkg"):
    shutil.rmtree(p)
subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", "/tmp/pip-at", "lab_pkg==${version}"], check=True)
for e in os.listdir("/tmp/pip-at"):
    shutil.move("/tmp/pip-at/" + e, t + "/" + e)
os.rmdir("/tmp/pip-at")
`;

function recap(stdout: string): { ok: number; changed: number; failed: number } {
  const m = new RegExp(`^${HOST}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+\\d+\\s+(\\d+)\\s+[\\d.]+s`, "m").exec(stdout);
  assert.ok(m, `no recap line in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, failed: +m[3]! };
}

describe("comfyui:restart, comfyui:snapshot, comfyui:update on a lab host", { skip: why ?? false, timeout: 15 * 60_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  let first = ""; // the snapshot saved by hand, before any update

  const sh = async (script: string) => {
    const r = await run("ssh", sshArgv(inv.hosts[HOST]!.port, "ubuntu", "sudo sh -s"), {
      input: `set -eu\n${script}\n`,
      allowFail: true,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `${script}\n${r.stdout}\n${r.stderr}`);
    return r.stdout.trim();
  };
  const image = () => sh("docker inspect -f '{{.Config.Image}}' comfyui");
  const started = () => sh("docker inspect -f '{{.State.StartedAt}}' comfyui");
  const health = () => sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/health || true");
  const prompt = () =>
    sh(
      `curl -s -H 'content-type: application/json' ` +
        `-d '{"prompt":{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":1,"color":0}},` +
        `"9":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"drain"}}}}' http://127.0.0.1:8188/prompt`,
    );
  const inContainer = (python: string) => sh(`docker exec -i comfyui python3 - <<'PY'\n${python}PY`);
  const pipState = () =>
    inContainer(
      `import glob, os, sys\nsys.path.insert(0, "${PYTHON}")\nimport labpkg\n` +
        `metas = sorted(os.path.basename(p) for p in glob.glob("${PYTHON}/*.dist-info"))\n` +
        `print(labpkg.V, os.path.exists("${PYTHON}/labpkg/old_only.py"), metas)\n`,
    );
  const timed = async (args: string[]): Promise<CliResult & { ms: number }> => {
    const t0 = Date.now();
    const r = await flow(["run", ...args, "--hosts", HOST], { cwd: dir });
    return { ...r, ms: Date.now() - t0 };
  };

  before(async () => {
    await ensureLab({ hosts: 10 });
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST, (m) => process.stderr.write(`[standin] ${m}\n`));
    dir = mkdtempSync(join(tmpdir(), "flow-comfyui-lifecycle-"));
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { comfyui } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  plugins: [ops(), comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 60, env: ${JSON.stringify(ENV)} })],
});`),
    );
    const up = await timed(["comfyui:up"]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    await inContainer(BUILD_WHEELS);
    await inContainer(PIP_AT("1.0"));
    assert.equal(await pipState(), "1.0 True ['lab_pkg-1.0.dist-info']");
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("comfyui:restart waits for the running prompt, restarts, waits for health; a long queue is waited for only so long", async (t) => {
    assert.match(await prompt(), /prompt_id/);
    const was = await started();
    const r = await timed(["comfyui:restart"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /queue drained \(GET :8188\/queue\): ok \(waited \d+s for 1 running, 0 pending\)/);
    assert.match(r.stdout, /restart container comfyui: changed/);
    assert.match(r.stdout, /comfyui-api healthy \(GET :3000\/health and \/ready\): ok \(after \d+s, serves comfyui-api /);
    assert.notEqual(await started(), was, "the container restarted");
    assert.equal(await health(), "200");
    assert.ok(r.ms >= PROMPT_MS / 2, `it waited for the prompt (${r.ms} ms)`);
    t.diagnostic(`comfyui:restart with a ${PROMPT_MS} ms prompt running: ${r.ms} ms`);

    assert.match(await prompt(), /prompt_id/);
    const impatient = await timed(["comfyui:restart", "--drain-timeout", "1"]);
    assert.equal(impatient.code, 0, impatient.stdout + impatient.stderr);
    assert.match(impatient.stdout + impatient.stderr, /the queue did not drain within 1s \(1 running, 0 pending\): restarting anyway/);
    assert.ok(impatient.ms < 30_000, `${impatient.ms} ms`);
    t.diagnostic(`comfyui:restart --drain-timeout 1 with a prompt running: ${impatient.ms} ms`);
  });

  test("comfyui:snapshot save, then list shows it", async () => {
    const save = await timed(["comfyui:snapshot", "save"]);
    assert.equal(save.code, 0, save.stdout + save.stderr);
    const said = new RegExp(
      String.raw`snapshot in \S+: changed \((\d{8}T\d{6}Z-[0-9a-f]{4}): ` +
        String.raw`flow-comfy-standin:latest, ComfyUI 0\.19\.3-standin, 1 pack, 1 pip package\)`,
    );
    first = said.exec(save.stdout)?.[1]!;
    assert.ok(first, save.stdout);
    const file = JSON.parse(await sh(`cat ${SNAPSHOTS}/${first}/snapshot.json`));
    assert.equal(file.image, STANDIN_TAG);
    assert.match(file.imageId, /^sha256:/);
    assert.deepEqual(
      file.packs.map((p: { name: string }) => p.name),
      ["ComfyUI-Manager"],
    );
    assert.deepEqual(file.pip, { available: true, freeze: ["lab-pkg==1.0"] });
    const list = await timed(["comfyui:snapshot", "list"]);
    assert.equal(list.code, 0, list.stdout + list.stderr);
    assert.match(list.stdout, new RegExp(`^(\\[lab10\\] )?${first}\\s+flow-comfy-standin:latest\\s+0\\.19\\.3-standin\\s+1\\s+1$`, "m"));
    const json = await flow(["run", "comfyui:snapshot", "list", "--hosts", HOST, "--json"], { cwd: dir });
    assert.match(json.stdout, new RegExp(`"id":"${first}"`));
    const unknown = await timed(["comfyui:snapshot", "restore", "20200101T000000Z-0000"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout + unknown.stderr, new RegExp(`no snapshot "20200101T000000Z-0000" on this host; it has: ${first}`));
  });

  test("comfyui:update to an image that fails at start-up rolls back by itself; the old image serves again", async (t) => {
    await sh(
      `docker rm -f flow-mk-broken >/dev/null 2>&1 || true\n` +
        `docker create --name flow-mk-broken ${STANDIN_TAG} >/dev/null\n` +
        `docker commit -c 'ENV FAIL_STARTUP=1' flow-mk-broken ${BROKEN} >/dev/null\n` +
        `docker rm flow-mk-broken >/dev/null\n` +
        `docker tag ${STANDIN_TAG} ${GOOD}`,
    );
    const noTag = await timed(["comfyui:update", "--version", "0.3.60"]);
    assert.equal(noTag.code, 1);
    assert.match(noTag.stdout + noTag.stderr, /the image flow-comfy-standin:latest has no comfy<version> part in its tag latest/);

    const r = await timed(["comfyui:update", "--image", BROKEN]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /snapshot in \S+ \(before comfyui:update to flow-comfy-standin:broken\): changed/);
    assert.match(r.stdout, /image flow-comfy-standin:broken on the host: ok \(present \(not pulled\)\)/);
    assert.match(
      r.stdout,
      new RegExp(
        "container comfyui re-created with flow-comfy-standin:broken, check GET /health and /ready " +
          String.raw`and the workflows' node classes: failed \(comfyui-api exited`,
      ),
    );
    assert.match(r.stdout, /roll back to flow-comfy-standin:latest: changed \(serves again after \d+s\)/);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(
        String.raw`comfyui:update to flow-comfy-standin:broken failed \(comfyui-api exited[^\n]*\): ` +
          "rolled back to flow-comfy-standin:latest, which serves again",
      ),
    );
    assert.match(r.stdout + r.stderr, /stand-in start-up failure/, "the failing image's log lines are shown");
    assert.equal(await image(), STANDIN_TAG);
    assert.equal(await health(), "200");
    assert.doesNotMatch(await sh("cat /home/ubuntu/.flow/host.json"), /broken/);
    assert.ok(r.ms < 60_000, `a start-up failure is seen at once (${r.ms} ms)`);
    t.diagnostic(`comfyui:update to a failing image, rolled back: ${r.ms} ms`);
  });

  test("comfyui:update to a good image; again: 0 changed, no restart; comfyui:up keeps it", async (t) => {
    const r = await timed(["comfyui:update", "--image", GOOD]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /container comfyui re-created with flow-comfy-standin:second, check .*: changed \(serves after \d+s; was flow-comfy-standin:latest\)/,
    );
    assert.match(r.stdout, /image flow-comfy-standin:second recorded on the host .*: changed/);
    assert.equal(await image(), GOOD);
    assert.equal(await health(), "200");
    t.diagnostic(`comfyui:update to a second tag: ${r.ms} ms`);

    const was = await started();
    const again = await timed(["comfyui:update", "--image", GOOD]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(recap(again.stdout).changed, 0, again.stdout);
    assert.equal(await started(), was, "no restart");
    t.diagnostic(`comfyui:update again, nothing to do: ${again.ms} ms`);

    const up = await timed(["comfyui:up"]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.equal(recap(up.stdout).changed, 0, up.stdout);
    assert.match(up.stdout + up.stderr, /image flow-comfy-standin:second: chosen by comfyui:update/);
    assert.equal(await image(), GOOD);
    assert.equal(await started(), was, "comfyui:up did not switch back");
  });

  test("comfyui:snapshot restore brings back the image and the pip packages; a pack added since is moved aside", async (t) => {
    await inContainer(PIP_AT("2.0"));
    assert.equal(await pipState(), "2.0 False ['lab_pkg-2.0.dist-info']");
    await sh(
      "mkdir -p /home/ubuntu/comfyui/custom_nodes/lab-extra && " +
        `echo '["LabExtraNode"]' > /home/ubuntu/comfyui/custom_nodes/lab-extra/flow-standin-nodes.json`,
    );
    const r = await timed(["comfyui:snapshot", "restore", first]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /container comfyui re-created with flow-comfy-standin:latest, check GET \/health and \/ready: changed/);
    assert.match(
      r.stdout,
      new RegExp(`packs the snapshot does not have moved to ${SNAPSHOTS}/${first}/removed: changed \\(moved lab-extra\\)`),
    );
    assert.match(r.stdout, /pip packages in \/opt\/flow\/python as in the snapshot: changed \(installed lab-pkg==1\.0\)/);
    assert.match(r.stdout, /restart container comfyui: changed/);
    assert.equal(await image(), STANDIN_TAG);
    assert.equal(await health(), "200");
    assert.equal(await pipState(), "1.0 True ['lab_pkg-1.0.dist-info']", "1.0 back, 2.0's metadata gone");
    assert.equal(await inContainer(`import glob\nprint(glob.glob("${PYTHON}/.flow-restore.*"))\n`), "[]");
    assert.equal(await sh(`cat ${SNAPSHOTS}/${first}/removed/lab-extra/flow-standin-nodes.json`), '["LabExtraNode"]');
    assert.equal(await sh("test -e /home/ubuntu/comfyui/custom_nodes/lab-extra && echo there || echo gone"), "gone");
    t.diagnostic(`comfyui:snapshot restore (image and a pack): ${r.ms} ms`);

    const again = await timed(["comfyui:snapshot", "restore", first]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(recap(again.stdout).changed, 0, again.stdout);
    const up = await timed(["comfyui:up"]);
    assert.equal(recap(up.stdout).changed, 0, up.stdout);
    assert.equal(await image(), STANDIN_TAG);
  });
});
