// The `status` fact: one batched command, one parser. Sections are separated by marker lines
// so a missing tool (no docker, no nvidia-smi, no curl) only empties its own section. Besides
// the machine (OS, load, memory, disk, GPUs, containers) it reads the comfyui container
// (`docker inspect`), asks comfyui-api (/health, /ready, /docs/json) and ComfyUI (/queue,
// /prompt) on the host itself with curl (short timeouts, all at once), lists the node packs in
// custom_nodes, and appends any extra section the caller gives (the models scan).
// A marker with a random part (`statusMarker()`) keeps a file name or a response body from
// passing for a section boundary.
import { randomBytes } from "node:crypto";
import { shQuote } from "../quote.ts";
import { comfyLayout } from "../comfy/deploy.ts";

const SECTIONS = ["os", "uptime", "loadavg", "meminfo", "disk", "docker", "gpu"] as const;
type Section = (typeof SECTIONS)[number];
const MARK = "@@flow-section@@";

/** A section marker no host output can guess. */
export function statusMarker(): string {
  return `@@flow-section-${randomBytes(6).toString("hex")}@@`;
}

export interface StatusCommandOptions {
  /** section marker (default a fixed one; give `statusMarker()` for output you do not control) */
  marker?: string;
  /** the container that runs ComfyUI (8188) and comfyui-api (3000) */
  container?: string;
  /** where the node packs are (default `<dataPath>/comfyui/custom_nodes`) */
  customNodes?: string;
  /** seconds each HTTP request may take */
  timeoutSeconds?: number;
  /** more sections, printed last and returned raw (`splitSections`) */
  extra?: { name: string; command: string }[];
}

/** Container ports whose host side the probes use (the host port comes from `docker port`). */
export const API_PORT = 3000;
export const COMFY_PORT = 8188;
const PROBES = [
  ["health", "api", "/health"],
  ["ready", "api", "/ready"],
  ["docs", "api", "/docs/json"],
  ["queue", "comfy", "/queue"],
  ["prompt", "comfy", "/prompt"],
] as const;

// `docker inspect` of the comfyui container as one JSON object
const INSPECT_FORMAT =
  '{"state":{{json .State}},"restarts":{{.RestartCount}},"image":{{json .Config.Image}},' +
  '"created":{{json .Created}},"ports":{{json .NetworkSettings.Ports}}}';

