// Shell text for the models tier, as pure functions (every value through shQuote): one batched
// scan of the models root, hashing, moves, hardlinks, removals. Paths after the root are
// relative to it, and every command works from inside it (`cd -- root &&`, or after `set -e`):
// a root that vanished stops the command instead of running it in the login directory.
import { shQuote } from "../../lib/quote.ts";
import { runState } from "../../lib/commands/remote-script.ts";

export const DOWNLOAD_KEY = "models-download";
export const SCAN_FILES_MARK = "##flow-models-files";

/**
 * One round trip: the download run's state, the models volume's df line, then every file under
 * the root as NUL-terminated `size\tinode\tlinks\trelpath` records (names may hold anything but NUL;
 * the records come last so no file name can fake a marker).
 */
export function scanCommand(root: string, remoteDir: string): string {
  const r = shQuote(root);
  return [
    runState(remoteDir, DOWNLOAD_KEY),
    // df on the nearest existing ancestor: the root may not exist yet on a fresh box
    `d=${r}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done`,
    `df -PB1 -- "$d" | tail -n 1`,
    `echo ${shQuote(SCAN_FILES_MARK)}`,
    `if [ -d ${r} ]; then find ${r} -type f -printf '%s\\t%i\\t%n\\t%P\\0'; fi`,
  ].join("\n");
}

/** sha256 of each file, one line per file in the given order ("-" when unreadable). */
export function hashCommand(root: string, relPaths: string[]): string {
  if (!relPaths.length) return "true";
  return [
    // && : if the root is gone, stop; the relative paths must never be read from the login directory
    `cd -- ${shQuote(root)} && for f in ${relPaths.map(shQuote).join(" ")}; ` +
      `do h=$(sha256sum < "$f" 2>/dev/null | cut -d' ' -f1); echo "\${h:--}"; done`,
  ].join("\n");
}

const sidecar = (rel: string) => {
  const i = rel.lastIndexOf("/");
  return `${rel.slice(0, i + 1)}.${rel.slice(i + 1)}.sha256`;
};
const dirOf = (rel: string) => (rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : ".");

/**
 * Move files inside the root. Never overwrites: an existing destination stops the batch.
 * The verified-hash sidecar moves along (mv keeps inode and mtime, so it stays valid).
 */
export function moveCommand(root: string, moves: { from: string; to: string }[]): string {
  const out = ["set -e", `cd -- ${shQuote(root)}`];
  for (const m of moves) {
    const [f, t] = [shQuote(m.from), shQuote(m.to)];
    out.push(
      `if [ -e ${t} ]; then echo "exists: "${t} >&2; exit 1; fi`,
      `mkdir -p -- ${shQuote(dirOf(m.to))}`,
      `mv -n -- ${f} ${t}`,
      `if [ -e ${shQuote(sidecar(m.from))} ]; then mv -f -- ${shQuote(sidecar(m.from))} ${shQuote(sidecar(m.to))}; fi`,
    );
  }
  return out.join("\n");
}

/** A second name for a file (hardlink), or with `replace` an identical file swapped for a link (atomic rename). */
export function linkCommand(root: string, links: { keep: string; replace: string }[]): string {
  const out = ["set -e", `cd -- ${shQuote(root)}`];
  for (const l of links) {
    const tmp = shQuote(`${l.replace}.flow-link`);
    out.push(
      `mkdir -p -- ${shQuote(dirOf(l.replace))}`,
      `rm -f -- ${tmp}`,
      `ln -- ${shQuote(l.keep)} ${tmp}`,
      `mv -f -- ${tmp} ${shQuote(l.replace)}`,
    );
  }
  return out.join("\n");
}

export function removeCommand(root: string, relPaths: string[]): string {
  if (!relPaths.length) return "true";
  // && : a missing root must not turn the relative paths into paths under the login directory
  return `cd -- ${shQuote(root)} && rm -f -- ${relPaths.map(shQuote).join(" ")}`;
}
