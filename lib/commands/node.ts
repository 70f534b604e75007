// Node runtime on a host, for pushed scripts: a fact and an installer, as shell text.
import { hostPath } from "./paths.ts";
import { shQuote } from "../quote.ts";

/** Prints three lines: flow's own node version (or empty), the system node version (or empty), `uname -m`. */
export function nodeFact(remoteDir: string): string {
  const own = hostPath(remoteDir, "node/bin/node");
  const probe = `-e 'process.stdout.write(process.versions.node)'`;
  // the system node is asked only when flow's own is missing: each probe starts a node process
  return [`o=$(${own} ${probe} 2>/dev/null)`, `echo "$o"`, `if [ -z "$o" ]; then node ${probe} 2>/dev/null; fi`, `echo`, `uname -m`].join(
    "; ",
  );
}

export interface NodeFact {
  own: string | null;
  system: string | null;
  arch: "x64" | "arm64" | string;
}

export function parseNodeFact(stdout: string): NodeFact {
  const [own = "", system = "", machine = ""] = stdout.split("\n").map((s) => s.trim());
  const arch = machine === "x86_64" ? "x64" : machine === "aarch64" ? "arm64" : machine;
  return { own: own || null, system: system || null, arch };
}

export function versionAtLeast(version: string, min: string): boolean {
  const a = version.replace(/^v/, "").split(".").map(Number);
  const b = min.replace(/^v/, "").split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

export function nodeDistUrl(template: string, version: string, arch: string): string {
  return template.replaceAll("{version}", version).replaceAll("{arch}", arch);
}

/** Download and unpack into a temporary folder beside the target, check it runs, then swap it in. */
export function installNode(remoteDir: string, url: string): string {
  const root = hostPath(remoteDir);
  const untar = /\.t?xz$/.test(url) ? "tar -xJ" : "tar -xz";
  return [
    "set -e",
    `mkdir -p -- ${root}`,
    `tmp=$(mktemp -d ${root}/node.tmp.XXXXXX)`,
    `trap 'rm -rf "$tmp"' EXIT`,
    `if command -v curl >/dev/null; then curl -fsSL --retry 3 ${shQuote(url)}; else wget -qO- ${shQuote(url)}; fi ` +
      `| ${untar} -C "$tmp" --strip-components=1`,
    `"$tmp"/bin/node -e 'process.stdout.write(process.versions.node)'`,
    `rm -rf ${root}/node.old`,
    `if [ -d ${root}/node ]; then mv ${root}/node ${root}/node.old; fi`,
    `mv "$tmp" ${root}/node`,
    `rm -rf ${root}/node.old`,
  ].join("\n");
}