export function statusCommand(dataPath: string, opts: StatusCommandOptions = {}): string {
  const M = opts.marker ?? MARK;
  const name = shQuote(opts.container ?? "comfyui");
  const cn = shQuote(opts.customNodes ?? comfyLayout(dataPath).customNodes);
  const secs = Math.max(1, Math.round(opts.timeoutSeconds ?? 3));
  const parts: Record<Section, string> = {
    os: `. /etc/os-release 2>/dev/null; printf '%s\\n%s\\n%s\\n' "\${PRETTY_NAME:-$(uname -s)}" "$(uname -r)" "$(hostname)"`,
    uptime: "cat /proc/uptime 2>/dev/null",
    loadavg: "cat /proc/loadavg 2>/dev/null",
    meminfo: "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null",
    disk: `df -Pk ${shQuote(dataPath)} 2>/dev/null | tail -n 1`,
    docker:
      `case "$D" in -) echo '!docker-missing';; '') echo '!docker-unavailable';; ` +
      `*) $D ps -a --format '{{json .}}' 2>/dev/null || echo '!docker-unavailable';; esac`,
    gpu:
      `if command -v nvidia-smi >/dev/null 2>&1; then ` +
      `nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv,noheader,nounits 2>/dev/null; ` +
      `else echo '!no-nvidia-smi'; fi`,
  };
  const probeUrl = (side: "api" | "comfy", path: string) => `"http://$${side}${path}"`;
  return [
    // who may talk to docker: the login user (docker group), else sudo -n (never a prompt)
    `if command -v docker >/dev/null 2>&1; then if docker ps -q >/dev/null 2>&1; then D=docker; ` +
      `elif sudo -n docker ps -q >/dev/null 2>&1; then D='sudo -n docker'; else D=; fi; else D=-; fi`,
    ...SECTIONS.map((s) => `echo ${M}${s}; ${parts[s]}`),
    `echo ${M}now; date +%s`,
    `echo ${M}container; if [ -n "$D" ] && [ "$D" != - ]; then ` +
      `$D inspect --format ${shQuote(INSPECT_FORMAT)} ${name} 2>/dev/null || echo '!no-container'; ` +
      `else echo '!docker-unavailable'; fi`,
    // where the container publishes 3000 and 8188 (all interfaces -> 127.0.0.1); the defaults without one
    `hp() { a=; if [ -n "$D" ] && [ "$D" != - ]; then a=$($D port ${name} "$1/tcp" 2>/dev/null | head -n 1); fi; ` +
      `p=\${a##*:}; h=\${a%:*}; case "$h" in ''|0.0.0.0|'[::]'|::) h=127.0.0.1;; esac; [ -n "$p" ] || p=$1; echo "$h:$p"; }`,
    `api=$(hp ${API_PORT}); comfy=$(hp ${COMFY_PORT})`,
    `echo ${M}endpoints; echo "$api $comfy"`,
    // every request at once, each into its own files: status costs the slowest, not the sum
    `t=$(mktemp -d 2>/dev/null) || { t=/tmp/flow-status.$$; mkdir -p "$t"; }`,
    `if command -v curl >/dev/null 2>&1; then`,
    `  pr() { curl -sS -g --connect-timeout 2 -m ${secs} -o "$t/$1" -w '%{http_code}' "$2" ` +
      `>"$t/$1.code" 2>"$t/$1.err"; echo $? >"$t/$1.rc"; }`,
    ...PROBES.map(([id, side, path]) => `  pr ${id} ${probeUrl(side, path)} &`),
    `  wait`,
    `fi`,
    // per probe: "<curl exit> <http code>", curl's first error line (maybe empty), the body
    `show() { echo ${M}$1; if [ -e "$t/$1.rc" ]; then printf '%s %s\\n' "$(cat "$t/$1.rc")" "$(cat "$t/$1.code" 2>/dev/null)"; ` +
      `printf '%s\\n' "$(head -n 1 "$t/$1.err" 2>/dev/null)"; cat "$t/$1" 2>/dev/null; echo; else echo '!no-curl'; fi; }`,
    ...PROBES.map(([id]) => `show ${id}`),
    `rm -rf "$t"`,
    `echo ${M}nodes; if [ -d ${cn} ]; then for d in ${cn}/*; do [ -e "$d" ] || continue; n=\${d##*/}; ` +
      `if [ -d "$d" ]; then echo "d $n"; else case "$n" in *.py) echo "f $n";; esac; fi; done; else echo '!missing'; fi`,
    ...(opts.extra ?? []).map((x) => `echo ${M}${x.name}\n${x.command}`),
    "true",
  ].join("\n");
}

/** The raw text of each section (without its marker line and the newline before the next marker). */
export function splitSections(stdout: string, marker = MARK): Map<string, string> {
  const out = new Map<string, string>();
  let at = stdout.startsWith(marker) ? 0 : stdout.indexOf(`\n${marker}`);
  if (at > 0) at += 1;
  while (at >= 0) {
    const nl = stdout.indexOf("\n", at);
    const name = stdout.slice(at + marker.length, nl < 0 ? undefined : nl);
    if (nl < 0) {
      if (!out.has(name)) out.set(name, "");
      break;
    }
    const next = stdout.indexOf(`\n${marker}`, nl);
    // the first one wins: text printed later (a file name, a body) cannot replace a section
    if (!out.has(name)) out.set(name, stdout.slice(nl + 1, next < 0 ? undefined : next));
    at = next < 0 ? -1 : next + 1;
  }
  return out;
}

export interface HttpCheck {
  /** the HTTP status, null when nothing answered */
  code: number | null;
  /** why nothing answered (refused, timeout, ...) */
  error?: string;
  /** the body's `status` field (comfyui-api: "healthy", "ready") */
  status?: string;
}

export interface ContainerStatus {
  name: string;
  /** docker's state: running, restarting, exited, created, paused, dead */
  state: string;
  image: string | null;
  startedAt: string | null;
  /** seconds since it started (host clock), when running */
  uptimeSeconds: number | null;
  restarts: number;
  exitCode: number | null;
  health: string | null;
}

export interface PublishedPort {
  container: string;
  hostIp: string;
  hostPort: string;
  containerPort: string;
  proto: string;
}

