// The DataCrunch volume step on real block devices (loop devices on this machine, as root):
// a blank device is formatted, mounted, put in fstab by UUID with nofail; a device that
// holds a filesystem is never formatted and keeps its data.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { formatIfBlank } from "../../lib/commands/system.ts";

const why =
  process.platform !== "linux" ? "loop devices need Linux"
  : process.getuid?.() !== 0 ? "loop devices and mount need root"
  : spawnSync("losetup", ["--version"]).status !== 0 ? "losetup missing"
  : spawnSync("mkfs.ext4", ["-V"]).status !== 0 ? "mkfs.ext4 missing (e2fsprogs)"
  : null;

describe("volume step on loop devices", { skip: why ?? false, timeout: 120_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "flow-vol-"));
  const loops: string[] = [];
  const mounts: string[] = [];
  const fstabBefore = existsSync("/etc/fstab") ? readFileSync("/etc/fstab", "utf8") : "";
  const loop = (name: string) => {
    const img = join(work, `${name}.img`);
    execFileSync("truncate", ["-s", "64M", img]);
    const dev = execFileSync("losetup", ["-f", "--show", img]).toString().trim();
    loops.push(dev);
    return dev;
  };
  after(() => {
    for (const m of mounts.reverse()) spawnSync("umount", [m]);
    for (const l of loops) spawnSync("losetup", ["-d", l]);
    writeFileSync("/etc/fstab", fstabBefore);
  });

  const dir = mkdtempSync(join(tmpdir(), "flow-vol-proj-"));
  writeFileSync(join(dir, "flowfile.ts"), flowfileSource(`
import { ensureVolume } from ${JSON.stringify(join(REPO, "lib/steps/host.ts"))};
export default defineFlow({ plugins: [definePlugin({ name: "v", tasks: [defineTask({
  name: "volume", description: "the DataCrunch volume step",
  options: z.object({ device: z.string(), mount: z.string() }),
  async run(ctx, o) { await ensureVolume(ctx, o.device, o.mount); },
})] })] });`));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));

  test("a blank device: formatted ext4, mounted, fstab by UUID with nofail; a second run changes nothing", async () => {
    const dev = loop("blank");
    const mnt = join(work, "data-blank");
    const dry = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt, "--dry-run"], { cwd: dir });
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /filesystem on .*: would change \(blank device/);
    assert.equal(spawnSync("blkid", ["-p", dev]).status, 2, "dry run formatted the device");
    const r = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt], { cwd: dir });
    mounts.push(mnt);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /filesystem on .*: changed \(formatted ext4 \(UUID [0-9a-f-]+\)\)/);
    const uuid = execFileSync("blkid", ["-s", "UUID", "-o", "value", dev]).toString().trim();
    assert.match(readFileSync("/etc/fstab", "utf8"), new RegExp(`^UUID=${uuid} ${mnt} ext4 defaults,nofail 0 2$`, "m"));
    assert.match(execFileSync("findmnt", ["-n", "-o", "SOURCE", mnt]).toString(), new RegExp(dev));
    const again = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt], { cwd: dir });
    assert.match(again.stdout, /^local\s+ok\s+\d+\s+0\s/m);
  });

  test("a device that holds a filesystem keeps its data; the format command itself refuses it", async () => {
    const dev = loop("used");
    execFileSync("mkfs.ext4", ["-q", dev]);
    const pre = join(work, "pre");
    execFileSync("mkdir", ["-p", pre]);
    execFileSync("mount", [dev, pre]);
    writeFileSync(join(pre, "model.safetensors"), "precious");
    execFileSync("umount", [pre]);
    const uuidBefore = execFileSync("blkid", ["-s", "UUID", "-o", "value", dev]).toString().trim();

    const refused = spawnSync("sh", ["-c", formatIfBlank(dev)]);
    assert.equal(refused.status, 3);
    assert.match(refused.stderr.toString(), /refusing to format/);

    const mnt = join(work, "data-used");
    const r = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt], { cwd: dir });
    mounts.push(mnt);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /keep data on .*: ok \(ext4 .*never formatted\)/);
    assert.equal(readFileSync(join(mnt, "model.safetensors"), "utf8"), "precious");
    assert.equal(execFileSync("blkid", ["-s", "UUID", "-o", "value", dev]).toString().trim(), uuidBefore);
  });
});
