// Command builders are data: compared as strings/argv, and run through a real sh where that says more.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runArgv, specHash, parseContainerFact, type ContainerSpec } from "../../lib/commands/docker.ts";
import { mergeDaemonJson, parseVolumeFact, addFstab } from "../../lib/commands/system.ts";
import { acquireLock, readLock, releaseLock, parseLockDetails } from "../../lib/commands/lock.ts";
import { comfyContainerSpec, comfyLayout, layoutDirs } from "../../lib/comfy/deploy.ts";
import { parseNodeFact, versionAtLeast, nodeDistUrl } from "../../lib/commands/node.ts";
import { parseStatus, statusCommand } from "../../lib/facts/status.ts";

const sh = (script: string) => spawnSync("sh", ["-c", script], { encoding: "utf8" });

test("container spec: argv in a fixed order, a label with the spec's hash; any change changes the hash", () => {
  const spec = comfyContainerSpec({ image: "img:1", dataRoot: "/home/user", gpu: true, env: { A: "1" } });
  const argv = runArgv(spec);
  assert.deepEqual(argv.slice(0, 8), ["docker", "run", "-d", "--name", "comfyui", "--restart", "unless-stopped", "--gpus"]);
  assert.ok(argv.includes("/home/user/comfyui/custom_nodes:/opt/ComfyUI/custom_nodes"));
  assert.ok(argv.includes("WORKFLOW_DIR=/workflows"));
  assert.ok(argv.includes(`flow.spec-hash=${specHash(spec)}`));
  assert.equal(argv.at(-1), "img:1");
  const same = comfyContainerSpec({ image: "img:1", dataRoot: "/home/user/", gpu: true, env: { A: "1" } });
  assert.equal(specHash(same), specHash(spec), "trailing slash or key order must not change the hash");
  for (const other of [
    { image: "img:2", dataRoot: "/home/user", gpu: true, env: { A: "1" } },
    { image: "img:1", dataRoot: "/home/user", gpu: false, env: { A: "1" } },
    { image: "img:1", dataRoot: "/home/user", gpu: true, env: { A: "2" } },
  ]) assert.notEqual(specHash(comfyContainerSpec(other)), specHash(spec));
  const s2: ContainerSpec = { ...spec, env: Object.fromEntries(Object.entries(spec.env).reverse()) };
  assert.equal(specHash(s2), specHash(spec));
  assert.deepEqual(parseContainerFact("running abc\n"), { state: "running", hash: "abc" });
  assert.equal(parseContainerFact(""), null);
  const dirs = layoutDirs(comfyLayout("/d"));
  assert.ok(dirs.includes("/d/comfyui/models/checkpoints") && dirs.includes("/d/comfyui/models/unet") && dirs.includes("/d/comfyui-api/bin"));
});

test("daemon.json: cgroupfs exec-opt and nvidia runtime merged; unchanged gives null; bad JSON is named", () => {
  const merged = mergeDaemonJson('{"log-driver":"json-file","exec-opts":["native.cgroupdriver=systemd"]}', { nvidiaRuntime: true })!;
  const cfg = JSON.parse(merged);
  assert.deepEqual(cfg["exec-opts"], ["native.cgroupdriver=cgroupfs"]);
  assert.equal(cfg["log-driver"], "json-file");
  assert.equal(cfg.runtimes.nvidia.path, "nvidia-container-runtime");
  assert.equal(mergeDaemonJson(merged, { nvidiaRuntime: true }), null);
  assert.notEqual(mergeDaemonJson("", { nvidiaRuntime: true }), null);
  assert.throws(() => mergeDaemonJson("{oops", { nvidiaRuntime: true }), /daemon\.json is not valid JSON/);
});