export interface HostStatus {
  reachable: true;
  os: string;
  kernel: string;
  hostname: string;
  uptimeSeconds: number | null;
  load: [number, number, number] | null;
  memory: { totalMB: number; availableMB: number } | null;
  disk: { path: string; filesystem: string; sizeGB: number; usedGB: number; availableGB: number; usePercent: number } | null;
  docker: {
    state: "ok" | "missing" | "unavailable";
    containers: { name: string; image: string; state: string; status: string; ports: string }[];
  };
  gpus:
    | { name: string; memoryUsedMB: number | null; memoryTotalMB: number | null; utilization: number | null; temperature: number | null }[]
    | null;
  /** the comfyui container; null when there is none (or docker cannot be asked) */
  container: ContainerStatus | null;
  /** comfyui-api, asked on the host: its address there, version (from /health), /health and /ready */
  api: { url: string | null; version: string | null; health: HttpCheck | null; ready: HttpCheck | null };
  /** ComfyUI's queue (GET /queue: running + pending; GET /prompt's total when /queue did not parse) */
  queue: { running: number | null; pending: number | null; total: number } | null;
  queueError?: string;
  /** workflows comfyui-api serves (paths of GET /docs/json under /workflow/); the task adds what is expected */
  workflows: { served: string[]; expected?: string[]; missing?: string[]; unexpected?: string[] } | null;
  workflowsError?: string;
  /** folders (and single-file .py packs) in custom_nodes; null when the folder is missing */
  nodePacks: string[] | null;
  /** models the workflows need, ready / missing (the task fills this in) */
  models?: ModelsStatus | null;
  /** ports any container publishes on every interface */
  openPorts: PublishedPort[];
  warnings: string[];
  /** what the caller learnt beyond this command (the proxy in front of the API): a cell, its facts, red lines */
  proxy?: { cell: string; facts: unknown; alerts: string[] };
}

export interface ModelsStatus {
  /** where the needed models come from (the project's workflow_templates/) */
  from: string;
  needed: number;
  ready: number;
  missing: string[];
  workflows: { total: number; ready: number };
  /** a models:download run is going on on the host */
  downloading?: boolean;
  error?: string;
}

/** A host flow could not reach (or lost) while asking. */
export interface UnreachableStatus {
  reachable: false;
  error: string;
}

export type StatusRow = HostStatus | UnreachableStatus;

const num = (s: string | undefined): number | null => {
  if (s === undefined || s.trim() === "") return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

function jsonOf(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const CURL_REASONS: Record<string, string> = {
  "6": "cannot resolve the host",
  "7": "connection refused",
  "28": "timed out",
  "52": "empty reply",
  "56": "connection reset",
};

interface Probe {
  code: number | null;
  error?: string;
  body: string;
}

/** One probe section: "<curl exit> <http code>", curl's error line, the body. */
export function parseProbe(raw: string | undefined): Probe | null {
  if (raw === undefined) return null;
  if (raw.startsWith("!no-curl")) return { code: null, error: "curl is not installed on the host", body: "" };
  const nl1 = raw.indexOf("\n");
  const head = (nl1 < 0 ? raw : raw.slice(0, nl1)).trim().split(/\s+/);
  const rest = nl1 < 0 ? "" : raw.slice(nl1 + 1);
  const nl2 = rest.indexOf("\n");
  const errLine = (nl2 < 0 ? rest : rest.slice(0, nl2)).trim();
  // the command adds one newline after the body
  const body = nl2 < 0 ? "" : rest.slice(nl2 + 1).replace(/\n$/, "");
  const [rc = "", http = ""] = head;
  const code = Number(http);
  if (rc === "0" && code > 0) return { code, body };
  const why = CURL_REASONS[rc] ?? (errLine.replace(/^curl: \(\d+\)\s*/, "") || `curl exit ${rc || "?"}`);
  return { code: code > 0 ? code : null, error: why, body };
}

function check(p: Probe | null): HttpCheck | null {
  if (!p) return null;
  const status = (jsonOf(p.body) as { status?: unknown } | undefined)?.status;
  return { code: p.code, ...(p.error ? { error: p.error } : {}), ...(typeof status === "string" ? { status } : {}) };
}

/** `0.0.0.0:3000->3000/tcp, [::]:3000->3000/tcp, 8188/tcp` (docker ps) -> the published ones. */
export function parsePorts(container: string, text: string): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(.*):(\d+(?:-\d+)?)->(\d+(?:-\d+)?)\/(\w+)$/.exec(part);
    if (m) out.push({ container, hostIp: m[1]!, hostPort: m[2]!, containerPort: m[3]!, proto: m[4]! });
  }
  return out;
}

