// comfyui-api's workflow folder as data: which files are workflows, the endpoint each one serves,
// and the plan that makes a host's folder equal to the project's `workflows/` (pure; no I/O).
//
// comfyui-api (src/workflows/index.ts) walks WORKFLOW_DIR at start-up: a sub-folder becomes a path
// segment, `<name>.ts` is transpiled into a sibling `<name>.js` and `<name>.js` is evaluated; the
// key is the file name with its first ".ts" / ".js" removed, and a folder and a file of the same
// name share one key. So names are held to letters, digits, `_` and `-`, one extension each.

export const WORKFLOW_EXTENSIONS = [".ts", ".js"] as const;

/** A path under the workflows folder, "/"-separated, no leading "./". */
export type RelPath = string;

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** A workflow file by its name: `.ts` or `.js`, not a declaration file. */
export function isWorkflowFile(rel: RelPath): boolean {
  return (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) || rel.endsWith(".js");
}

/** "qwen/txt2img.ts" -> "/workflow/qwen/txt2img", the route comfyui-api registers. */
export function endpointOf(rel: RelPath): string {
  return `/workflow/${rel.replace(/\.(ts|js)$/, "")}`;
}

/** Where comfyui-api reads the file inside the container, as its log lines name it (.ts files by their .js). */
export function containerFileOf(rel: RelPath, workflowDir = "/workflows"): string {
  return `${workflowDir}/${rel.replace(/\.ts$/, ".js")}`;
}

/** Why comfyui-api could not serve a file under this name, or undefined when the name is fine. */
export function nameProblem(rel: RelPath): string | undefined {
  const parts = rel.split("/");
  const file = parts.pop()!;
  for (const d of parts) {
    if (!SEGMENT.test(d)) return `folder name "${d}": use letters, digits, "_" and "-" only (it becomes a URL path segment)`;
  }
  const m = /^(.+)\.(ts|js)$/.exec(file);
  if (!m || !SEGMENT.test(m[1]!)) {
    return (
      `file name "${file}": use letters, digits, "_" and "-" before one .ts or .js ` +
      `(comfyui-api cuts the name at its first ".ts"/".js")`
    );
  }
  return undefined;
}

/**
 * Names that collide in comfyui-api's route tree: `x.ts` and a folder `x/` side by side (one key
 * "x"), and `x.ts` beside `x.js` (the .ts is transpiled over the .js). Returns one problem per clash.
 */
export function nameClashes(rels: RelPath[]): { rel: RelPath; problem: string }[] {
  const out: { rel: RelPath; problem: string }[] = [];
  const set = new Set(rels);
  const dirs = new Set(
    rels.flatMap((r) =>
      r
        .split("/")
        .slice(0, -1)
        .map((_, i, a) => a.slice(0, i + 1).join("/")),
    ),
  );
  for (const r of rels) {
    const base = r.replace(/\.(ts|js)$/, "");
    if (dirs.has(base))
      out.push({ rel: r, problem: `a folder ${base}/ beside it has the same endpoint name; comfyui-api keeps only one of them` });
    if (r.endsWith(".js") && set.has(`${base}.ts`))
      out.push({ rel: r, problem: `${base}.ts beside it is transpiled over it on the host; keep one of the two` });
  }
  return out;
}

/**
 * `sha256sum` output (`<hex>  ./path`, run inside the folder) -> path -> sha256. A line starting
 * with a backslash carries an escaped name (\\ and \n), as GNU coreutils writes it.
 */
export function parseShaList(text: string): Map<RelPath, string> {
  const out = new Map<RelPath, string>();
  for (const raw of text.split("\n")) {
    if (!raw) continue;
    const escaped = raw.startsWith("\\");
    const line = escaped ? raw.slice(1) : raw;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) continue;
    let path = m[2]!;
    if (escaped) path = path.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
    out.set(path.replace(/^\.\//, ""), m[1]!);
  }
  return out;
}

export interface SyncPlan {
  /** local files the host lacks or has with other content */
  upload: RelPath[];
  /** host files with no local counterpart (a removed workflow's .js included) */
  remove: RelPath[];
  unchanged: RelPath[];
  /** the .js comfyui-api wrote beside a .ts that stays: not the project's, left alone */
  generated: RelPath[];
}

/** What to send and what to delete so that the host's folder serves exactly the local workflows. */
export function planSync(local: Map<RelPath, string>, remote: Map<RelPath, string>): SyncPlan {
  const plan: SyncPlan = { upload: [], remove: [], unchanged: [], generated: [] };
  for (const [rel, sha] of local) (remote.get(rel) === sha ? plan.unchanged : plan.upload).push(rel);
  for (const rel of remote.keys()) {
    if (local.has(rel)) continue;
    if (rel.endsWith(".js") && local.has(rel.replace(/\.js$/, ".ts"))) plan.generated.push(rel);
    else plan.remove.push(rel);
  }
  for (const list of Object.values(plan)) (list as string[]).sort();
  return plan;
}

export const planChanges = (p: SyncPlan) => p.upload.length + p.remove.length;

/** "sent 2 (a.ts, b/c.ts), removed 1 (old.ts, old.js)": a step's note. */
export function describePlan(p: SyncPlan, done = true): string {
  const list = (xs: string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(", ")}, ...` : xs.join(", "));
  const parts: string[] = [];
  if (p.upload.length) parts.push(`${done ? "sent" : "to send"} ${p.upload.length}: ${list(p.upload)}`);
  if (p.remove.length) parts.push(`${done ? "removed" : "to remove"} ${p.remove.length}: ${list(p.remove)}`);
  if (!parts.length) return `${p.unchanged.length} file${p.unchanged.length === 1 ? "" : "s"} up to date`;
  if (p.unchanged.length) parts.push(`${p.unchanged.length} unchanged`);
  return parts.join("; ");
}

export interface TarEntry {
  path: RelPath;
  data: Buffer;
  /** default 0o644 */
  mode?: number;
}

/**
 * A POSIX ustar archive of regular files (what `tar -x` on the host unpacks from stdin): one
 * round trip for any number of files. Names up to 255 bytes (prefix + name), owner 0.
 */
export function tarArchive(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const header = Buffer.alloc(512);
    const [prefix, name] = splitTarName(e.path);
    header.write(name, 0, 100, "utf8");
    octal(header, 100, 8, e.mode ?? 0o644);
    octal(header, 108, 8, 0);
    octal(header, 116, 8, 0);
    octal(header, 124, 12, e.data.length);
    octal(header, 136, 12, mtime);
    header.fill(" ", 148, 156); // the checksum field counts as blanks while summing
    header.write("0", 156, 1, "ascii"); // regular file
    header.write("ustar\u000000", 257, 8, "binary");
    header.write(prefix, 345, 155, "utf8");
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "binary");
    blocks.push(header, e.data);
    const pad = (512 - (e.data.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return Buffer.concat(blocks);
}

function octal(buf: Buffer, at: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, "0") + "\u0000", at, len, "ascii");
}

function splitTarName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ["", path];
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`${path}: too long a path for a tar archive (255 bytes at most)`);
}
