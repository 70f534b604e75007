// An image pull as data. `docker pull` without a terminal prints no byte counts, so the pull goes
// through the Engine API (POST /images/create on the docker socket), whose JSON lines carry each
// layer's bytes. Here: the image reference, the shell text that streams those lines, a tracker that
// turns them into totals, speed and ETA, and the failure message. Pure functions, no I/O.
import { shQuote } from "../quote.ts";
import { fmtBytes, fmtEta } from "../format.ts";

export const DOCKER_SOCKET = "/var/run/docker.sock";
/** What Docker calls Docker Hub in a reference; its API host is registry-1.docker.io. */
export const DOCKER_HUB = "docker.io";

export class ImageRefError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageRefError";
  }
}

export interface ImageRef {
  /** registry host (with port), docker.io for Docker Hub */
  registry: string;
  /** repository path in that registry (library/caddy for `caddy`) */
  repository: string;
  /** the name as written, without tag or digest: what the Engine API's fromImage takes */
  name: string;
  tag?: string;
  digest?: string;
}

// The grammar of github.com/distribution/reference, written out: anything else is refused before
// it can reach a shell or a URL.
const DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(`^${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?$`);
const PATH_PART = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}$/;

/** Parses `ghcr.io/a/b:tag`, `b`, `host:5000/a/b:tag`, `a/b@sha256:…`, `a/b:tag@sha256:…`; throws ImageRefError otherwise. */
export function parseImageRef(image: string): ImageRef {
  const bad = (why: string) => new ImageRefError(`not an image reference (${why}): ${JSON.stringify(image.slice(0, 120))}`);
  if (!image || image.length > 512) throw bad("empty or too long");
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad("bad digest");
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad("bad tag");
  }
  const parts = rest.split("/");
  // Docker's rule: the first part names a registry when it has a dot or a port, is localhost, or has capitals
  const first = parts[0]!;
  const hasDomain = parts.length > 1 && (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase());
  let registry = DOCKER_HUB;
  if (hasDomain) {
    if (!DOMAIN.test(first)) throw bad("bad registry host");
    registry = first === "index.docker.io" || first === "registry-1.docker.io" ? DOCKER_HUB : first;
    parts.shift();
  }
  if (!parts.length || !parts.every((p) => PATH_PART.test(p))) throw bad("bad repository path");
  if (rest.length > 255) throw bad("name over 255 characters");
  const repository = registry === DOCKER_HUB && parts.length === 1 ? `library/${parts[0]}` : parts.join("/");
  return { registry, repository, name: rest, tag, digest };
}

/** The registry an image is pulled from (docker.io for Docker Hub names). */
export function registryOf(image: string): string {
  return parseImageRef(image).registry;
}

/** The last line pullCommand prints: the Engine API's HTTP status (an error before the stream is a non-200 with a JSON body). */
export const HTTP_MARK = "flowPullHttp";

/**
 * Shell text (run as root: the docker socket is root's) that pulls `image` through the Engine API and
 * prints its JSON lines as they come, then `{"flowPullHttp":"<status>"}`. The tag is always passed:
 * without one the API pulls every tag of the repository. A digest goes where the tag would.
 */
export function pullCommand(image: string): string {
  const ref = parseImageRef(image);
  const query = `fromImage=${encodeURIComponent(ref.name)}&tag=${encodeURIComponent(ref.digest ?? ref.tag ?? "latest")}`;
  return [
    `command -v curl >/dev/null 2>&1 || { echo 'curl is not installed on the host' >&2; exit 127; }`,
    `[ -S ${DOCKER_SOCKET} ] || { echo 'no docker socket at ${DOCKER_SOCKET}' >&2; exit 69; }`,
    // -N: no buffering, each line as the engine writes it; -w: the status, also for an error body
    `curl -sSN --unix-socket ${DOCKER_SOCKET} -X POST -w ${shQuote(`\\n{"${HTTP_MARK}":"%{http_code}"}\\n`)} ` +
      shQuote(`http://localhost/images/create?${query}`),
  ].join("\n");
}

