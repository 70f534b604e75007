// Shell text for the comfyui-api tasks, built from typed input (every value through shQuote), and
// the parsers of what it prints. Pure: tested by comparing strings.
import { shQuote } from "../../lib/quote.ts";
import { parseShaList, type RelPath } from "../../lib/comfy/comfyui-api-files.ts";
import { parseModelListing, type HostModels } from "../../lib/comfy/comfyui-api-deps.ts";

/** Ports inside the container (lib/comfy/deploy.ts: PORT=3000, ComfyUI on 8188). */
export const API_PORT = 3000;
export const COMFY_PORT = 8188;
const MARK = "@@flow";

export interface FactsInput {
  container: string;
  workflowsDir: string;
  modelsDir: string;
  /** file whose content is the host time of the last change to the workflows folder */
  marker: string;
  /** node classes to ask ComfyUI about */
  classes: string[];
}

/**
 * One round trip for everything api:workflows decides on: the workflows folder's `sha256  path`
 * list, the models folder, the change marker, the container's state and start time, the address
 * its API and ComfyUI are published on, comfyui-api's /health, and ComfyUI's answer for each
 * node class. Run as root (docker).
 */
export function factsCommand(i: FactsInput): string {
  const c = shQuote(i.container);
  return [
    `echo ${MARK} files`,
    `[ -d ${shQuote(i.workflowsDir)} ] && (cd ${shQuote(i.workflowsDir)} && find . -type f -exec sha256sum -- {} +)`,
    `echo ${MARK} models`,
    `[ -d ${shQuote(i.modelsDir)} ] && find -L ${shQuote(i.modelsDir)} -mindepth 1 -maxdepth 4 -printf '%y %P\\n' 2>/dev/null`,
    `echo ${MARK} marker`,
    `cat ${shQuote(i.marker)} 2>/dev/null`,
    `echo ${MARK} container`,
    `docker inspect -f '{{.State.Status}} {{.State.StartedAt}}' ${c} 2>/dev/null`,
    ...addressLines(i.container),
    `echo ${MARK} api "$api"`,
    `echo ${MARK} comfy "$comfy"`,
    `echo ${MARK} health`,
    `[ -n "$api" ] && curl -s -m 5 -w '\\n%{http_code}' "http://$api/health"`,
    `echo`,
    `echo ${MARK} classes`,
    ...(i.classes.length
      ? [
          `if [ -n "$comfy" ]; then for c in ${i.classes.map((k) => shQuote(encodeURIComponent(k))).join(" ")}; do`,
          `  b=$(curl -s -m 10 "http://$comfy/object_info/$c" | head -c 2)`,
          `  case "$b" in '{"') echo "yes $c" ;; '{}') echo "no $c" ;; *) echo "? $c" ;; esac`,
          `done; fi`,
        ]
      : []),
    "true",
  ].join("\n");
}

/**
 * `$api` and `$comfy`: where the host reaches the container's 3000 and 8188: the published
 * address (all interfaces -> 127.0.0.1), else the container's own address on its network.
 */
export function addressLines(container: string): string[] {
  const c = shQuote(container);
  return [
    `ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${c} 2>/dev/null | awk '{print $1}')`,
    `pub() { p=$(docker port ${c} "$1/tcp" 2>/dev/null | head -n 1); ` +
      `case "$p" in '') [ -n "$ip" ] && echo "$ip:$1" ;; 0.0.0.0:*|'[::]':*) echo "127.0.0.1:\${p##*:}" ;; *) echo "$p" ;; esac; }`,
    `api=$(pub ${API_PORT}); comfy=$(pub ${COMFY_PORT})`,
  ];
}

export interface ContainerFact {
  state: string;
  /** ms since the epoch */
  startedAt: number;
}

export interface Facts {
  /** path -> sha256 of every file in the workflows folder */
  files: Map<RelPath, string>;
  models: HostModels;
  /** host time (ms) of the last change flow made to the folder; undefined: none recorded */
  changedAt?: number;
  container?: ContainerFact;
  /** "127.0.0.1:3000": where the host reaches comfyui-api */
  api?: string;
  comfy?: string;
  health?: { status: number; version?: string };
  classes: Map<string, boolean>;
}

