// The lab image: a Debian bookworm root filesystem made by debootstrap, imported
// into Docker. No registry is reachable here, so nothing is pulled.
//
// Only what rarely changes is baked in (packages, the ubuntu user, sudo).
// The entrypoint, sshd settings, keys and the file server's content are
// bind-mounted by hosts.ts, so editing them does not re-run debootstrap.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { cacheDir, run } from "./util.ts";

const SUITE = "bookworm";
const MIRROR = "http://deb.debian.org/debian";
// What a fresh GPU box roughly has. nodejs is Debian's Node 18: deliberately
// too old, so flow's own "install Node" step is exercised.
const PACKAGES = [
  "openssh-server",
  "sudo",
  "python3",
  // pip for the stand-in ComfyUI image (test/lab/standin/image.ts copies python from here)
  "python3-pip",
  "git",
  "docker.io",
  "iptables",
  "curl",
  "ca-certificates",
  "procps",
  "xz-utils",
  "iproute2",
  "e2fsprogs",
  "util-linux",
  "mount",
  "nodejs",
  "less",
];

// Run inside the new root (chroot) once, right after debootstrap.
const CUSTOMIZE = `set -eu
useradd --create-home --uid 1000 --shell /bin/bash ubuntu
echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-ubuntu
chmod 0440 /etc/sudoers.d/90-ubuntu
# each lab host gets its own host key from the lab (see hosts.ts)
rm -f /etc/ssh/ssh_host_*
mkdir -p /run/sshd /srv/lab
# smaller tarball; the .debs are kept in the debootstrap cache instead
apt-get clean
rm -rf /var/lib/apt/lists/*
`;

export const ENTRYPOINT = "/etc/flow-lab/entrypoint.sh";
const IMPORT_CHANGES = [`ENTRYPOINT ["/bin/sh", "${ENTRYPOINT}"]`, "CMD []"];

/** Everything that decides the image's content; its hash names the image. */
export const recipeHash = createHash("sha256")
  .update(JSON.stringify({ SUITE, MIRROR, PACKAGES, CUSTOMIZE, IMPORT_CHANGES }))
  .digest("hex")
  .slice(0, 12);

export const imageTag = `flow-lab:${recipeHash}`;
const rootfsTarball = join(cacheDir, `rootfs-${recipeHash}.tar`);

export async function imageExists(tag = imageTag): Promise<boolean> {
  return (await run("docker", ["image", "inspect", tag], { allowFail: true })).code === 0;
}

/** Build the image unless it exists; returns its tag. Progress goes to `log`. */
export async function ensureImage(log: (msg: string) => void = () => {}): Promise<string> {
  if (!(await imageExists())) {
    if (!existsSync(rootfsTarball)) await buildRootfs(log);
    log(`importing ${rootfsTarball} as ${imageTag}`);
    const changes = IMPORT_CHANGES.flatMap((c) => ["--change", c]);
    await run("docker", ["import", ...changes, rootfsTarball, imageTag]);
  }
  // `latest` follows whatever recipe was built last
  await run("docker", ["tag", imageTag, "flow-lab:latest"]);
  return imageTag;
}

async function buildRootfs(log: (msg: string) => void): Promise<void> {
  const debs = join(cacheDir, "debs");
  await mkdir(debs, { recursive: true });
  const dir = await mkdtemp(join(cacheDir, "rootfs-build-"));
  try {
    const started = Date.now();
    log(`debootstrap ${SUITE} into ${dir} (a few minutes the first time)`);
    await run("debootstrap", ["--variant=minbase", `--include=${PACKAGES.join(",")}`, `--cache-dir=${debs}`, SUITE, dir, MIRROR]);
    await run("chroot", [dir, "/bin/sh", "-c", CUSTOMIZE]);
    log(`debootstrap done in ${Math.round((Date.now() - started) / 1000)}s; writing ${rootfsTarball}`);
    // write aside then rename, so an interrupted build never leaves a half tarball in the cache
    const partial = `${rootfsTarball}.partial`;
    await run("tar", ["--numeric-owner", "--xattrs", "-C", dir, "-cf", partial, "."]);
    await rename(partial, rootfsTarball);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Recipe summary, for `lab status`. */
export function describeRecipe(): string {
  return `${imageTag} (debootstrap ${SUITE} minbase + ${PACKAGES.length} packages)`;
}