/** Why pullCommand exited non-zero before the engine said anything (curl's own failures). */
export function pullExitMessage(code: number | null, stderr: string): string {
  const said = stderr.trim().split("\n").slice(-2).join("; ");
  const tail = said ? `: ${said}` : "";
  if (code === 127) return `curl is not installed on the host (the pull streams the Docker Engine API through it)${tail}`;
  // 69: no socket file (pullCommand's own check); 7: curl could not connect to it
  if (code === 69 || code === 7) return `cannot reach the Docker engine at ${DOCKER_SOCKET} (is dockerd running?)${tail}`;
  if (code === 52 || code === 56) return `the Docker engine closed the pull's stream (did dockerd restart?)${tail}`;
  return `the pull command exited ${code ?? "by a signal"}${tail}`;
}

export type PullErrorKind = "network" | "missing" | "auth" | "rate-limit" | "other";

/** What kind of failure an engine message describes, from the Go error texts dockerd passes on. */
export function classifyPullError(message: string): PullErrorKind {
  if (/toomanyrequests|rate limit/i.test(message)) return "rate-limit";
  if (/unauthorized|denied|authentication required|no basic auth|forbidden|docker login/i.test(message)) return "auth";
  if (/manifest unknown|not found|unknown blob|name unknown|does not exist/i.test(message)) return "missing";
  const network = [
    /dial tcp|no such host|lookup \S+ on|server misbehaving|network is unreachable|no route to host/i,
    /i\/o timeout|connection (refused|reset)|handshake|deadline exceeded|Client\.Timeout|\bEOF\b|proxyconnect|x509|certificate/i,
  ];
  return network.some((re) => re.test(message)) ? "network" : "other";
}

/** The failure of a pull, naming the registry, and what to check for that kind of failure. */
export function pullFailureMessage(image: string, detail: string): string {
  let registry: string;
  try {
    registry = registryOf(image);
  } catch {
    registry = "its registry";
  }
  const hint: Record<PullErrorKind, string> = {
    network: `check the box's network / DNS / firewall to ${registry}`,
    missing: `check the image name and tag: ${registry} does not have it`,
    auth: `a private image needs \`docker login ${registry}\` as root on the box; else check the name`,
    "rate-limit": `${registry} limits pulls: wait, or \`docker login ${registry}\` as root on the box`,
    other: `check the box's network / DNS / firewall to ${registry}, and the image name`,
  };
  return `pull of ${image} from ${registry} failed: ${detail.trim() || "no reason given"}; ${hint[classifyPullError(detail)]}`;
}

/** A layer as the pull stream tells it. */
export interface LayerState {
  id: string;
  /** the engine's last status for it ("Downloading", "Already exists", "Pull complete", "Retrying in 5 seconds", …) */
  status: string;
  phase: "waiting" | "downloading" | "downloaded" | "extracting" | "done" | "exists" | "retrying";
  /** compressed bytes fetched so far */
  current: number;
  /** compressed size, once the engine said it (a small layer may never say it) */
  total?: number;
  /** bytes extracted so far */
  extracted: number;
}

export interface PullSnapshot {
  phase: "starting" | "downloading" | "extracting" | "done" | "failed";
  /** layers of the image, and those already there or pulled */
  layers: number;
  layersDone: number;
  /** layers the box already had */
  layersExisting: number;
  /** layers waiting for the registry again (a dropped connection) */
  layersRetrying: number;
  bytesDone: number;
  /** sum of the sizes known so far; the engine tells a layer's size only when its download starts */
  bytesTotal: number;
  /** true when every layer to fetch has told its size: bytesTotal is then the whole download */
  sizesKnown: boolean;
  bytesExtracted: number;
  /** over the sliding window; 0 until two samples are apart */
  speedBytesPerSec: number;
  /** of the bytes known; a lower bound while !sizesKnown; null without a speed */
  etaSeconds: number | null;
  elapsedSeconds: number;
  digest?: string;
  error?: string;
  /** one line for the task tree */
  text: string;
}

const LAYER_ID = /^[0-9a-f]{12,64}$/;

