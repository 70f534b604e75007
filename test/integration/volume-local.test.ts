// The DataCrunch volume step on real block devices (loop devices on this machine, as root):
// a blank device is formatted, mounted, put in fstab by UUID with nofail; a device that
// holds a filesystem is never formatted and keeps its data; neither is one whose probe finds no
// signature but whose first or last 8 MiB hold data (raw data, dm-crypt, a wiped superblock, a GPT backup).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, rmSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { formatIfBlank } from "../../lib/commands/system.ts";

const why =
  process.platform !== "linux"
    ? "loop devices need Linux"
    : process.getuid?.() !== 0
      ? "loop devices and mount need root"
      : spawnSync("losetup", ["--version"]).status !== 0
        ? "losetup missing"
        : spawnSync("mkfs.ext4", ["-V"]).status !== 0
          ? "mkfs.ext4 missing (e2fsprogs)"
          : spawnSync("sfdisk", ["--version"]).status !== 0
            ? "sfdisk missing (apt-get install fdisk)"
            : null;

const MiB = 1024 * 1024;
/** Write `data` into an image file at `offset`, without truncating it. */
function poke(img: string, offset: number, data: Buffer): void {
  const fd = openSync(img, "r+");
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}
const sha256 = (dev: string) => createHash("sha256").update(readFileSync(dev)).digest("hex");

describe("volume step on loop devices", { skip: why ?? false, timeout: 120_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "flow-vol-"));
  const loops: string[] = [];
  const mounts: string[] = [];
  const fstabBefore = existsSync("/etc/fstab") ? readFileSync("/etc/fstab", "utf8") : "";
  /** A loop device over a sparse (all-zero) image; `fill` writes into the image before it is attached. */
  const loop = (name: string, size = "64M", fill?: (img: string) => void) => {
    const img = join(work, `${name}.img`);
    execFileSync("truncate", ["-s", size, img]);
    fill?.(img);
    const dev = execFileSync("losetup", ["-f", "--show", img]).toString().trim();
    loops.push(dev);
    return dev;
  };
  after(() => {
    for (const m of mounts.reverse()) spawnSync("umount", [m]);
    for (const l of loops) spawnSync("losetup", ["-d", l]);
    writeFileSync("/etc/fstab", fstabBefore);
    // images are sparse but 64 MiB each on paper: gone once their loop devices are
    if (!mounts.some((m) => spawnSync("findmnt", ["-n", m]).stdout.length)) rmSync(work, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true }); // node_modules there is a symlink: rm does not follow it
  });

  const dir = mkdtempSync(join(tmpdir(), "flow-vol-proj-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    flowfileSource(`
import { ensureVolume } from ${JSON.stringify(join(REPO, "lib/steps/host.ts"))};
export default defineFlow({ plugins: [definePlugin({ name: "v", tasks: [defineTask({
  name: "volume", description: "the DataCrunch volume step",
  options: z.object({ device: z.string(), mount: z.string() }),
  async run(ctx, o) { await ensureVolume(ctx, o.device, o.mount); },
})] })] });`),
  );
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

  // Each holds something blkid -p names nothing for (or a partition table): the plan, the run and the
  // format command itself refuse it, name what was found, and leave every byte in place.
  const refusals: { name: string; size?: string; fill: (img: string) => void; found: RegExp }[] = [
    { name: "random", fill: (img) => poke(img, 0, randomBytes(4 * MiB)), found: /no filesystem signature, but its first 8 MiB hold data/ },
    { name: "text", fill: (img) => poke(img, 0, Buffer.from("notes.txt: do not lose\n".repeat(200))), found: /first 8 MiB hold data/ },
    {
      name: "ext4-head-wiped",
      fill: (img) => {
        execFileSync("mkfs.ext4", ["-q", img]);
        poke(img, 0, Buffer.alloc(MiB));
      },
      found: /no filesystem signature, but its first 8 MiB hold data/,
    },
    { name: "gpt", fill: (img) => execFileSync("sfdisk", ["-q", img], { input: "label: gpt\n,,L\n" }), found: /a partition table \(gpt\)/ },
    { name: "mbr", fill: (img) => execFileSync("sfdisk", ["-q", img], { input: "label: dos\n,,L\n" }), found: /a partition table \(dos\)/ },
    {
      // the primary GPT wiped: only the backup at the end is left, which blkid -p does not read
      name: "gpt-backup-only",
      fill: (img) => {
        execFileSync("sfdisk", ["-q", img], { input: "label: gpt\n,,L\n" });
        poke(img, 0, Buffer.alloc(MiB));
      },
      found: /no filesystem signature, but its last 8 MiB hold data/,
    },
    // smaller than the two 8 MiB windows together: the windows overlap, data at the very end is still seen
    { name: "small-tail", size: "12M", fill: (img) => poke(img, 12 * MiB - 512, Buffer.from("end")), found: /last 8 MiB hold data/ },
  ];
  for (const c of refusals) {
    test(`refused, data intact: ${c.name}`, async () => {
      const dev = loop(c.name, c.size, c.fill);
      const before = sha256(dev);
      const mnt = join(work, `data-${c.name}`);
      const quoted = new RegExp(`refusing to format '${dev}': .*${c.found.source}`);
      const dry = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt, "--dry-run"], { cwd: dir });
      assert.notEqual(dry.code, 0, dry.stdout + dry.stderr);
      assert.match(dry.stdout + dry.stderr, quoted);
      const r = await flow(["run", "volume", "--host", "local", "--device", dev, "--mount", mnt], { cwd: dir });
      assert.notEqual(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, quoted);
      // the format command's own check, should the plan ever be wrong
      const direct = spawnSync("sh", ["-c", formatIfBlank(dev)]);
      assert.equal(direct.status, 3, direct.stderr.toString());
      assert.match(direct.stderr.toString(), quoted);
      assert.equal(sha256(dev), before, "the device was written to");
      assert.ok(!existsSync(mnt) || !spawnSync("findmnt", ["-n", mnt]).stdout.length, "mounted");
    });
  }

  test("a small all-zero device (under 16 MiB) is blank: formatted", () => {
    const dev = loop("small-blank", "12M");
    const r = spawnSync("sh", ["-c", formatIfBlank(dev)]);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(execFileSync("blkid", ["-p", "-s", "TYPE", "-o", "value", dev]).toString().trim(), "ext4");
  });
});
