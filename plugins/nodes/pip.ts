// A pack's requirements, installed with the comfyui container's own Python into the persistent
// target it mounts (/opt/flow/python, on PYTHONPATH), so a re-created container keeps them. pip
// is asked first what is missing (`--dry-run --report`: it counts what the image and the target
// already have), then only that goes into the target with --no-deps; a plain `--target` install
// would ignore the image's packages and fetch torch again. Pure command builders and parsers.
import { shJoin, shQuote } from "../../lib/quote.ts";
import { CONTAINER_PYTHON } from "../../lib/comfy/deploy.ts";

export interface PipWhere {
  container: string;
  python: string;
  /** a PEP 503 index (settings, a mirror); default pip's own (PyPI) */
  indexUrl?: string;
  /** for a plain-http index the flowfile allows (pip refuses those otherwise) */
  trustedHost?: string;
}

const indexArgs = (w: PipWhere) => [
  ...(w.indexUrl ? ["--index-url", w.indexUrl] : []),
  ...(w.trustedHost ? ["--trusted-host", w.trustedHost] : []),
];
const common = ["--disable-pip-version-check", "--no-input", "--no-cache-dir"];

/** `<python> -m pip install ...` in the container, from a folder in it (the pack's) when given. */
function pipInstall(w: PipWhere, cwd: string | undefined, args: string[]): string {
  const where = cwd ? ["-w", cwd] : [];
  return shJoin(["docker", "exec", ...where, w.container, w.python, "-m", "pip", "install", ...args, ...common, ...indexArgs(w)]);
}

const TARGET = ["--target", CONTAINER_PYTHON];

/** What pip would install for the pack's requirements.txt, as JSON on stdout (pip >= 22.2). */
export function pipReportCommand(w: PipWhere, packDirInContainer: string): string {
  return pipInstall(w, packDirInContainer, ["--dry-run", "--quiet", "--report", "-", "-r", "requirements.txt"]);
}

/** The exact distributions the report named, into the target, without their dependencies (the report already has them). */
export function pipInstallCommand(w: PipWhere, pins: string[]): string {
  return pipInstall(w, undefined, [...TARGET, "--no-deps", "--upgrade", ...pins]);
}

/** For a pip without --report: everything into the target (slower, may repeat what the image has). */
export function pipPlainInstallCommand(w: PipWhere, packDirInContainer: string): string {
  return pipInstall(w, packDirInContainer, [...TARGET, "--upgrade", "-r", "requirements.txt"]);
}

export function installPyCommand(w: PipWhere, packDirInContainer: string): string {
  return shJoin(["docker", "exec", "-w", packDirInContainer, w.container, w.python, "install.py"]);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/;

/** `name==version` for each distribution pip's report would install; names and versions checked before they reach a shell. */
export function parsePipReport(stdout: string): string[] {
  const start = stdout.indexOf("{");
  if (start < 0) throw new Error("pip printed no report");
  const report = JSON.parse(stdout.slice(start)) as { install?: { metadata?: { name?: unknown; version?: unknown } }[] };
  const out: string[] = [];
  for (const item of report.install ?? []) {
    const { name, version } = item.metadata ?? {};
    if (typeof name !== "string" || typeof version !== "string" || !NAME.test(name) || !VERSION.test(version)) {
      throw new Error(`pip's report names an unexpected distribution: ${JSON.stringify(item.metadata ?? {}).slice(0, 120)}`);
    }
    out.push(`${name}==${version}`);
  }
  return out;
}

/** The requirement pip could not satisfy, from its error output, when it says. */
export function failedRequirement(stderr: string): string | undefined {
  const m =
    /No matching distribution found for ([^\s]+)/.exec(stderr) ??
    /Could not find a version that satisfies the requirement ([^\s]+)/.exec(stderr) ??
    /Invalid requirement: '?([^'\n]+)'?/.exec(stderr);
  return m?.[1];
}

/** pip too old for --report (before 22.2). */
export const noReportSupport = (stderr: string) => /no such option: --(report|dry-run)/.test(stderr);

/**
 * What the requirements step last did for each pack, kept beside the target: the sums of
 * requirements.txt and install.py and the pack's commit/version. Same line, nothing to do.
 */
export function requirementStateCommand(customNodes: string, markerDir: string, dirs: string[]): string {
  const q = shQuote;
  return dirs
    .map(
      (d) =>
        `r=$(cd -- ${q(`${customNodes}/${d}`)} 2>/dev/null && sha256sum requirements.txt install.py 2>/dev/null | ` +
        `awk '{printf "%s:%s,", $2, substr($1, 1, 16)}'); ` +
        `m=$(cat -- ${q(`${markerDir}/${d}`)} 2>/dev/null); printf '%s\\t%s\\t%s\\n' ${q(d)} "$r" "$m"`,
    )
    .join("\n");
}

export function parseRequirementState(out: string): Map<string, { sums: string; marker: string }> {
  const m = new Map<string, { sums: string; marker: string }>();
  for (const line of out.split("\n")) {
    const [dir, sums = "", marker = ""] = line.split("\t");
    if (dir) m.set(dir, { sums, marker });
  }
  return m;
}

export function writeMarkerCommand(markerDir: string, dir: string, value: string): string {
  const f = shQuote(`${markerDir}/${dir}`);
  return `mkdir -p -- ${shQuote(markerDir)} && printf '%s\\n' ${shQuote(value)} > ${f}.tmp && mv -- ${f}.tmp ${f}`;
}