test("volume fact parsing and the fstab line", () => {
  const f = parseVolumeFact("present\nDEVNAME=/dev/vdb\nUUID=1234-abcd\nTYPE=ext4\nBLKID_RC=0\nMOUNTED=/dev/vdb\nFSTAB=1\n");
  assert.deepEqual(f, { present: true, blank: false, type: "ext4", uuid: "1234-abcd", mountedFrom: "/dev/vdb", inFstab: true });
  assert.deepEqual(parseVolumeFact("absent\nBLKID_RC=2\nMOUNTED=\nFSTAB=0\n"), { present: false, blank: true, type: undefined, uuid: undefined, mountedFrom: undefined, inFstab: false });
  // ambivalent (several signatures): not blank, even though no TYPE was printed
  assert.equal(parseVolumeFact("present\nBLKID_RC=8\nMOUNTED=\nFSTAB=0\n").blank, false);
  assert.match(addFstab("1234-abcd", "/home/user", "ext4"), /UUID=1234-abcd \/home\/user ext4 defaults,nofail 0 2/);
  assert.throws(() => addFstab("x; rm -rf /", "/home/user", "ext4"), /not a filesystem UUID/);
});

test("lock commands: mkdir is the lock, details name the holder, release only our own", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-lock-"));
  const me = { holder: "a@b", task: "t", since: "now", pid: 1 };
  const other = { holder: "c@d", task: "u", since: "then", pid: 2 };
  assert.equal(sh(acquireLock(dir, me)).status, 0);
  const second = sh(acquireLock(dir, other));
  assert.equal(second.status, 1);
  assert.deepEqual(parseLockDetails(second.stdout), me);
  assert.deepEqual(parseLockDetails(sh(readLock(dir)).stdout), me);
  sh(releaseLock(dir, other));
  assert.ok(existsSync(join(dir, "lock")), "released someone else's lock");
  sh(releaseLock(dir, me));
  assert.ok(!existsSync(join(dir, "lock")));
  assert.equal(sh(readLock(dir)).stdout, "");
  assert.equal(sh(acquireLock(dir, { ...me, holder: "it's $(id)" })).status, 0);
  assert.equal(JSON.parse(readFileSync(join(dir, "lock/details"), "utf8")).holder, "it's $(id)");
});

test("node runtime fact and version checks", () => {
  assert.deepEqual(parseNodeFact("22.1.0\n\nx86_64\n"), { own: "22.1.0", system: null, arch: "x64" });
  assert.deepEqual(parseNodeFact("\n18.19.1\naarch64\n"), { own: null, system: "18.19.1", arch: "arm64" });
  assert.ok(versionAtLeast("20.18.0", "20.18.0") && versionAtLeast("22.0.0", "20.18.0") && !versionAtLeast("20.17.9", "20.18.0") && !versionAtLeast("18.20.4", "20.18.0"));
  assert.equal(nodeDistUrl("https://x/v{version}/node-v{version}-linux-{arch}.tar.gz", "22.1.0", "arm64"), "https://x/v22.1.0/node-v22.1.0-linux-arm64.tar.gz");
});

test("status fact: parses what this machine answers, and survives missing tools", () => {
  const r = sh(statusCommand("/"));
  const s = parseStatus(r.stdout, "/");
  assert.ok(s.os.length > 0 && s.memory && s.memory.totalMB > 0 && s.disk && s.disk.sizeGB > 0 && s.load);
  const bare = parseStatus("@@flow-section@@os\nX\nk\nh\n@@flow-section@@docker\n!docker-missing\n@@flow-section@@gpu\n!no-nvidia-smi\n", "/");
  assert.deepEqual([bare.os, bare.docker.state, bare.gpus, bare.disk], ["X", "missing", null, null]);
  const gpu = parseStatus("@@flow-section@@gpu\nNVIDIA H100 80GB HBM3, 1024, 81559, 37, 41\n", "/");
  assert.deepEqual(gpu.gpus, [{ name: "NVIDIA H100 80GB HBM3", memoryUsedMB: 1024, memoryTotalMB: 81559, utilization: 37, temperature: 41 }]);
});
