// Shell text for comfyui:snapshot, as pure functions (every value through shQuote): write a
// snapshot atomically, list and read them, move packs aside, pip inside the container.
import { shQuote } from "../../lib/quote.ts";
import { LIST_MARK, REMOVED_DIR, SNAPSHOT_FILE } from "./snapshot-data.ts";

/**
 * stdin carries the snapshot's JSON. It is written in a temporary folder beside the others and
 * renamed into place, so a folder named like a snapshot is always whole.
 */
export function saveSnapshotCommand(dir: string, id: string): string {
  const d = shQuote(dir);
  return [
    "set -e",
    `mkdir -p -- ${d}`,
    `tmp=$(mktemp -d ${shQuote(`${dir}/.incoming-${id}.XXXXXX`)})`,
    `trap 'rm -rf -- "$tmp"' EXIT`,
    `cat > "$tmp"/${shQuote(SNAPSHOT_FILE)}`,
    `chmod 755 "$tmp"`,
    `mv -T -- "$tmp" ${shQuote(`${dir}/${id}`)}`,
    "trap - EXIT",
  ].join("\n");
}

/** Every snapshot folder: a marker line with its id, then its file on one line (JSON needs no newlines). */
export function listSnapshotsCommand(dir: string): string {
  return [
    `cd -- ${shQuote(dir)} 2>/dev/null || exit 0`,
    `for d in */; do`,
    `  d=\${d%/}`,
    `  [ -f "$d"/${shQuote(SNAPSHOT_FILE)} ] || continue`,
    `  printf '${LIST_MARK}\\t%s\\n' "$d"`,
    `  tr -d '\\n' < "$d"/${shQuote(SNAPSHOT_FILE)}; echo`,
    `done`,
  ].join("\n");
}

/**
 * Move packs out of custom_nodes into the snapshot's removed/ folder (kept, not deleted); a name
 * already there gets the time appended. Prints each pack's new path.
 */
export function moveAsideCommand(paths: string[], snapshotDir: string): string {
  const dest = `${snapshotDir}/${REMOVED_DIR}`;
  return [
    "set -e",
    `mkdir -p -- ${shQuote(dest)}`,
    ...paths.map((p) => {
      const to = shQuote(`${dest}/${p.replace(/\/+$/, "").split("/").pop()}`);
      return `t=${to}; [ ! -e "$t" ] || t="$t.$(date +%s)"; mv -- ${shQuote(p)} "$t"; echo "$t"`;
    }),
  ].join("\n");
}

/** The packages pip installed into the python target (the host folder mounted in the container). */
export function pipFreezeCommand(container: string, target: string): string {
  return `docker exec ${shQuote(container)} python3 -m pip freeze --path ${shQuote(target)}`;
}

// Runs inside the container with its python (the stand-in and slim images have no coreutils). pip
// installs into a temporary folder inside the target first, so a failed download or build changes
// nothing; then each replaced distribution's files (its RECORD) and metadata go, and the new files
// are merged in. `pip install --upgrade --target` alone would leave the old version's .dist-info
// beside the new one, and pip freeze would see either.
const PIP_SWAP = `import csv, os, re, shutil, subprocess, sys, tempfile
target = sys.argv[1]
def dist(e):
    m = re.match(r"^(.+)-[^-]+[.]dist-info$", e)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else None
tmp = tempfile.mkdtemp(prefix=".flow-restore.", dir=target)
try:
    req, new = os.path.join(tmp, "requirements.txt"), os.path.join(tmp, "new")
    with open(req, "w") as f:
        f.write(sys.stdin.read())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", new, "-r", req], check=True)
    names = {dist(e) for e in os.listdir(new)} - {None}
    inside = os.path.realpath(target) + os.sep
    for e in os.listdir(target):
        if dist(e) not in names:
            continue
        rec = os.path.join(target, e, "RECORD")
        if os.path.exists(rec):
            with open(rec, newline="") as f:
                for row in csv.reader(f):
                    p = os.path.realpath(os.path.join(target, row[0])) if row else ""
                    if p.startswith(inside) and os.path.isfile(p):
                        os.remove(p)
        shutil.rmtree(os.path.join(target, e), ignore_errors=True)
    for e in os.listdir(new):
        src, dst = os.path.join(new, e), os.path.join(target, e)
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            os.replace(src, dst)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
`;

/** Install the `name==version` lines on stdin into the python target, each replacing the version there (--no-deps). */
export function pipInstallCommand(container: string, target: string): string {
  return `docker exec -i ${shQuote(container)} python3 -c ${shQuote(PIP_SWAP)} ${shQuote(target)}`;
}
