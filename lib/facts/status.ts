// The `status` fact: one batched command, one parser. Sections are separated by marker lines
// so a missing tool (no docker, no nvidia-smi) only empties its own section.
import { shQuote } from "../quote.ts";

const SECTIONS = ["os", "uptime", "loadavg", "meminfo", "disk", "docker", "gpu"] as const;
type Section = (typeof SECTIONS)[number];
const MARK = "@@flow-section@@";

export function statusCommand(dataPath: string): string {
  const parts: Record<Section, string> = {
    os: `. /etc/os-release 2>/dev/null; printf '%s\\n%s\\n%s\\n' "\${PRETTY_NAME:-$(uname -s)}" "$(uname -r)" "$(hostname)"`,
    uptime: "cat /proc/uptime 2>/dev/null",
    loadavg: "cat /proc/loadavg 2>/dev/null",
    meminfo: "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null",
    disk: `df -Pk ${shQuote(dataPath)} 2>/dev/null | tail -n 1`,
    // sudo -n: the login user may not be in the docker group; never prompt
    docker: `if command -v docker >/dev/null 2>&1; then (docker ps -a --format '{{json .}}' 2>/dev/null || sudo -n docker ps -a --format '{{json .}}' 2>/dev/null) || echo '!docker-unavailable'; else echo '!docker-missing'; fi`,
    gpu: `if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv,noheader,nounits 2>/dev/null; else echo '!no-nvidia-smi'; fi`,
  };
  return SECTIONS.map((s) => `echo ${MARK}${s}; ${parts[s]}`).join("\n");
}

export interface HostStatus {
  os: string;
  kernel: string;
  hostname: string;
  uptimeSeconds: number | null;
  load: [number, number, number] | null;
  memory: { totalMB: number; availableMB: number } | null;
  disk: { path: string; filesystem: string; sizeGB: number; usedGB: number; availableGB: number; usePercent: number } | null;
  docker: { state: "ok" | "missing" | "unavailable"; containers: { name: string; image: string; state: string; status: string }[] };
  gpus: { name: string; memoryUsedMB: number; memoryTotalMB: number; utilization: number; temperature: number }[] | null;
}

export function parseStatus(stdout: string, dataPath: string): HostStatus {
  const sections = new Map<string, string[]>();
  let current: string | null = null;
  for (const line of stdout.split("\n")) {
    if (line.startsWith(MARK)) {
      current = line.slice(MARK.length);
      sections.set(current, []);
    } else if (current && line.trim()) sections.get(current)!.push(line);
  }
  const get = (s: Section) => sections.get(s) ?? [];
  const [os = "unknown", kernel = "", hostname = ""] = get("os");
  const up = Number(get("uptime")[0]?.split(/\s+/)[0]);
  const la = get("loadavg")[0]?.split(/\s+/).slice(0, 3).map(Number);
  const mem = Object.fromEntries(get("meminfo").map((l) => { const m = /^(\w+):\s+(\d+)/.exec(l); return m ? [m[1], Number(m[2])] : ["", 0]; }));
  const df = get("disk")[0]?.split(/\s+/);
  const dockerLines = get("docker");
  const gpuLines = get("gpu");
  const kb = (n: string | undefined) => Math.round((Number(n) / 1024 / 1024) * 10) / 10;
  return {
    os, kernel, hostname,
    uptimeSeconds: Number.isFinite(up) ? Math.round(up) : null,
    load: la && la.length === 3 && la.every(Number.isFinite) ? (la as [number, number, number]) : null,
    memory: mem.MemTotal ? { totalMB: Math.round(mem.MemTotal / 1024), availableMB: Math.round((mem.MemAvailable ?? 0) / 1024) } : null,
    disk: df && df.length >= 6
      ? { path: dataPath, filesystem: df[0]!, sizeGB: kb(df[1]), usedGB: kb(df[2]), availableGB: kb(df[3]), usePercent: Number(df[4]!.replace("%", "")) }
      : null,
    docker: dockerLines[0] === "!docker-missing"
      ? { state: "missing", containers: [] }
      : dockerLines[0] === "!docker-unavailable"
        ? { state: "unavailable", containers: [] }
        : { state: "ok", containers: dockerLines.flatMap((l) => { try { const c = JSON.parse(l); return [{ name: c.Names, image: c.Image, state: c.State, status: c.Status }]; } catch { return []; } }) },
    gpus: gpuLines[0] === "!no-nvidia-smi" ? null : gpuLines.map((l) => {
      const [name = "", used, total, util, temp] = l.split(",").map((x) => x.trim());
      return { name, memoryUsedMB: Number(used), memoryTotalMB: Number(total), utilization: Number(util), temperature: Number(temp) };
    }),
  };
}
