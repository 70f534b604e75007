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
  volumes: { host: string; container: string; readOnly?: boolean }[];
  env: Record<string, string>;
  restart: "no" | "always" | "unless-stopped" | "on-failure";
  gpus?: boolean;
  labels?: Record<string, string>;
}

export const SPEC_LABEL = "flow.spec-hash";

/** Canonical JSON (sorted keys) so the same spec always gives the same hash. */
export function specHash(spec: ContainerSpec): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return createHash("sha256").update(JSON.stringify(canon(spec))).digest("hex").slice(0, 16);
}

export function runArgv(spec: ContainerSpec): string[] {
  const argv = ["docker", "run", "-d", "--name", spec.name, "--restart", spec.restart];
  if (spec.gpus) argv.push("--gpus", "all");
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
