// Containers as data: a spec, its hash, and the argv that creates it. Like Kamal, the
// container carries a label with the hash of its whole spec, so a run re-creates it only
// when something in the spec changed.
import { createHash } from "node:crypto";
import { shJoin, shQuote } from "../quote.ts";

export interface ContainerSpec {
  name: string;
  image: string;
  /** the container's command (replaces the image's CMD) */
  command?: string[];
  ports: { host: number; container: number; bind?: string }[];
  /** "host": the host's own network stack (no published ports; the process binds the host's addresses) */
  network?: "host";
  volumes: { host: string; container: string; readOnly?: boolean }[];
  env: Record<string, string>;
  restart: "no" | "always" | "unless-stopped" | "on-failure";
  gpus?: boolean;
  labels?: Record<string, string>;
  /** the signal `docker stop` / `docker restart` send first (default SIGTERM) */
  stopSignal?: string;
}

export const SPEC_LABEL = "flow.spec-hash";

/** Canonical JSON (sorted keys) so the same spec always gives the same hash. */
export function specHash(spec: ContainerSpec): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash("sha256")
    .update(JSON.stringify(canon(spec)))
    .digest("hex")
    .slice(0, 16);
}

export function runArgv(spec: ContainerSpec): string[] {
  const argv = ["docker", "run", "-d", "--name", spec.name, "--restart", spec.restart];
  if (spec.gpus) argv.push("--gpus", "all");
  if (spec.stopSignal) argv.push("--stop-signal", spec.stopSignal);
  if (spec.network) argv.push("--network", spec.network);
  for (const p of spec.ports) argv.push("-p", `${p.bind ? `${p.bind}:` : ""}${p.host}:${p.container}`);
  for (const v of spec.volumes) argv.push("-v", `${v.host}:${v.container}${v.readOnly ? ":ro" : ""}`);
  for (const [k, v] of Object.entries(spec.env).sort(([a], [b]) => a.localeCompare(b))) argv.push("-e", `${k}=${v}`);
  for (const [k, v] of Object.entries({ ...spec.labels, [SPEC_LABEL]: specHash(spec) })) argv.push("--label", `${k}=${v}`);
  argv.push(spec.image, ...(spec.command ?? []));
  return argv;
}

/** Prints `<state> <spec hash>` of the named container, or nothing when it does not exist. */
export function containerFact(name: string): string {
  return `docker inspect -f '{{.State.Status}} {{index .Config.Labels "${SPEC_LABEL}"}}' ${shQuote(name)} 2>/dev/null || true`;
}

export function parseContainerFact(stdout: string): { state: string; hash: string } | null {
  const [state, hash = ""] = stdout.trim().split(/\s+/);
  return state ? { state, hash } : null;
}

/** The image is made present first: a bad tag or a registry error must not cost the running container. */
export function replaceContainer(spec: ContainerSpec): string {
  const image = shQuote(spec.image);
  return [
    "set -e",
    `docker image inspect ${image} >/dev/null 2>&1 || docker pull -q ${image} >/dev/null`,
    `docker rm -f ${shQuote(spec.name)} >/dev/null 2>&1 || true`,
    shJoin(runArgv(spec)),
  ].join("\n");
}

export function containerLogs(name: string, lines = 50): string {
  return `docker logs --tail ${lines} ${shQuote(name)} 2>&1`;
}

/** Restart the named container; `docker restart` sends the container's stop signal, then SIGKILL after `timeoutSeconds`. */
export function restartContainer(name: string, timeoutSeconds = 30): string {
  return `docker restart -t ${Math.max(0, Math.floor(timeoutSeconds))} ${shQuote(name)} >/dev/null`;
}

/** Prints `<state> <restart count> <started at> <pid>` of the named container, or nothing when it does not exist. */
export function containerRunFact(name: string): string {
  return `docker inspect -f '{{.State.Status}} {{.RestartCount}} {{.State.StartedAt}} {{.State.Pid}}' ${shQuote(name)} 2>/dev/null || true`;
}

export interface ContainerRun {
  state: string;
  restarts: number;
  startedAt: string;
  pid: number;
}

export function parseContainerRun(stdout: string): ContainerRun | null {
  const [state, restarts, startedAt = "", pid = "0"] = stdout.trim().split(/\s+/);
  return state ? { state, restarts: Number(restarts) || 0, startedAt, pid: Number(pid) || 0 } : null;
}

/** Every published port of the named container (`docker port`); nothing when it does not exist. */
export function containerPorts(name: string): string {
  return `docker port ${shQuote(name)} 2>/dev/null || true`;
}

export interface PublishedPort {
  container: number;
  /** the host address it is published on, as docker prints it ("0.0.0.0", "::", "127.0.0.1") */
  address: string;
  host: number;
}

/** `docker port` lines: `8188/tcp -> 127.0.0.1:8188`, `3000/tcp -> 0.0.0.0:3000`, `3000/tcp -> [::]:3000` (or `:::3000`). */
export function parseDockerPort(stdout: string): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^(\d+)\/tcp\s+->\s+(.*):(\d+)\s*$/.exec(line.trim());
    if (!m) continue;
    const address = m[2]!.replace(/^\[(.*)\]$/, "$1");
    out.push({ container: Number(m[1]), address: address === "" ? "::" : address, host: Number(m[3]) });
  }
  return out;
}

