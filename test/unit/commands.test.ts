// Command builders are data: compared as strings/argv, and run through a real sh where that says more.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, existsSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runArgv, specHash, parseContainerFact, type ContainerSpec } from "../../lib/commands/docker.ts";
import { mergeDaemonJson, parseVolumeFact, addFstab, formatIfBlank, makeDirs, mountVolume, volumeFact } from "../../lib/commands/system.ts";
import { acquireLock, readLock, releaseLock, parseLockDetails } from "../../lib/commands/lock.ts";
import { comfyContainerSpec, comfyLayout, layoutDirs } from "../../lib/comfy/deploy.ts";
import { parseNodeFact, versionAtLeast, nodeDistUrl } from "../../lib/commands/node.ts";
import { parseStatus, statusCommand } from "../../lib/facts/status.ts";
import { scanCommand } from "../../plugins/models/commands.ts";

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
  ])
    assert.notEqual(specHash(comfyContainerSpec(other)), specHash(spec));
  const s2: ContainerSpec = { ...spec, env: Object.fromEntries(Object.entries(spec.env).reverse()) };
  assert.equal(specHash(s2), specHash(spec));
  assert.deepEqual(parseContainerFact("running abc\n"), { state: "running", hash: "abc" });
  assert.equal(parseContainerFact(""), null);
  const dirs = layoutDirs(comfyLayout("/d"));
  assert.ok(
    dirs.includes("/d/comfyui/models/checkpoints") && dirs.includes("/d/comfyui/models/unet") && dirs.includes("/d/comfyui-api/bin"),
  );
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
  assert.deepEqual(f, {
    present: true,
    blank: false,
    found: "a filesystem signature (ext4)",
    type: "ext4",
    uuid: "1234-abcd",
    mountedFrom: "/dev/vdb",
    inFstab: true,
  });
  assert.deepEqual(parseVolumeFact("absent\nBLKID_RC=2\nZEROS=yes\nMOUNTED=\nFSTAB=0\n"), {
    present: false,
    blank: true,
    found: undefined,
    type: undefined,
    uuid: undefined,
    mountedFrom: undefined,
    inFstab: false,
  });
  // ambivalent (several signatures): not blank, even though no TYPE was printed
  assert.equal(parseVolumeFact("present\nBLKID_RC=8\nMOUNTED=\nFSTAB=0\n").blank, false);
  assert.match(addFstab("1234-abcd", "/home/user", "ext4"), /UUID=1234-abcd \/home\/user ext4 defaults,nofail 0 2/);
  assert.throws(() => addFstab("x; rm -rf /", "/home/user", "ext4"), /not a filesystem UUID/);
});

const MiB = 1024 * 1024;
const scratch: string[] = [];
after(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * Stand-ins for the block tools, so formatIfBlank and volumeFact run on plain files as any user:
 * blkid answers `blkidExit` (and PTTYPE=gpt when 0), blockdev gives the file's size, mkfs.ext4 only
 * leaves a mark. cmp is the real one: the zero check itself is what is tested.
 */
function blockTools(blkidExit: number): { env: NodeJS.ProcessEnv; formatted: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "flow-blk-"));
  scratch.push(dir);
  const formatted = join(dir, "mkfs-ran");
  const tool = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  tool("blkid", blkidExit === 0 ? `echo DEVNAME=x; echo PTTYPE=gpt; exit 0` : `exit ${blkidExit}`);
  tool("blockdev", `[ "$1" = --getsize64 ] && stat -c %s -- "$2"`);
  tool("mkfs.ext4", `touch ${formatted}`);
  return { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, formatted, dir };
}

/** A sparse file of `size` bytes, with `data` written at each offset. */
function image(dir: string, name: string, size: number, at: number[] = []): string {
  const file = join(dir, name);
  writeFileSync(file, "");
  const fd = openSync(file, "r+");
  for (const o of at) writeSync(fd, Buffer.from("data"), 0, 4, o);
  closeSync(fd);
  sh(`truncate -s ${size} ${file}`);
  return file;
}

