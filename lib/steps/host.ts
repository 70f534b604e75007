// The steps every provider's setup shares, each idempotent: read the fact, change only what differs.
import type { StepStatus, TaskContext } from "../task.ts";
import {
  addFstab,
  disableUnattended,
  formatIfBlank,
  formatRefusal,
  makeDirs,
  mergeDaemonJson,
  missingDirs,
  mountVolume,
  parseVolumeFact,
  unattendedFact,
  volumeFact,
  waitForAptLock,
} from "../commands/system.ts";

const root = { sudo: true } as const;

export async function waitApt(ctx: TaskContext, timeoutSeconds = 600): Promise<StepStatus> {
  return ctx.step("apt/dpkg lock free", async () => {
    const waited = Number((await ctx.sh(waitForAptLock(timeoutSeconds), root)).trim());
    return { status: "ok", note: waited ? `waited ${waited}s` : undefined };
  });
}

export async function stopUnattendedUpgrades(ctx: TaskContext): Promise<StepStatus> {
  const fact = async () => {
    const [installed, active, enabled] = (await ctx.sh(unattendedFact)).split("\n").map((s) => s.trim());
    return { installed: installed === "installed", active: active === "active", enabled: enabled === "enabled" };
  };
  const f = await fact();
  if (!f.installed) return ctx.step("unattended-upgrades stopped", async () => ({ status: "skipped", note: "not installed" }));
  return ctx.ensure({
    title: "unattended-upgrades stopped and disabled",
    check: async () =>
      !f.active && !f.enabled ? true : { ok: false, note: [f.active && "running", f.enabled && "enabled"].filter(Boolean).join(", ") },
    apply: async () => void (await ctx.sh(disableUnattended, root)),
  });
}

/** Docker's own apt repository on Ubuntu/Debian (the distribution's docker.io lags). */
const INSTALL_DOCKER =
  `set -e
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ca-certificates curl
install -m 0755 -d /etc/apt/keyrings
curl -fsSL "https://download.docker.com/linux/$ID/gpg" -o /etc/apt/keyrings/docker.asc
chmod a+r /etc/apt/keyrings/docker.asc
echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] ` +
  `https://download.docker.com/linux/$ID $VERSION_CODENAME stable" > /etc/apt/sources.list.d/docker.list
apt-get update -qq
apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-buildx-plugin`;

export async function ensureDocker(ctx: TaskContext): Promise<StepStatus> {
  return ctx.ensure({
    title: "Docker engine",
    check: async () => {
      const r = await ctx.exec("docker version --format '{{.Server.Version}}'", root);
      if (r.code === 0) return { ok: true, note: `docker ${r.stdout.trim()}` };
      const client = await ctx.exec("command -v docker");
      return { ok: false, note: client.code === 0 ? "docker is installed but its engine does not answer" : "docker missing" };
    },
    apply: async () => {
      const has = (await ctx.exec("command -v docker")).code === 0;
      // installed but not answering: start it rather than reinstall
      if (has) await ctx.sh("systemctl start docker || service docker start", root);
      else await ctx.sh(INSTALL_DOCKER, root);
      return "docker installed and running";
    },
  });
}

export interface GpuFact {
  gpus: string[];
}

export async function detectGpu(ctx: TaskContext): Promise<GpuFact> {
  const r = await ctx.exec("command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null");
  return { gpus: r.code === 0 ? r.stdout.split("\n").filter((l) => l.startsWith("GPU ")) : [] };
}

const INSTALL_NVIDIA_TOOLKIT =
  `set -e
export DEBIAN_FRONTEND=noninteractive
curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | ` +
  `gpg --dearmor --yes -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | ` +
  `sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' ` +
  `> /etc/apt/sources.list.d/nvidia-container-toolkit.list
apt-get update -qq
apt-get install -y -qq nvidia-container-toolkit`;