/** Published on every interface (what the world can reach, firewall aside). */
export const isWildcard = (address: string): boolean => address === "0.0.0.0" || address === "::" || address === "";

/** Where a process on the host reaches a published port: loopback for a wildcard binding, else the bound address. */
export function dialAddress(p: Pick<PublishedPort, "address">): string {
  return isWildcard(p.address) ? "127.0.0.1" : p.address;
}

/**
 * One remote loop (no round trip per try): until every URL answers 200, the container's process
 * exits (its restart count grows, or it is no longer running), or the time is up. Run it as root
 * (docker inspect). Its last line is parsed by parseHealthWait; on success the first URL's body follows.
 */
export function healthWaitCommand(name: string, urls: string[], timeoutSeconds: number): string {
  const n = shQuote(name);
  const inspect = `docker inspect -f '{{.State.Status}} {{.RestartCount}}' ${n} 2>/dev/null || echo 'missing 0'`;
  return [
    `t0=$(date +%s); set -- $(${inspect}); r0=$2`,
    "while :; do",
    "  ok=1; last=",
    ...urls.map(
      (u) =>
        `  if [ $ok = 1 ]; then c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${shQuote(u)} || true); ` +
        `[ "$c" = 200 ] || { ok=0; last=${shQuote(u)}" $c"; }; fi`,
    ),
    `  el=$(( $(date +%s) - t0 ))`,
    `  if [ $ok = 1 ]; then echo "ok $el"; curl -s --max-time 2 ${shQuote(urls[0] ?? "")} || true; exit 0; fi`,
    `  set -- $(${inspect})`,
    `  if { [ "$1" != running ] && [ "$1" != created ]; } || [ "$2" -gt "$r0" ]; then echo "exited $el $1 $(( $2 - r0 ))"; exit 3; fi`,
    `  if [ $el -ge ${Math.max(0, Math.floor(timeoutSeconds))} ]; then echo "timeout $el $last"; exit 1; fi`,
    "  sleep 1",
    "done",
  ].join("\n");
}

export type HealthWait =
  | { outcome: "ok"; seconds: number; body: string }
  | { outcome: "exited"; seconds: number; state: string; restarts: number }
  | { outcome: "timeout"; seconds: number; url: string; code: string };

export function parseHealthWait(stdout: string): HealthWait {
  const lines = stdout.split("\n");
  const i = lines.findIndex((l) => /^(ok|exited|timeout) \d+/.test(l));
  if (i < 0) return { outcome: "timeout", seconds: 0, url: "", code: "no answer from the wait loop" };
  const [what, secs, a = "", b = ""] = lines[i]!.split(" ");
  const seconds = Number(secs);
  if (what === "ok")
    return {
      outcome: "ok",
      seconds,
      body: lines
        .slice(i + 1)
        .join("\n")
        .trim(),
    };
  if (what === "exited") return { outcome: "exited", seconds, state: a, restarts: Number(b) || 0 };
  return { outcome: "timeout", seconds, url: a, code: b || "000" };
}

/** `http://<addr>:<port><path>` for a published port as dialled on the host (IPv6 in brackets). */
export function publishedUrl(p: Pick<PublishedPort, "address" | "host">, path = "/"): string {
  const a = dialAddress(p);
  return `http://${a.includes(":") ? `[${a}]` : a}:${p.host}${path}`;
}

/** Prints `<state>|<spec hash>|<image id>|<image as named>` of the named container, or nothing when it does not exist. */
export function containerImageFact(name: string): string {
  const format = `{{.State.Status}}|{{index .Config.Labels "${SPEC_LABEL}"}}|{{.Image}}|{{.Config.Image}}`;
  return `docker inspect -f '${format}' ${shQuote(name)} 2>/dev/null || true`;
}

export interface ContainerImage {
  state: string;
  hash: string;
  /** the image's id (sha256:...) */
  imageId: string;
  /** the image as the container was created from it (a tag) */
  image: string;
}

export function parseContainerImage(stdout: string): ContainerImage | null {
  const line = stdout.trim().split("\n")[0] ?? "";
  const [state = "", hash = "", imageId = "", image = ""] = line.split("|");
  return state ? { state, hash, imageId, image } : null;
}

/** Exits 0 when the engine has the image (no pull). */
export function imagePresentCommand(image: string): string {
  return `docker image inspect ${shQuote(image)} >/dev/null 2>&1`;
}

/** Prints `present` when the engine has the image, else pulls it and prints `pulled`; a failed pull exits non-zero. */
export function ensureImageCommand(image: string): string {
  const i = shQuote(image);
  return `if ${imagePresentCommand(image)}; then echo present; else docker pull -q ${i} >/dev/null && echo pulled; fi`;
}

/** Stop the named container with its stop signal (SIGKILL after `timeoutSeconds`); nothing when it does not exist. */
export function stopContainer(name: string, timeoutSeconds = 30): string {
  return `docker stop -t ${Math.max(0, Math.floor(timeoutSeconds))} ${shQuote(name)} >/dev/null 2>&1 || true`;
}