test("volume: a device blkid finds nothing on is blank only when its first and last 8 MiB are zeros", () => {
  const t = blockTools(2);
  const cases: [string, number, number[], string | null][] = [
    ["zeros", 64 * MiB, [], null],
    ["head", 64 * MiB, [5 * MiB], "no filesystem signature, but its first 8 MiB hold data"],
    ["tail", 64 * MiB, [64 * MiB - 4], "no filesystem signature, but its last 8 MiB hold data"],
    // under 16 MiB the windows overlap and stop at the end
    ["small-zeros", 3 * MiB, [], null],
    ["small-tail", 12 * MiB, [12 * MiB - 4], "no filesystem signature, but its last 8 MiB hold data"],
  ];
  for (const [name, size, at, found] of cases) {
    const dev = image(t.dir, name, size, at);
    const fact = parseVolumeFact(spawnSync("sh", ["-c", volumeFact(dev, "/nonexistent")], { encoding: "utf8", env: t.env }).stdout);
    assert.equal(fact.blank, found === null, name);
    assert.equal(fact.found, found ?? undefined, name);
    const r = spawnSync("sh", ["-c", formatIfBlank(dev)], { encoding: "utf8", env: t.env });
    assert.equal(existsSync(t.formatted), found === null, `${name}: ${r.stderr}`);
    if (found) assert.deepEqual([r.status, r.stderr], [3, `refusing to format '${dev}': ${found}\n`], name);
    else assert.equal(r.status, 0, r.stderr);
    sh(`rm -f ${t.formatted}`);
  }
  const gone = spawnSync("sh", ["-c", formatIfBlank(join(t.dir, "missing"))], { encoding: "utf8", env: t.env });
  assert.equal(gone.status, 3);
  assert.match(gone.stderr, /could not be read/);
  assert.ok(!existsSync(t.formatted));
});

test("volume: the refusal names the device as text; a name holding $(...) runs nothing", () => {
  for (const blkidExit of [0, 2]) {
    const t = blockTools(blkidExit);
    const pwned = join(t.dir, "pwned");
    for (const dev of [`/dev/x$(touch ${pwned})`, `/dev/x'$(touch ${pwned})"\`touch ${pwned}\`'`]) {
      const r = spawnSync("sh", ["-c", formatIfBlank(dev)], { encoding: "utf8", env: t.env });
      assert.ok(!existsSync(pwned), `blkid exit ${blkidExit}, ${dev}: the device name was run as a command`);
      assert.ok(!existsSync(t.formatted), `blkid exit ${blkidExit}, ${dev}: mkfs ran`);
      assert.equal(r.status, 3, r.stderr);
      assert.ok(r.stderr.startsWith(`refusing to format '${dev}': `), r.stderr);
      if (blkidExit === 0) assert.equal(r.stderr, `refusing to format '${dev}': a partition table (gpt)\n`);
    }
  }
});

test("paths after `--`: mkfs, mount, blkid, df, mkdir never read a path as an option", () => {
  assert.match(formatIfBlank("/dev/vdb"), /^mkfs\.ext4 -q -L flow-data -- \/dev\/vdb$/m);
  assert.match(formatIfBlank("/dev/vdb"), /blkid -p -o export -- \/dev\/vdb /);
  assert.match(volumeFact("/dev/vdb", "/data"), /blkid -p -o export -- \/dev\/vdb /);
  assert.equal(mountVolume("/dev/vdb", "/data"), "mkdir -p -- /data && mount -- /dev/vdb /data");
  assert.match(scanCommand("/data/models", ".flow"), /df -PB1 -- "\$d"/);
  const lock = acquireLock(".flow", { holder: "a", task: "t", since: "now", pid: 1 });
  assert.match(lock, /mkdir -p -- "\$HOME"\/\.flow\n/);
  assert.match(lock, /if mkdir -- "\$HOME"\/\.flow\/lock /);
  // and run: a folder named like an option is made, not taken for one
  const cwd = mkdtempSync(join(tmpdir(), "flow-dash-"));
  scratch.push(cwd);
  const r = spawnSync("sh", ["-c", makeDirs(["-v", "--mode=700"])], { cwd, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(cwd, "-v")) && existsSync(join(cwd, "--mode=700")));
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
  assert.ok(
    versionAtLeast("20.18.0", "20.18.0") &&
      versionAtLeast("22.0.0", "20.18.0") &&
      !versionAtLeast("20.17.9", "20.18.0") &&
      !versionAtLeast("18.20.4", "20.18.0"),
  );
  assert.equal(
    nodeDistUrl("https://x/v{version}/node-v{version}-linux-{arch}.tar.gz", "22.1.0", "arm64"),
    "https://x/v22.1.0/node-v22.1.0-linux-arm64.tar.gz",
  );
});

test("status fact: parses what this machine answers, and survives missing tools", () => {
  const r = sh(statusCommand("/"));
  const s = parseStatus(r.stdout, "/");
  assert.ok(s.os.length > 0 && s.memory && s.memory.totalMB > 0 && s.disk && s.disk.sizeGB > 0 && s.load);
  const bare = parseStatus(
    "@@flow-section@@os\nX\nk\nh\n@@flow-section@@docker\n!docker-missing\n@@flow-section@@gpu\n!no-nvidia-smi\n",
    "/",
  );
  assert.deepEqual([bare.os, bare.docker.state, bare.gpus, bare.disk], ["X", "missing", null, null]);
  const gpu = parseStatus("@@flow-section@@gpu\nNVIDIA H100 80GB HBM3, 1024, 81559, 37, 41\n", "/");
  assert.deepEqual(gpu.gpus, [
    { name: "NVIDIA H100 80GB HBM3", memoryUsedMB: 1024, memoryTotalMB: 81559, utilization: 37, temperature: 41 },
  ]);
});