/** Feed it the stream's lines (in order); snapshot() says where the pull is. */
export class PullTracker {
  private readonly layers = new Map<string, LayerState>();
  private readonly samples: { t: number; bytes: number }[] = [];
  private readonly started: number;
  private readonly now: () => number;
  private readonly windowMs: number;
  /** the engine's HTTP status (from pullCommand's last line) */
  httpStatus?: number;
  /** the engine's "Status: …" line: the pull finished */
  finished = false;
  digest?: string;
  error?: string;

  constructor(opts: { now?: () => number; windowMs?: number } = {}) {
    this.now = opts.now ?? Date.now;
    this.windowMs = opts.windowMs ?? 10_000;
    this.started = this.now();
  }

  /** One line of the stream; lines that are not JSON (a proxy's HTML error page) become the error if nothing better came. */
  feed(line: string): void {
    const text = line.trim();
    if (!text) return;
    let msg: Record<string, any>;
    try {
      msg = JSON.parse(text);
    } catch {
      this.error ??= text.slice(0, 300);
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg[HTTP_MARK] === "string") {
      this.httpStatus = Number(msg[HTTP_MARK]) || 0;
      return;
    }
    // mid-stream: {"errorDetail":{"message":…},"error":…}; before it (non-200): {"message":…}
    const err = msg.errorDetail?.message ?? msg.error ?? (msg.status === undefined ? msg.message : undefined);
    if (typeof err === "string") {
      this.error = err;
      return;
    }
    const status = typeof msg.status === "string" ? msg.status : "";
    if (status.startsWith("Digest: ")) this.digest = status.slice(8).trim();
    if (status.startsWith("Status: ")) this.finished = true;
    const id = typeof msg.id === "string" ? msg.id : "";
    // "Pulling from <repo>" carries the tag as its id; only layer ids are layers
    if (!LAYER_ID.test(id) || status.startsWith("Pulling from")) return;
    this.layer(id, status, msg.progressDetail ?? {});
    this.sample();
  }

  private layer(id: string, status: string, detail: { current?: unknown; total?: unknown }): void {
    const l = this.layers.get(id) ?? { id, status, phase: "waiting", current: 0, extracted: 0 };
    this.layers.set(id, l);
    l.status = status;
    const current = typeof detail.current === "number" ? detail.current : undefined;
    const total = typeof detail.total === "number" && detail.total > 0 ? detail.total : undefined;
    const fetched = () => {
      if (l.total !== undefined) l.current = l.total;
    };
    if (status === "Already exists") l.phase = "exists";
    else if (status === "Downloading") {
      l.phase = "downloading";
      if (total !== undefined) l.total = total;
      if (current !== undefined) l.current = current;
    } else if (status === "Verifying Checksum" || status === "Download complete") {
      l.phase = "downloaded";
      fetched();
    } else if (status === "Extracting") {
      l.phase = "extracting";
      // a layer too small to report its download says its size here
      if (l.total === undefined && total !== undefined) l.total = total;
      fetched();
      if (current !== undefined) l.extracted = current;
    } else if (status === "Pull complete") {
      l.phase = "done";
      fetched();
      if (l.total !== undefined) l.extracted = l.total;
    } else if (status.startsWith("Retrying")) l.phase = "retrying";
    else if (status === "Pulling fs layer" || status === "Waiting") l.phase = l.phase === "exists" ? "exists" : "waiting";
  }

  private bytesDone(): number {
    let n = 0;
    for (const l of this.layers.values()) if (l.phase !== "exists") n += l.current;
    return n;
  }