export const isWorldAddress = (ip: string) => ["0.0.0.0", "::", "[::]", ""].includes(ip);

/** One warning per container port open to the world (its IPv4 and IPv6 bindings together). */
export function portWarnings(open: PublishedPort[]): string[] {
  const by = new Map<string, PublishedPort[]>();
  for (const p of open) {
    const k = `${p.container}\0${p.hostPort}\0${p.containerPort}\0${p.proto}`;
    by.set(k, [...(by.get(k) ?? []), p]);
  }
  return [...by.values()].map((ps) => {
    const p = ps[0]!;
    const on = [...new Set(ps.map((x) => x.hostIp || "*"))].join(", ");
    const hint =
      p.containerPort === String(COMFY_PORT)
        ? ": ComfyUI's UI and Manager can install and run any code; publish it on 127.0.0.1 and use `flow run tunnel`"
        : "";
    return `${p.container}: port ${p.hostPort}->${p.containerPort}/${p.proto} is open to the world (published on ${on})${hint}`;
  });
}

function parseContainer(raw: string | undefined, name: string, now: number | null): ContainerStatus | null {
  const j = jsonOf(raw?.trim()) as { state?: Record<string, unknown>; restarts?: number; image?: string } | undefined;
  if (!j || typeof j !== "object" || !j.state) return null;
  const s = j.state;
  const startedAt = typeof s.StartedAt === "string" && !s.StartedAt.startsWith("0001-") ? s.StartedAt : null;
  const started = startedAt ? Date.parse(startedAt.replace(/(\.\d{3})\d+/, "$1")) : NaN;
  const running = s.Running === true || s.Status === "running";
  const health = (s.Health as { Status?: unknown } | undefined)?.Status;
  return {
    name,
    state: typeof s.Status === "string" ? s.Status : running ? "running" : "unknown",
    image: typeof j.image === "string" ? j.image : null,
    startedAt,
    uptimeSeconds: running && now !== null && Number.isFinite(started) ? Math.max(0, Math.round(now - started / 1000)) : null,
    restarts: typeof j.restarts === "number" ? j.restarts : 0,
    exitCode: !running && typeof s.ExitCode === "number" ? s.ExitCode : null,
    health: typeof health === "string" ? health : null,
  };
}

/** Paths of comfyui-api's OpenAPI document under /workflow/, as `<dir>/<name>`. */
export function servedWorkflows(doc: unknown): string[] | null {
  const paths = (doc as { paths?: unknown } | undefined)?.paths;
  if (!paths || typeof paths !== "object") return null;
  const names = Object.keys(paths)
    .filter((p) => p.startsWith("/workflow/"))
    .map((p) => p.slice("/workflow/".length).replace(/\/+$/, ""))
    .filter(Boolean);
  return [...new Set(names)].sort();
}