export function parseFacts(out: string): Facts {
  const sections = new Map<string, string[]>();
  const args = new Map<string, string>();
  let cur = "";
  for (const line of out.split("\n")) {
    if (line.startsWith(`${MARK} `)) {
      const [, name, ...rest] = line.split(" ");
      cur = name!;
      args.set(cur, rest.join(" ").trim());
      sections.set(cur, []);
    } else if (cur) sections.get(cur)!.push(line);
  }
  const text = (s: string) => (sections.get(s) ?? []).join("\n");
  const facts: Facts = { files: parseShaList(text("files")), models: parseModelListing(text("models")), classes: new Map() };
  const marker = Number(text("marker").trim());
  if (marker > 0) facts.changedAt = Math.round(marker * 1000);
  const c = /^(\S+) (\S+)/.exec(text("container").trim());
  if (c) facts.container = { state: c[1]!, startedAt: parseDockerTime(c[2]!) };
  facts.api = args.get("api") || undefined;
  facts.comfy = args.get("comfy") || undefined;
  const h = (sections.get("health") ?? []).filter((l, i, a) => i < a.length - 1 || l !== "");
  const code = Number(h.at(-1));
  if (h.length && Number.isInteger(code)) {
    let version: string | undefined;
    try {
      version = (JSON.parse(h.slice(0, -1).join("\n")) as { version?: string }).version;
    } catch {
      // not comfyui-api's JSON
    }
    facts.health = { status: code, version };
  }
  for (const l of sections.get("classes") ?? []) {
    const m = /^(yes|no|\?) (\S+)$/.exec(l);
    if (m && m[1] !== "?") facts.classes.set(decodeURIComponent(m[2]!), m[1] === "yes");
  }
  return facts;
}

/** Docker's RFC 3339 time with nanoseconds -> ms since the epoch (NaN when unreadable). */
export function parseDockerTime(s: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return NaN;
  return Date.parse(`${m[1]}.${(m[2] ?? "0").padEnd(3, "0").slice(0, 3)}${m[3]}`);
}

/** A restart is due when flow changed the folder after the container (and so comfyui-api) started. */
export function restartDue(f: Pick<Facts, "changedAt" | "container">): boolean {
  if (!f.container || f.changedAt === undefined) return false;
  return f.container.state !== "running" || !(f.container.startedAt > f.changedAt);
}

export interface SyncInput {
  workflowsDir: string;
  /** where the upload is unpacked first: beside the folder, on the same file system */
  stageParent: string;
  upload: RelPath[];
  remove: RelPath[];
  marker: string;
}

/**
 * Make the folder as planned, from a tar of the files to upload on stdin: unpack aside, remove
 * what goes, move each new file in with rename (atomic: comfyui-api never reads half a file),
 * drop emptied sub-folders, hand the files to the folder's owner, and note the change's time.
 * Run as root: comfyui-api writes its .js files as root.
 */
export function syncCommand(s: SyncInput): string {
  const dir = s.workflowsDir.replace(/\/+$/, "");
  const at = (rel: string) => shQuote(`${dir}/${rel}`);
  const parents = [...new Set(s.upload.map((r) => r.split("/").slice(0, -1).join("/")).filter(Boolean))].sort();
  return [
    "set -e",
    "umask 022",
    `mkdir -p ${shQuote(dir)} ${shQuote(s.stageParent)}`,
    `stage=$(mktemp -d ${shQuote(`${s.stageParent}/.flow-workflows.XXXXXX`)})`,
    `trap 'rm -rf "$stage"' EXIT`,
    s.upload.length ? `tar -x --no-same-owner --no-same-permissions -f - -C "$stage"` : "cat >/dev/null",
    ...s.remove.map((r) => `rm -f ${at(r)}`),
    ...parents.map((p) => `mkdir -p ${at(p)}`),
    ...s.upload.map((r) => `mv -f "$stage"/${shQuote(r)} ${at(r)}`),
    `find ${shQuote(dir)} -mindepth 1 -type d -empty -delete`,
    `chown -R "$(stat -c %u:%g ${shQuote(dir)})" ${shQuote(dir)}`,
    `date +%s.%N > ${shQuote(s.marker)}`,
  ].join("\n");
}

/**
 * Restart comfyui-api (the container's main process: it starts ComfyUI itself), then wait on the
 * host, in the same round trip, until its /ready answers 200. Gentler than `docker restart`:
 * SIGINT first, which comfyui-api handles (it stops ComfyUI and exits 0) while SIGTERM, docker's
 * stop signal, is ignored by a Node PID 1; then one start. Only if it is still up after
 * `stopSeconds` does `docker restart` stop it the hard way. A restart policy that already started
 * it again counts as the restart (so there is exactly one start either way).
 */
