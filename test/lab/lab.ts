// The lab's public surface for tests, the CLI and CI:
//   const reason = await labUnavailableReason();   // skip tests with it
//   const inv = await ensureLab({ hosts: 2 });      // engine + image + hosts, ready for ssh
//   await resetHost("lab1");                         // a fresh box again
//   await labDown();
import { statSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { engineAnswers, ensureEngine } from "./engine.ts";
import { ensureImage, imageExists } from "./image.ts";
import {
  listContainers,
  prepareLocalFiles,
  readInventory,
  reconcile,
  recreateHost,
  removeAllHosts,
  waitForSsh,
  writeInventory,
} from "./hosts.ts";
import { have, labDir, sleep } from "./util.ts";

export type { LabHost, LabInventory } from "./hosts.ts";
export { ensureEngine } from "./engine.ts";
export { inventoryPath, sshArgv, sshTarget } from "./hosts.ts";
import type { LabInventory } from "./hosts.ts";

export interface LabOptions {
  hosts: number;
  /** run an inner Docker engine in each host (default: yes for new hosts, keep for running ones) */
  docker?: boolean;
  /** remove hosts above `hosts` too (the CLI's `up --hosts N`) */
  exact?: boolean;
  log?: (msg: string) => void;
}

const isRoot = () => process.getuid?.() === 0;

/** null when the lab can run here, else why not (for `test(..., { skip })`). */
export async function labUnavailableReason(): Promise<string | null> {
  if (process.platform !== "linux") return `the lab needs Linux with Docker and debootstrap (this is ${process.platform})`;
  for (const cmd of ["docker", "ssh", "ssh-keygen"]) {
    if (!(await have(cmd))) return `${cmd} not found (Debian: apt-get install docker.io openssh-client)`;
  }
  if (!(await engineAnswers())) {
    if (!isRoot()) return "no Docker engine answers, and only root can start dockerd";
    if (!(await have("dockerd"))) return "no Docker engine answers and dockerd is not installed";
  } else if (await imageExists()) {
    return null; // nothing to build
  }
  if (!isRoot()) return "the lab image must be built, and debootstrap needs root";
  if (!(await have("debootstrap"))) return "debootstrap not found (apt-get install debootstrap)";
  return null;
}

/** Engine, image and at least `hosts` lab hosts, all accepting ssh; returns the inventory (absolute paths). */
export async function ensureLab(opts: LabOptions): Promise<LabInventory> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`[lab] ${msg}\n`));
  return withLock(async () => {
    await ensureEngine();
    const image = await ensureImage(log);
    await prepareLocalFiles(log);
    const indexes = await reconcile({ image, hosts: opts.hosts, docker: opts.docker, prune: opts.exact ?? false }, log);
    await writeInventory(indexes);
    await waitForSsh(indexes);
    return readInventory();
  });
}

/** Remove every lab container and the inventory. */
export async function labDown(): Promise<void> {
  if (!(await engineAnswers())) return;
  await withLock(removeAllHosts);
}

/** Re-create host `name` (e.g. "lab2") from the image: a fresh box, same address and host key. */
export async function resetHost(name: string): Promise<LabInventory> {
  const m = /^lab(\d+)$/.exec(name);
  if (!m) throw new Error(`not a lab host: ${name}`);
  const i = Number(m[1]);
  return withLock(async () => {
    await ensureEngine();
    const image = await ensureImage();
    await prepareLocalFiles();
    await recreateHost(i, image);
    const running = (await listContainers()).filter((c) => c.running).map((c) => c.index);
    await writeInventory(running);
    await waitForSsh([i]);
    return readInventory();
  });
}

// One lab per machine, shared by every test process: an atomic mkdir keeps two
// `ensureLab` calls from creating the same container at once.
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = join(labDir, ".lock");
  await mkdir(labDir, { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, "pid"), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (await lockIsStale(dir)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lab is locked by another process (${dir})`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function lockIsStale(dir: string): Promise<boolean> {
  const pid = Number(await readFile(join(dir, "pid"), "utf8").catch(() => "0"));
  if (!pid) {
    // holder died between mkdir and writing its pid
    try {
      return Date.now() - statSync(dir).mtimeMs > 10_000;
    } catch {
      return true;
    }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
