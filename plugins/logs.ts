// `logs` (ops tier): ComfyUI's and comfyui-api's lines from the comfyui container, readable.
//   flow run logs --host gpu1                      the last 100 lines
//   flow run logs --hosts all --since 10m --errors tracebacks, level >= 50, "Failed to ..." lines
//   flow run logs --hosts all --follow             every host at once, each line prefixed with its host, until Ctrl-C
//   flow run logs --hosts all --export ./logs      a .tar.gz per host (log, docker inspect, status, nvidia-smi -q), redacted
// It lives in the ops tier beside `status`: it is about the fleet's state, its export carries the
// status JSON, and it needs nothing of comfyui-api's deploy tasks.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { gzipSync } from "node:zlib";
import { z } from "zod";
import { defineTask, shQuote, TaskError, type TaskContext } from "../lib/index.ts";
import {
  ErrorFilter,
  followCommand,
  formatLogLine,
  LineSplitter,
  logsCommand,
  maskSecretAssignments,
  parseLogLine,
  validSince,
  type LogsQuery,
} from "../lib/facts/logs.ts";
import type { StatusRow } from "../lib/facts/status.ts";
import { redactor } from "../lib/secrets.ts";

const root = { sudo: true } as const;

// ---------- Ctrl-C for long-running bodies (logs --follow, status --watch) ----------

export interface Interrupt {
  /** aborted on the first Ctrl-C (or SIGTERM) */
  readonly signal: AbortSignal;
  /** waits `ms`; true when interrupted meanwhile */
  sleep(ms: number): Promise<boolean>;
  /** this body no longer listens */
  done(): void;
}

const active = new Set<AbortController>();
let handler: ((sig: NodeJS.Signals) => void) | undefined;
/** listr2's own SIGINT listener (it exits 127 at once), set aside while we handle Ctrl-C */
let setAside: ((...args: unknown[]) => void)[] = [];

/**
 * While a body follows or watches, the first Ctrl-C stops every such body of the run (they end
 * their step normally, so the run ends with its recap and exit code); a second one quits at once.
 */
export function interruptible(): Interrupt {
  if (!handler) {
    let hits = 0;
    handler = (sig) => {
      if (++hits > 1) process.exit(sig === "SIGINT" ? 130 : 143);
      process.stderr.write(`\nflow: ${sig}: stopping (once more to quit at once)\n`);
      for (const c of active) c.abort();
    };
    // The terminal view (listr2) registers a SIGINT listener that exits 127 before any other
    // listener runs; lib/output/listr.ts should pass `registerSignalListeners: false`. Until it
    // does, its listener waits aside while a body follows, and comes back after.
    setAside = process.listeners("SIGINT").filter((l) => l.name === "bound signalHandler") as typeof setAside;
    for (const l of setAside) process.removeListener("SIGINT", l);
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  }
  const c = new AbortController();
  active.add(c);
  return {
    signal: c.signal,
    sleep: (ms) =>
      new Promise<boolean>((res) => {
        if (c.signal.aborted) return res(true);
        const on = () => {
          clearTimeout(timer);
          res(true);
        };
        const timer = setTimeout(() => {
          c.signal.removeEventListener("abort", on);
          res(false);
        }, ms);
        c.signal.addEventListener("abort", on, { once: true });
      }),
    done: () => {
      active.delete(c);
      if (!active.size && handler) {
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
        handler = undefined;
        for (const l of setAside.splice(0)) process.once("SIGINT", l);
      }
    },
  };
}

// ---------- a .tar.gz, written here (no tar needed on this machine) ----------

export interface TarEntry {
  name: string;
  data: Buffer | string;
  mode?: number;
}

const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0") + "\0";