export function restartCommand(container: string, readyTimeoutSeconds: number, stopSeconds = 30): string {
  const c = shQuote(container);
  return [
    `st() { docker inspect -f '{{.State.Running}} {{.State.Restarting}} {{.State.StartedAt}}' ${c}; }`,
    `set -- $(st); before=$3`,
    `docker kill -s INT ${c} >/dev/null 2>&1 || true`,
    `i=0; while [ $i -lt ${Math.max(1, Math.ceil(stopSeconds * 5))} ]; do set -- $(st); ` +
      `{ [ "$2" = true ] || [ "$1 $3" = "true $before" ]; } || break; sleep 0.2; i=$((i+1)); done`,
    `set -- $(st)`,
    `if [ "$1" = true ] && [ "$3" = "$before" ]; then docker restart -t 10 ${c} >/dev/null; ` +
      `elif [ "$1" != true ]; then docker start ${c} >/dev/null; fi`,
    waitReadyCommand(container, readyTimeoutSeconds),
  ].join("\n");
}

/** Print the seconds it took once GET /ready is 200; exit 1 after the timeout. */
export function waitReadyCommand(container: string, timeoutSeconds: number): string {
  return [
    ...addressLines(container),
    `i=0; while [ $i -lt ${Math.max(1, Math.ceil(timeoutSeconds))} ]; do`,
    `  [ -z "$api" ] && { ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${shQuote(container)} ` +
      `2>/dev/null | awk '{print $1}'); api=$(pub ${API_PORT}); }`,
    `  [ -n "$api" ] && [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$api/ready")" = 200 ] && { echo $i; exit 0; }`,
    `  sleep 1; i=$((i+1))`,
    `done; exit 1`,
  ].join("\n");
}

/** comfyui-api's log lines about workflow files since the container last started. */
export function loadLogCommand(container: string): string {
  const c = shQuote(container);
  return (
    `since=$(docker inspect -f '{{.State.StartedAt}}' ${c}) && ` +
    `docker logs --since "$since" ${c} 2>&1 | grep -F '"file":"' | tail -n 500`
  );
}

/** The last lines of the container's log (for a failed start). */
export function tailLogCommand(container: string, lines = 40): string {
  return `docker logs --tail ${shQuote(lines)} ${shQuote(container)} 2>&1`;
}

/** GET each path of the container's comfyui-api: `@@flow <path> <status> <seconds>` then the body, for each. */
export function getCommand(container: string, paths: string[], timeoutSeconds = 20): string {
  return [
    ...addressLines(container),
    `t=$(mktemp); trap 'rm -f "$t"' EXIT`,
    ...paths.map((p) =>
      [
        `: > "$t"; w=$(curl -s -o "$t" -m ${shQuote(timeoutSeconds)} -w '%{http_code} %{time_total}' "http://$api"${shQuote(p)}) || true`,
        `echo ${MARK} ${shQuote(p)} $w; cat "$t"; echo`,
      ].join("\n"),
    ),
  ].join("\n");
}

export interface HttpAnswer {
  status: number;
  seconds: number;
  body: string;
}

export function parseGets(out: string): Map<string, HttpAnswer> {
  const res = new Map<string, HttpAnswer>();
  let cur: { path: string; a: HttpAnswer; lines: string[] } | undefined;
  const done = () => {
    if (cur) res.set(cur.path, { ...cur.a, body: cur.lines.join("\n").replace(/\n$/, "") });
  };
  for (const line of out.split("\n")) {
    const m = new RegExp(`^${MARK} (\\S+) (\\d+) ([\\d.]+)$`).exec(line);
    if (m) {
      done();
      cur = { path: m[1]!, a: { status: Number(m[2]), seconds: Number(m[3]), body: "" }, lines: [] };
    } else cur?.lines.push(line);
  }
  done();
  return res;
}

/** POST the JSON on stdin to the container's comfyui-api; prints `<status> <seconds>` then the body. */
export function postCommand(container: string, path: string, timeoutSeconds: number): string {
  return [
    ...addressLines(container),
    `t=$(mktemp); trap 'rm -f "$t"' EXIT`,
    `w=$(curl -s -o "$t" -m ${shQuote(timeoutSeconds)} -w '%{http_code} %{time_total}' ` +
      `-H 'content-type: application/json' --data-binary @- "http://$api"${shQuote(path)}) || true`,
    `echo "$w"; cat "$t"`,
  ].join("\n");
}

export function parsePost(out: string): HttpAnswer {
  const nl = out.indexOf("\n");
  const head = nl < 0 ? out : out.slice(0, nl);
  const m = /^(\d+) ([\d.]+)/.exec(head.trim());
  return { status: m ? Number(m[1]) : 0, seconds: m ? Number(m[2]) : 0, body: nl < 0 ? "" : out.slice(nl + 1) };
}
