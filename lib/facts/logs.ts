// The comfyui container's log as data: the commands that read it (`docker logs`, once or
// followed), one parser for its lines (comfyui-api writes pino JSON lines, ComfyUI plain text,
// docker adds a timestamp to each), a readable rendering, and the filter of `logs --errors`
// (tracebacks, pino level >= 50, "Failed to ..." lines). Pure functions, no I/O.
import { shQuote } from "../quote.ts";

export const PINO_LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

export interface LogLine {
  /** ISO time: pino's own, else docker's timestamp */
  time?: string;
  /** "api": a pino JSON line (comfyui-api); "comfy": a text line (ComfyUI, and comfyui-api's console lines) */
  source: "api" | "comfy";
  /** pino's level number */
  level?: number;
  msg: string;
  /** key=value pairs of a pino line beyond its message */
  fields: string[];
  /** lines that belong under it (a pino error's stack) */
  more: string[];
  /** the line as the container wrote it, without docker's timestamp */
  raw: string;
}

const DOCKER_TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (.*)$/s;
// what pino (and fastify) put on every line, or is shown another way
const PINO_BASE = new Set(["level", "time", "pid", "hostname", "msg", "v", "req", "res", "err", "stack", "responseTime"]);

function isoOf(t: unknown): string | undefined {
  if (typeof t === "number" && Number.isFinite(t)) return new Date(t).toISOString();
  if (typeof t === "string" && !Number.isNaN(Date.parse(t))) return new Date(Date.parse(t)).toISOString();
  return undefined;
}

function short(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const s = JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}

/** One line of `docker logs [-t]` output. */
export function parseLogLine(line: string): LogLine {
  let text = line.replace(/\r$/, "");
  let dockerTime: string | undefined;
  const ts = DOCKER_TS.exec(text);
  if (ts) {
    dockerTime = isoOf(ts[1]!.replace(/(\.\d{3})\d+/, "$1"));
    text = ts[2]!;
  }
  const t = text.trim();
  if (t.startsWith("{") && t.endsWith("}")) {
    try {
      const j = JSON.parse(t) as Record<string, unknown>;
      if (j && typeof j === "object" && typeof j.level === "number") {
        const fields: string[] = [];
        const req = j.req as { method?: string; url?: string } | undefined;
        const res = j.res as { statusCode?: number } | undefined;
        if (req?.method || req?.url) fields.push(`${req.method ?? ""} ${req.url ?? ""}`.trim());
        if (res?.statusCode !== undefined) fields.push(String(res.statusCode));
        if (typeof j.responseTime === "number") fields.push(`${Math.round(j.responseTime)}ms`);
        for (const [k, v] of Object.entries(j)) {
          if (PINO_BASE.has(k) || (k === "error" && typeof v === "object")) continue;
          const s = short(v);
          if (s !== undefined) fields.push(`${k}=${s}`);
        }
        const err = j.err as { message?: string; stack?: string } | undefined;
        const stack = typeof j.stack === "string" ? j.stack : typeof err?.stack === "string" ? err.stack : undefined;
        if (err?.message && !stack) fields.push(`err=${short(err.message)}`);
        return {
          time: isoOf(j.time) ?? dockerTime,
          source: "api",
          level: j.level,
          msg: typeof j.msg === "string" ? j.msg : "",
          fields,
          more: stack ? stack.split("\n") : [],
          raw: text,
        };
      }
    } catch {
      /* not JSON after all: a text line */
    }
  }
  return { time: dockerTime, source: "comfy", msg: text, fields: [], more: [], raw: text };
}

/** `2025-05-01 12:00:01 INFO  api    Loaded workflow workflow=txt2img` */
export function formatLogLine(l: LogLine): string {
  const time = l.time ? l.time.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "-".padEnd(19);
  const level = l.level !== undefined ? (PINO_LEVELS[l.level] ?? `L${l.level}`) : "";
  const head = `${time} ${level.padEnd(5)} ${l.source.padEnd(5)} ${[l.msg, ...l.fields].filter(Boolean).join(" ")}`.trimEnd();
  return [head, ...l.more.map((m) => `    ${m}`)].join("\n");
}