export function parseStatus(stdout: string, dataPath: string, opts: { marker?: string; container?: string } = {}): HostStatus {
  const sections = splitSections(stdout, opts.marker ?? MARK);
  const lines = (s: string) => (sections.get(s) ?? "").split("\n").filter((l) => l.trim());
  const get = (s: Section) => lines(s);
  const [os = "unknown", kernel = "", hostname = ""] = get("os");
  const up = Number(get("uptime")[0]?.split(/\s+/)[0]);
  const la = get("loadavg")[0]?.split(/\s+/).slice(0, 3).map(Number);
  const mem = Object.fromEntries(
    get("meminfo").map((l) => {
      const m = /^(\w+):\s+(\d+)/.exec(l);
      return m ? [m[1], Number(m[2])] : ["", 0];
    }),
  );
  const df = get("disk")[0]?.split(/\s+/);
  const dockerLines = get("docker");
  const gpuLines = get("gpu");
  const kb = (n: string | undefined) => Math.round((Number(n) / 1024 / 1024) * 10) / 10;
  const now = num(lines("now")[0]);
  const containers = dockerLines.flatMap((l) => {
    try {
      const c = JSON.parse(l);
      return [
        {
          name: String(c.Names ?? ""),
          image: String(c.Image ?? ""),
          state: String(c.State ?? ""),
          status: String(c.Status ?? ""),
          ports: String(c.Ports ?? ""),
        },
      ];
    } catch {
      return [];
    }
  });
  const docker: HostStatus["docker"] =
    dockerLines[0] === "!docker-missing"
      ? { state: "missing", containers: [] }
      : dockerLines[0] === "!docker-unavailable"
        ? { state: "unavailable", containers: [] }
        : { state: "ok", containers };

  const name = opts.container ?? "comfyui";
  const container = parseContainer(sections.get("container"), name, now);
  const [apiAddr] = (lines("endpoints")[0] ?? "").split(/\s+/);
  const health = parseProbe(sections.get("health"));
  const ready = parseProbe(sections.get("ready"));
  const version = [health, ready]
    .map((p) => (jsonOf(p?.body) as { version?: unknown } | undefined)?.version)
    .find((v) => typeof v === "string") as string | undefined;

  let queue: HostStatus["queue"] = null;
  let queueError: string | undefined;
  const q = parseProbe(sections.get("queue"));
  const qj = q?.code === 200 ? (jsonOf(q.body) as { queue_running?: unknown; queue_pending?: unknown } | undefined) : undefined;
  if (qj && Array.isArray(qj.queue_running) && Array.isArray(qj.queue_pending)) {
    queue = {
      running: qj.queue_running.length,
      pending: qj.queue_pending.length,
      total: qj.queue_running.length + qj.queue_pending.length,
    };
  } else {
    const p = parseProbe(sections.get("prompt"));
    const remaining = (jsonOf(p?.body) as { exec_info?: { queue_remaining?: unknown } } | undefined)?.exec_info?.queue_remaining;
    if (p?.code === 200 && typeof remaining === "number") queue = { running: null, pending: null, total: remaining };
    else if (q) queueError = q.error ?? `GET /queue answered ${q.code}`;
  }

  let workflows: HostStatus["workflows"] = null;
  let workflowsError: string | undefined;
  const docs = parseProbe(sections.get("docs"));
  if (docs) {
    const served = docs.code === 200 ? servedWorkflows(jsonOf(docs.body)) : null;
    if (served) workflows = { served };
    else
      workflowsError =
        docs.error ?? (docs.code === 200 ? "GET /docs/json is not an OpenAPI document" : `GET /docs/json answered ${docs.code}`);
  }

  const nodeLines = lines("nodes");
  const nodePacks =
    !sections.has("nodes") || nodeLines[0] === "!missing"
      ? null
      : nodeLines
          .map((l) => l.slice(2))
          .filter((n) => n && n !== "__pycache__")
          .sort();

  const openPorts = containers.flatMap((c) => parsePorts(c.name, c.ports)).filter((p) => isWorldAddress(p.hostIp));
  return {
    reachable: true,
    os,
    kernel,
    hostname,
    uptimeSeconds: Number.isFinite(up) ? Math.round(up) : null,
    load: la && la.length === 3 && la.every(Number.isFinite) ? (la as [number, number, number]) : null,
    memory: mem.MemTotal ? { totalMB: Math.round(mem.MemTotal / 1024), availableMB: Math.round((mem.MemAvailable ?? 0) / 1024) } : null,
    disk:
      df && df.length >= 6
        ? {
            path: dataPath,
            filesystem: df[0]!,
            sizeGB: kb(df[1]),
            usedGB: kb(df[2]),
            availableGB: kb(df[3]),
            usePercent: Number(df[4]!.replace("%", "")),
          }
        : null,
    docker,
    gpus:
      gpuLines[0] === "!no-nvidia-smi" || (!gpuLines.length && !sections.has("gpu"))
        ? null
        : gpuLines.map((l) => {
            const [gpuName = "", used, total, util, temp] = l.split(",").map((x) => x.trim());
            return { name: gpuName, memoryUsedMB: num(used), memoryTotalMB: num(total), utilization: num(util), temperature: num(temp) };
          }),
    container,
    api: {
      url: apiAddr ? `http://${apiAddr}` : null,
      version: version ?? null,
      health: check(health),
      ready: check(ready),
    },
    queue,
    ...(queueError ? { queueError } : {}),
    workflows,
    ...(workflowsError ? { workflowsError } : {}),
    nodePacks,
    openPorts,
    warnings: portWarnings(openPorts),
  };
}