function tarHeader(name: string, size: number, mode: number, type: "0" | "5", mtime: number): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(mtime, 12), 136);
  h.write("        ", 148);
  h.write(type, 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

/** A gzipped ustar archive of `entries`, all under one folder `dir`. */
export function tarGz(dir: string, entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [tarHeader(`${dir}/`, 0, 0o755, "5", mtime)];
  for (const e of entries) {
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data, "utf8");
    parts.push(tarHeader(`${dir}/${e.name}`, data.length, e.mode ?? 0o644, "0", mtime), data);
    if (data.length % 512) parts.push(Buffer.alloc(512 - (data.length % 512)));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

// ---------- the task ----------

export const logsOptions = z.object({
  since: z.string().optional().describe("only lines since then: 10m, 2h, 2025-05-01, or an RFC 3339 time"),
  lines: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe("the last N lines (default 100, 10 with --follow, 5000 with --errors, all with --since or --export)"),
  follow: z.boolean().default(false).describe("keep printing new lines, from every host at once, until Ctrl-C"),
  errors: z
    .boolean()
    .default(false)
    .describe('only errors: Python tracebacks, comfyui-api lines of level error and above, "Failed to ..." lines'),
  export: z
    .string()
    .optional()
    .describe("write a .tar.gz per host into this folder: the log, docker inspect, status JSON, nvidia-smi -q (secrets redacted)"),
  raw: z.boolean().default(false).describe("lines as the container wrote them (comfyui-api's JSON as is)"),
  container: z.string().default("comfyui").describe("the container to read"),
});
type LogsOptions = z.output<typeof logsOptions>;

/** How lines reach the user: the terminal as is (one host, `ctx.raw`), else one output line each, prefixed with the host. */
function printer(ctx: TaskContext, o: LogsOptions): { line(raw: string): void; shown(): number; seen(): number } {
  const filter = o.errors ? new ErrorFilter() : undefined;
  let shown = 0;
  let seen = 0;
  const out = (text: string) => {
    shown++;
    if (ctx.raw) ctx.raw.stdout(Buffer.from(text + "\n"));
    else ctx.log(text);
  };
  return {
    line(raw) {
      if (!raw && !o.raw) return;
      seen++;
      const l = parseLogLine(raw);
      if (filter && !filter.push(l)) return;
      out(o.raw ? l.raw : formatLogLine(l));
    },
    shown: () => shown,
    seen: () => seen,
  };
}

function query(o: LogsOptions): LogsQuery {
  const tail = o.lines ?? (o.since || o.export ? undefined : o.errors ? 5000 : 100);
  return { container: o.container, since: o.since, tail };
}

const lastLine = (s: string) => s.trim().split("\n").at(-1) ?? "";

async function once(ctx: TaskContext, o: LogsOptions): Promise<void> {
  await ctx.step(o.errors ? "errors in the log" : "log", async () => {
    const r = await ctx.exec(logsCommand(query(o)), root);
    if (r.code !== 0) return { status: "failed", note: lastLine(r.stdout + r.stderr) || `docker logs exited ${r.code}` };
    const p = printer(ctx, o);
    const split = new LineSplitter((l) => p.line(l));
    split.push(r.stdout);
    split.end();
    ctx.emit({ logs: { lines: p.seen(), shown: p.shown() } });
    return { status: "ok", note: o.errors ? `${p.shown()} error line${p.shown() === 1 ? "" : "s"} in ${p.seen()}` : `${p.seen()} lines` };
  });
}

async function follow(ctx: TaskContext, o: LogsOptions): Promise<void> {
  const stop = interruptible();
  try {
    await ctx.step("following the log (Ctrl-C ends)", async () => {
      const p = printer(ctx, o);
      const split = new LineSplitter((l) => p.line(l));
      const dec = new StringDecoder("utf8");
      // held open for as long as we follow: its end is how the host learns we stopped
      const stdin = new PassThrough();
      stop.signal.addEventListener("abort", () => stdin.end(), { once: true });
      const r = await ctx.exec(followCommand({ ...query(o), tail: o.lines ?? (o.since ? undefined : 10) }), {
        ...root,
        stdin,
        signal: stop.signal,
        onStdout: (c) => split.push(dec.write(c)),
      });
      stdin.end();
      split.push(dec.end());
      split.end();
      ctx.emit({ logs: { lines: p.seen(), shown: p.shown(), stopped: stop.signal.aborted } });
      if (stop.signal.aborted) return { status: "ok", note: `stopped after ${p.seen()} lines` };
      if (r.code !== 0) return { status: "failed", note: lastLine(r.stdout + r.stderr) || `docker logs exited ${r.code ?? r.signal}` };
      return { status: "ok", note: `the log ended (container stopped) after ${p.seen()} lines` };
    });
  } finally {
    stop.done();
  }
}

const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace("T", "-").replace(/\..*$/, "");
/** every text that leaves for the archive: the run's secrets, URL credentials, then secret-looking assignments */
const scrub = (text: string) => maskSecretAssignments(redactor.redact(text));

async function exportLogs(ctx: TaskContext, o: LogsOptions, collectStatus: StatusOf): Promise<void> {
  // as the user typed it: relative to the working directory
  const dir = resolve(process.cwd(), o.export!);
  await ctx.step(`export to ${o.export}`, async () => {
    const now = new Date();
    const base = `${clean(ctx.host.name)}-${stamp(now)}`;
    const log = await ctx.exec(logsCommand(query(o)), root);
    const inspect = await ctx.exec(`docker inspect ${shQuote(o.container)}`, root);
    const smi = await ctx.exec("command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -q");
    let status: StatusRow;
    try {
      status = await collectStatus(ctx, o.container);
    } catch (e) {
      status = { reachable: false, error: (e as Error).message };
    }
    const readable = log.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => formatLogLine(parseLogLine(l)))
      .join("\n");
    const entries = [
      { name: "comfyui.log", data: scrub(log.stdout) },
      { name: "comfyui-readable.log", data: scrub(readable + "\n") },
      { name: "docker-inspect.json", data: scrub(inspect.stdout || inspect.stderr) },
      { name: "status.json", data: scrub(JSON.stringify(redactor.redactValue(status), null, 2) + "\n") },
      ...(smi.code === 0 ? [{ name: "nvidia-smi.txt", data: scrub(smi.stdout) }] : []),
    ];
    const manifest = {
      host: ctx.host.name,
      at: now.toISOString(),
      container: o.container,
      since: o.since ?? null,
      lines: query(o).tail ?? "all",
      files: entries.map((e) => e.name),
      notes: [
        ...(log.code !== 0 ? [`docker logs exited ${log.code}: ${lastLine(log.stdout)}`] : []),
        ...(inspect.code !== 0 ? [`docker inspect exited ${inspect.code}`] : []),
        ...(smi.code !== 0 ? ["no nvidia-smi on the host"] : []),
      ],
    };
    entries.push({ name: "manifest.json", data: scrub(JSON.stringify(manifest, null, 2) + "\n") });
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${base}.tar.gz`);
    const gz = tarGz(base, entries, Math.floor(now.getTime() / 1000));
    await writeFile(file, gz, { mode: 0o600 });
    ctx.emit({ export: { file, files: manifest.files, bytes: gz.length } });
    return {
      status: "ok",
      note: `${file} (${(gz.length / 1024).toFixed(1)} KB${manifest.notes.length ? `; ${manifest.notes.join("; ")}` : ""})`,
    };
  });
}

/** What `status` reports for a host (the export carries it). */
export type StatusOf = (ctx: TaskContext, container: string) => Promise<StatusRow>;

/** The `logs` task; `collectStatus` gives the status JSON the export carries. */
export function logsTask(collectStatus: StatusOf) {
  return defineTask({
    name: "logs",
    description:
      "ComfyUI's and comfyui-api's lines from the comfyui container, readable: " +
      "--since, --errors, --follow (many hosts, Ctrl-C ends), --export DIR",
    lock: false,
    // one host without --json: the lines go to the terminal as they are, so they can be piped
    passthrough: true,
    options: logsOptions,
    async run(ctx, o) {
      if (o.since && !validSince(o.since))
        throw new TaskError(`--since ${o.since}: give a duration (10m, 1h30m), a unix time, or a date / RFC 3339 time`);
      if (o.export && o.follow) throw new TaskError("--export and --follow do not go together");
      if (o.export) return exportLogs(ctx, o, collectStatus);
      if (o.follow) return follow(ctx, o);
      return once(ctx, o);
    },
  });
}
