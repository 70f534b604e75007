// Push a script from tasks/ (bundled into one file with its dependencies) and run it
// detached on the host; follow its JSON-lines progress; re-attach to a running copy.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, isAbsolute, join } from "node:path";
import type { RemoteScriptRun, TaskContext } from "./task.ts";
import { TaskError } from "./task.ts";
import { collect, follow, launch, LOG_MARKER, runState } from "./commands/remote-script.ts";
import { hostPath } from "./commands/paths.ts";
import { ensureNode } from "./node-runtime.ts";
import { redactor } from "./secrets.ts";
import { PACKAGE_ROOT } from "./package-root.ts";

const TASKS_DIR = join(PACKAGE_ROOT, "tasks");
const bundles = new Map<string, Promise<Buffer>>();

/** One self-contained ESM file, so the host needs nothing but node. Cached per process. */
export function bundleScript(script: string): Promise<Buffer> {
  let b = bundles.get(script);
  if (!b) {
    b = (async () => {
      // a name from tasks/, or a path (tests push their own scripts)
      const candidates = isAbsolute(script) ? [script] : [join(TASKS_DIR, `${script}.ts`), join(TASKS_DIR, `${script}.mjs`)];
      const entry = candidates.find((p) => existsSync(p));
      if (!entry) throw new TaskError(`no script tasks/${script}.ts`);
      const { build } = await import("esbuild");
      const out = await build({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        write: false,
        logLevel: "silent",
        // paths in the bundle's comments are relative to this: the same sources give the same bytes wherever flow runs
        absWorkingDir: PACKAGE_ROOT,
        // bundled CommonJS dependencies call require()
        banner: {
          js: "import { createRequire as __flowCreateRequire } from 'node:module'; const require = __flowCreateRequire(import.meta.url);",
        },
      });
      return Buffer.from(out.outputFiles[0]!.contents);
    })();
    bundles.set(script, b);
  }
  return b;
}

export async function runRemoteScript(
  ctx: TaskContext,
  script: string,
  opts: { key: string; job?: unknown; onProgress?: (event: Record<string, unknown>) => void },
): Promise<RemoteScriptRun> {
  const { remoteDir } = ctx.flow.settings;
  const node = await ensureNode(ctx);
  if (ctx.dryRun) {
    ctx.log(`dry run: would push and run ${basename(script)} (${opts.key}) on the host`);
    return { result: null, how: "dry-run" };
  }
  const code = await bundleScript(script);
  const name = `${basename(script)
    .replace(/\.[cm]?[jt]s$/, "")
    .replace(/[^A-Za-z0-9_-]/g, "_")}-${createHash("sha256").update(code).digest("hex").slice(0, 12)}.mjs`;
  const scriptPath = `${remoteDir}/scripts/${name}`;
  await ctx.sh(`mkdir -p ${hostPath(remoteDir, "scripts")}`);
  await ctx.transport.upload(code, scriptPath.startsWith("/") ? scriptPath : await homePath(ctx, scriptPath), { mode: 0o644 });

  const state = (await ctx.sh(runState(remoteDir, opts.key))).trim();
  let how: RemoteScriptRun["how"] = "started";
  if (state === "running") {
    how = "attached";
    ctx.log(`re-attached to ${script} (${opts.key}) already running on the host`);
  } else if (state === "lost") {
    ctx.warn(`an earlier ${script} run (${opts.key}) died without an exit status (the host rebooted, or it was killed); starting it again`);
  } else if (state.startsWith("finished")) {
    const earlier = await collectResult(ctx, opts.key);
    if (earlier.exit === "0") {
      ctx.log(`${script} (${opts.key}) finished while nobody watched`);
      return { result: earlier.result, how: "finished-unwatched" };
    }
    ctx.warn(`an earlier ${script} run (${opts.key}) ended with status ${earlier.exit} while nobody watched; starting it again`);
  }
  if (how === "started") {
    await ctx.sh(launch(remoteDir, opts.key, node, hostPath(scriptPath)), { stdin: JSON.stringify(opts.job ?? {}) });
  }

  let buffered = "";
  const onLine = (line: string) => {
    if (!line.trim()) return;
    try {
      const ev = JSON.parse(line) as Record<string, unknown>;
      if (ev.type === "log" && typeof ev.message === "string") ctx.log(ev.message);
      opts.onProgress?.(ev);
    } catch {
      ctx.log(redactor.redact(line));
    }
  };
  let followed;
  try {
    followed = await ctx.transport.exec(follow(remoteDir, opts.key), {
      onStdout: (chunk) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          onLine(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      },
    });
  } catch (err) {
    throw new TaskError(
      `lost the connection while following ${script} (${(err as Error).message}); ` +
        `it keeps running on the host: run the same command again to re-attach`,
    );
  }
  if (followed.code === null) {
    throw new TaskError(
      `lost the connection while following ${script}; it keeps running on the host: run the same command again to re-attach`,
    );
  }
  onLine(buffered);
  const done = await collectResult(ctx, opts.key);
  if (done.exit !== "0") throw new TaskError(`${script} failed on the host (status ${done.exit})${done.log ? `:\n${done.log}` : ""}`);
  return { result: done.result, how };
}

async function collectResult(ctx: TaskContext, key: string): Promise<{ exit: string; result: unknown; log: string }> {
  const out = await ctx.sh(collect(ctx.flow.settings.remoteDir, key));
  const [head, log = ""] = out.split(`${LOG_MARKER}\n`);
  const [exit = "unknown", ...rest] = head!.split("\n");
  const json = rest.join("\n").trim();
  let result: unknown = null;
  try {
    result = json ? JSON.parse(json) : null;
  } catch {
    result = null;
  }
  return { exit: exit.trim(), result, log: redactor.redact(log.trim()) };
}

/** SFTP paths are not shell words: resolve a home-relative path once. */
async function homePath(ctx: TaskContext, rel: string): Promise<string> {
  const home = (await ctx.sh(`printf %s "$HOME"`)).trim();
  return `${home}/${rel}`;
}
