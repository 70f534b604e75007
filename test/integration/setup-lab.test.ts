// setup:lambda / setup:datacrunch end to end on lab hosts with the comfyui-api stand-in image:
// dry run changes nothing, both ports answer, a second run changes nothing, one env change
// re-creates the container and nothing else, a failed health check shows the container's log.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";

const why = await labUnavailableReason();

function ssh(inv: LabInventory, name: string, command: string, user?: string): { code: number | null; out: string } {
  const h = inv.hosts[name]!;
  const r = spawnSync("ssh", sshArgv(h.port, user ?? h.user, command));
  return { code: r.status, out: r.stdout.toString() + r.stderr.toString() };
}

function recapOf(stdout: string, host: string): { ok: number; changed: number; skipped: number; failed: number; seconds: number } {
  const m = new RegExp(`^${host}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+([\\d.]+)s`, "m").exec(stdout);
  assert.ok(m, `no recap line for ${host} in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, skipped: +m[3]!, failed: +m[4]!, seconds: +m[5]! };
}

describe("provider setup on lab hosts", { skip: why ?? false, timeout: 900_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  before(async () => {
    await ensureLab({ hosts: 5, docker: true });
    await resetHost("lab4");
    inv = await resetHost("lab5");
    for (const h of ["lab4", "lab5"]) await ensureStandinImage(inv, h);
    // the same lab hosts, once more as root logins (DataCrunch boxes log in as root)
    const raw = JSON.parse(readFileSync(join(REPO, ".lab/inventory.json"), "utf8"));
    const asRoot = { knownHostsFile: join(REPO, ".lab", raw.knownHostsFile), hosts: {} as Record<string, unknown> };
    for (const [n, h] of Object.entries(raw.hosts) as [string, Record<string, unknown>][]) {
      asRoot.hosts[`root-${n}`] = { ...h, user: "root", identityFile: join(REPO, ".lab", String(h.identityFile)), groups: ["root-lab"] };
    }
    dir = mkdtempSync(join(tmpdir(), "flow-setup-"));
    writeFileSync(join(dir, "root-inventory.json"), JSON.stringify(asRoot));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { lambda, datacrunch } from ${JSON.stringify(join(REPO, "providers/index.ts"))};
import { comfyui } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
const env: Record<string, string> = { FLOW_TEST_ENV: process.env.FLOW_TEST_ENV ?? "a" };
if (process.env.FLOW_TEST_FAIL) env.FAIL_STARTUP = "1";
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}, "root-inventory.json"],
  providers: [lambda(), datacrunch()],
  plugins: [ops(), comfyui({ image: process.env.FLOW_TEST_IMAGE ?? ${JSON.stringify(STANDIN_TAG)}, env, healthTimeoutSeconds: 90 })],
});`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  });

  test("--dry-run on a fresh host lists what would change and changes nothing", async () => {
    const r = await flow(["run", "setup:lambda", "--hosts", "lab4", "--dry-run"], { cwd: dir });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const step of [
      /node runtime: would change/,
      /folders under \/home\/ubuntu: would change \(\d+ missing\)/,
      /custom_nodes keeps .*: would change/,
      /container comfyui .*: would change \(missing\)/,
    ]) {
      assert.match(r.stdout, step);
    }
    assert.equal(ssh(inv, "lab4", "test -e /home/ubuntu/comfyui || test -e ~/.flow/node; echo $?").out.trim(), "1");
    assert.equal(ssh(inv, "lab4", "sudo -n docker ps -aq | wc -l").out.trim(), "0");
  });

  test("two hosts set up in parallel; 8188 and 3000 answer; a second run changes nothing, and is quick", async () => {
    const first = await flow(["run", "setup:lambda", "--hosts", "lab4,lab5"], { cwd: dir });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    for (const h of ["lab4", "lab5"]) {
      assert.equal(ssh(inv, h, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/health").out, "200");
      assert.equal(ssh(inv, h, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8188/").out, "200");
      assert.match(
        ssh(inv, h, "curl -s http://127.0.0.1:8188/manager/version").out,
        /./,
        "ComfyUI-Manager hidden by the mounted custom_nodes",
      );
    }
    const firstRecap = recapOf(first.stdout, "lab4");
    const second = await flow(["run", "setup:lambda", "--hosts", "lab4"], { cwd: dir });
    const secondRecap = recapOf(second.stdout, "lab4");
    assert.equal(secondRecap.changed, 0, second.stdout);
    assert.equal(secondRecap.failed, 0);
    console.log(
      `# setup:lambda on a lab host: first run ${firstRecap.seconds}s (${firstRecap.changed} changed), ` +
        `second ${secondRecap.seconds}s (0 changed), ratio ${(secondRecap.seconds / firstRecap.seconds).toFixed(2)}`,
    );
  });

  test("changing one env value re-creates the container and nothing else", async () => {
    const r = await flow(["run", "setup:lambda", "--hosts", "lab4"], { cwd: dir, env: { FLOW_TEST_ENV: "b" } });
    assert.equal(r.code, 0, r.stdout);
    const rc = recapOf(r.stdout, "lab4");
    assert.equal(rc.changed, 1, r.stdout);
    assert.match(r.stdout, /container comfyui .*: changed \(created, spec/);
    assert.match(
      ssh(inv, "lab4", "sudo -n docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' comfyui").out,
      /^FLOW_TEST_ENV=b$/m,
    );
  });

  test("an image that cannot be had fails the step and leaves the running container alone", async () => {
    const r = await flow(["run", "setup:lambda", "--hosts", "lab4", "--health-timeout", "5"], {
      cwd: dir,
      env: { FLOW_TEST_ENV: "b", FLOW_TEST_IMAGE: "flow-comfy-standin:no-such-tag!" },
    });
    // an invalid reference is refused by the image step before anything runs: no registry is asked
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /not an image reference \(bad tag\): "flow-comfy-standin:no-such-tag!"/);
    assert.equal(
      ssh(inv, "lab4", "sudo -n docker inspect -f '{{.State.Status}} {{.Config.Image}}' comfyui").out.trim(),
      `running ${STANDIN_TAG}`,
    );
    assert.equal(ssh(inv, "lab4", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/health").out, "200");
  });

  test("a failed health check reports the container's last log lines", async () => {
    const r = await flow(["run", "setup:lambda", "--hosts", "lab5", "--health-timeout", "8"], { cwd: dir, env: { FLOW_TEST_FAIL: "1" } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /no 200 from http:\/\/127\.0\.0\.1:3000\/health within 8s; last 50 lines of the comfyui container's log:/);
    assert.match(r.stdout, /FAIL_STARTUP|exit|MODEL_DIR|did not start/i);
  });

  test("setup:datacrunch as root: the volume step is skipped without a device; data root /home/user", async () => {
    const r = await flow(["run", "setup:datacrunch", "--hosts", "root-lab5", "--volume", "/dev/flow-no-such-disk"], { cwd: dir });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /volume \/dev\/flow-no-such-disk: skipped \(no block device/);
    assert.match(r.stdout, /folders under \/home\/user: changed/);
    assert.equal(ssh(inv, "lab5", "test -d /home/user/comfyui/models/checkpoints && echo yes", "root").out.trim(), "yes");
    assert.equal(ssh(inv, "lab5", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/health").out, "200");
    // later tasks find the data root setup chose, without being told again
    const st = await flow(["run", "status", "--hosts", "root-lab5", "--json"], { cwd: dir });
    const data = st.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.type === "data");
    assert.equal(data.data.status.disk.path, "/home/user");
  });
});