/** NVIDIA container toolkit + Docker runtime + cgroupfs; Docker restarted only when daemon.json changed. */
export async function ensureNvidia(ctx: TaskContext, gpu: GpuFact): Promise<void> {
  if (!gpu.gpus.length) {
    await ctx.step("NVIDIA container toolkit", async () => ({ status: "skipped", note: "no GPU (nvidia-smi shows none)" }));
    await ctx.step("Docker GPU runtime (daemon.json)", async () => ({ status: "skipped", note: "no GPU" }));
    return;
  }
  await ctx.ensure({
    title: "NVIDIA container toolkit",
    check: async () => (await ctx.exec("command -v nvidia-ctk")).code === 0,
    apply: async () => void (await ctx.sh(INSTALL_NVIDIA_TOOLKIT, root)),
  });
  let next: string | null = null;
  await ctx.ensure({
    title: "Docker GPU runtime (daemon.json)",
    check: async () => {
      const current = (await ctx.exec("cat /etc/docker/daemon.json 2>/dev/null", root)).stdout;
      next = mergeDaemonJson(current, { nvidiaRuntime: true });
      return next === null ? true : { ok: false, note: "nvidia runtime / cgroupfs exec-opt missing" };
    },
    apply: async () => {
      await ctx.sh("nvidia-ctk runtime configure --runtime=docker >/dev/null", root);
      const current = (await ctx.exec("cat /etc/docker/daemon.json 2>/dev/null", root)).stdout;
      const merged = mergeDaemonJson(current, { nvidiaRuntime: true });
      if (merged)
        await ctx.sh(
          `tmp=$(mktemp /etc/docker/.daemon.json.XXXXXX) && cat > "$tmp" && chmod 644 "$tmp" && mv "$tmp" /etc/docker/daemon.json`,
          { ...root, stdin: merged },
        );
      await ctx.sh("systemctl restart docker", root);
      return "daemon.json updated, docker restarted";
    },
  });
}

export async function ensureDirs(ctx: TaskContext, title: string, dirs: string[]): Promise<StepStatus> {
  let missing: string[] = [];
  return ctx.ensure({
    title,
    check: async () => {
      missing = (await ctx.sh(missingDirs(dirs))).split("\n").filter(Boolean);
      return missing.length === 0 ? true : { ok: false, note: `${missing.length} missing` };
    },
    apply: async () => {
      await ctx.sh(makeDirs(missing, ctx.transport.user === "root" ? undefined : ctx.transport.user), root);
      return `made ${missing.length} folders`;
    },
  });
}

/** A block volume at the data root: format only when blank, mount, fstab by UUID with nofail. */
export async function ensureVolume(ctx: TaskContext, device: string, mountpoint: string): Promise<void> {
  if (/\s/.test(mountpoint)) throw new Error(`data root ${JSON.stringify(mountpoint)}: white space cannot go in /etc/fstab`);
  const read = async () => parseVolumeFact(await ctx.sh(volumeFact(device, mountpoint), root));
  let fact = await read();
  if (!fact.present) {
    await ctx.step(`volume ${device}`, async () => ({
      status: "skipped",
      note: `no block device ${device}: the data root stays on the boot disk`,
    }));
    return;
  }
  await ctx.ensure({
    title: `filesystem on ${device}`,
    check: async () => {
      if (fact.type) return true;
      // refused in the plan too, so a dry run shows it; formatIfBlank checks again before mkfs
      if (!fact.blank) throw new Error(`${formatRefusal(device, fact.found ?? "not blank")}; nothing was written to it`);
      return { ok: false, note: "blank device (no signature, first and last 8 MiB zero): will be formatted ext4" };
    },
    apply: async () => {
      await ctx.sh(formatIfBlank(device), root);
      fact = await read();
      return `formatted ext4 (UUID ${fact.uuid})`;
    },
  });
  if (fact.type)
    await ctx.step(`keep data on ${device}`, async () => ({ status: "ok", note: `${fact.type} ${fact.uuid ?? ""}: never formatted` }));
  await ctx.ensure({
    title: `${device} mounted at ${mountpoint}`,
    check: async () => (fact.mountedFrom ? true : { ok: false, note: "not mounted" }),
    apply: async () => void (await ctx.sh(mountVolume(device, mountpoint), root)),
  });
  await ctx.ensure({
    title: `fstab entry for ${mountpoint}`,
    check: async () => (fact.inFstab ? true : { ok: false, note: "missing" }),
    apply: async () => {
      if (!fact.uuid || !fact.type) throw new Error(`${device} has no filesystem UUID yet`);
      await ctx.sh(addFstab(fact.uuid, mountpoint, fact.type), root);
    },
  });
}