  private sample(): void {
    const t = this.now();
    const bytes = this.bytesDone();
    const last = this.samples[this.samples.length - 1];
    if (last && last.t === t) last.bytes = bytes;
    else this.samples.push({ t, bytes });
    // keep the newest sample at or before the window's start: it gives the bytes the window starts from
    while (this.samples.length > 1 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
  }

  /** Bytes per second over the last windowMs up to now: a stalled download falls to 0 once the window passes it. */
  private speed(now: number, bytesDone: number): number {
    const from = Math.max(this.started, now - this.windowMs);
    if (now <= from) return 0;
    let base = 0;
    for (const s of this.samples) if (s.t <= from) base = s.bytes;
    return Math.max(0, (bytesDone - base) / ((now - from) / 1000));
  }

  snapshot(): PullSnapshot {
    const all = [...this.layers.values()];
    const fetch = all.filter((l) => l.phase !== "exists");
    const bytesDone = this.bytesDone();
    const bytesTotal = fetch.reduce((n, l) => n + (l.total ?? 0), 0);
    // a layer still to fetch whose size the engine has not said yet (it says it when its download starts)
    const unsized = (l: LayerState) => l.total === undefined && ["waiting", "downloading", "retrying"].includes(l.phase);
    // before the first layer to fetch is listed, nothing says how much there is
    const sizesKnown = fetch.length ? !fetch.some(unsized) : this.finished;
    const now = this.now();
    const speed = this.speed(now, bytesDone);
    const remaining = Math.max(0, bytesTotal - bytesDone);
    const downloading = !fetch.length || fetch.some((l) => ["waiting", "downloading", "retrying"].includes(l.phase));
    const phase: PullSnapshot["phase"] = this.error
      ? "failed"
      : this.finished
        ? "done"
        : !all.length
          ? "starting"
          : downloading
            ? "downloading"
            : "extracting";
    const snap: PullSnapshot = {
      phase,
      layers: all.length,
      layersDone: all.filter((l) => l.phase === "exists" || l.phase === "done").length,
      layersExisting: all.length - fetch.length,
      layersRetrying: fetch.filter((l) => l.phase === "retrying").length,
      bytesDone,
      bytesTotal,
      sizesKnown,
      bytesExtracted: fetch.reduce((n, l) => n + l.extracted, 0),
      speedBytesPerSec: Math.round(speed),
      etaSeconds: speed > 0 ? remaining / speed : remaining === 0 && sizesKnown && fetch.length ? 0 : null,
      elapsedSeconds: (now - this.started) / 1000,
      digest: this.digest,
      error: this.error,
      text: "",
    };
    snap.text = pullText(snap);
    return snap;
  }
}

/** One line: bytes, speed, ETA and layers while downloading; extracted bytes after. */
export function pullText(s: Omit<PullSnapshot, "text">): string {
  const layers = `layers ${s.layersDone}/${s.layers}${s.layersExisting ? ` (${s.layersExisting} present)` : ""}`;
  const plus = s.sizesKnown ? "" : "+";
  switch (s.phase) {
    case "starting":
      return "asking the registry";
    case "failed":
      return `pull failed: ${s.error}`;
    case "done":
      return `pulled ${fmtBytes(s.bytesDone)}, ${layers}`;
    case "extracting":
      return `extracting ${fmtBytes(s.bytesExtracted)} / ${fmtBytes(s.bytesTotal)}, ${layers}`;
    case "downloading": {
      // a share of a partly known total would overstate progress: shown only once every size is known
      const pct = s.sizesKnown && s.bytesTotal > 0 ? ` ${Math.floor((s.bytesDone / s.bytesTotal) * 100)}%` : "";
      const retry = s.layersRetrying ? `, ${s.layersRetrying} retrying (registry unreachable?)` : "";
      const eta = `${fmtEta(s.etaSeconds)}${plus && s.etaSeconds !== null ? plus : ""}`;
      const bytes = `${fmtBytes(s.bytesDone)} / ${fmtBytes(s.bytesTotal)}${plus}${pct}`;
      return `${bytes} at ${fmtBytes(s.speedBytesPerSec)}/s, ${eta}, ${layers}${retry}`;
    }
  }
}

/** "pulled 12.0 GB in 340s (35.3 MB/s)" for the step's note. */
export function pulledNote(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? ` (${fmtBytes(Math.round(bytes / seconds))}/s)` : "";
  return `pulled ${fmtBytes(bytes)} in ${seconds.toFixed(seconds < 10 ? 1 : 0)}s${rate}`;
}