// text lines that are an error on their own
const ERROR_TEXT = [
  /\bFailed to\b/,
  /^!!! Exception during processing !!!/,
  /Cannot import .* module for custom nodes/,
  /\(IMPORT FAILED\)/,
  /^Prompt outputs failed validation/,
  /^(ERROR|CRITICAL|FATAL)\b/,
  /^\w*(Error|Exception):/,
];
const TRACEBACK = /^Traceback \(most recent call last\):/;
const CHAINED = /^(During handling of the above exception|The above exception was the direct cause)/;

export function isErrorLine(l: LogLine): boolean {
  if (l.source === "api") return (l.level ?? 0) >= 50 || /\bFailed to\b/.test(l.msg);
  return ERROR_TEXT.some((re) => re.test(l.msg));
}

/**
 * `logs --errors`, one line at a time (so it works while following): error lines, and whole Python
 * tracebacks (from "Traceback (most recent call last):" through the indented frames to the exception
 * line, chained ones too).
 */
export class ErrorFilter {
  private inTraceback = false;
  /** the last line kept was an error: indented lines under it (a Node stack's "    at ...") belong to it */
  private underError = false;

  push(l: LogLine): boolean {
    const text = l.source === "comfy" ? l.msg : "";
    if (this.inTraceback) {
      if (/^\s/.test(text) || text === "" || TRACEBACK.test(text) || CHAINED.test(text)) return true;
      this.inTraceback = false;
      this.underError = true;
      return true; // the exception line ends it
    }
    if (TRACEBACK.test(text) || CHAINED.test(text)) {
      this.inTraceback = true;
      return true;
    }
    if (this.underError && l.source === "comfy" && /^\s+\S/.test(text)) return true;
    this.underError = isErrorLine(l);
    return this.underError;
  }
}

/** Splits a byte stream into lines; the last partial line waits for the next chunk (or `end`). */
export class LineSplitter {
  private rest = "";
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    const text = this.rest + chunk;
    const parts = text.split("\n");
    this.rest = parts.pop()!;
    for (const p of parts) this.onLine(p);
  }

  end(): void {
    if (this.rest) this.onLine(this.rest);
    this.rest = "";
  }
}

/** docker's --since: a duration (10m, 1h30m), a unix time, or a date / RFC 3339 time */
export function validSince(s: string): boolean {
  return (
    /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s) ||
    /^\d+(\.\d+)?$/.test(s) ||
    /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$/.test(s)
  );
}

export interface LogsQuery {
  container: string;
  since?: string;
  /** the last N lines (docker's --tail); undefined: all */
  tail?: number;
}

function logsArgs(q: LogsQuery): string {
  return [
    "logs",
    "--timestamps",
    ...(q.since ? ["--since", shQuote(q.since)] : []),
    ...(q.tail !== undefined ? ["--tail", String(Math.max(0, Math.floor(q.tail)))] : []),
  ].join(" ");
}

/** The log once, stdout and stderr together (run it with sudo: the login user may not talk to docker). */
export function logsCommand(q: LogsQuery): string {
  return `docker ${logsArgs(q)} ${shQuote(q.container)} 2>&1`;
}

/**
 * The log followed until the SSH channel closes. `docker logs -f` would outlive a closed channel
 * (it only notices on its next write), so a watchdog reads this command's stdin, which the channel
 * holds open: when flow stops or the connection drops, stdin ends and the watchdog kills it.
 */
export function followCommand(q: LogsQuery): string {
  return [
    "exec 3<&0",
    `docker ${logsArgs(q)} --follow ${shQuote(q.container)} </dev/null 2>&1 &`,
    "p=$!",
    // explicit redirection: an asynchronous list would otherwise get /dev/null as stdin
    `( cat <&3 >/dev/null; kill "$p" 2>/dev/null ) &`,
    "w=$!",
    "exec 3<&-",
    `wait "$p"; r=$?`,
    `kill "$w" 2>/dev/null`,
    `exit "$r"`,
  ].join("\n");
}

// ---------- export ----------

const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?|AUTH)/i;

/**
 * Values of secret-looking assignments (`HF_TOKEN=...`, as in docker inspect's Env or a log line)
 * replaced by ***: a safety net under the redactor, which knows only the secrets flow was given.
 */
export function maskSecretAssignments(text: string): string {
  return text.replace(/\b([A-Za-z_][A-Za-z0-9_]*)=([^\s"',;]+)/g, (all, name: string) => (SECRET_NAME.test(name) ? `${name}=***` : all));
}
