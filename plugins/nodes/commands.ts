// Shell text for the custom-nodes tier, as pure functions (every value through shQuote): one
// batched scan of custom_nodes, git clone / fetch / checkout of a locked commit, a registry
// archive unpacked in place, pip inside the comfyui container. Git always runs with
// safe.directory=* because packs the image seeded belong to root while flow runs as the login user.
import { shQuote } from "../../lib/quote.ts";

/** What flow writes into a registry pack it unpacked (git packs need none: git is the record). */
export const PACK_RECORD = ".flow-pack.json";
/** sha256sum lines of the files a registry archive held, to tell local edits apart */
export const PACK_SUMS = ".flow-pack.sha256";

export interface HostPack {
  /** the folder name under custom_nodes, without `.disabled` */
  name: string;
  /** the folder (or single .py file) on the host */
  path: string;
  disabled: boolean;
  kind: "git" | "registry" | "file" | "folder";
  origin?: string;
  commit?: string;
  /** registry id and version flow recorded when it unpacked the pack */
  registryId?: string;
  version?: string;
  /** tracked files changed (git), or files of the registry archive changed or gone */
  dirty: boolean;
  /** what makes it dirty, a few paths */
  changes: string[];
}

const MARK = "##flow-pack";
const GIT = "git -c safe.directory='*'";

/**
 * One record per entry: `##flow-pack\t<entry>` then `key\tvalue` lines. Status lines are cut at
 * 20 per pack: a pack with a thousand edits is as dirty as one with one.
 */
export function packScanCommand(customNodesDir: string): string {
  const d = shQuote(customNodesDir);
  return [
    `cd -- ${d} 2>/dev/null || exit 0`,
    `for e in *; do`,
    `  [ -e "$e" ] || continue`,
    `  case "$e" in __pycache__|__pycache__.disabled) continue;; esac`,
    `  if [ -d "$e" ]; then :; else case "$e" in *.py|*.py.disabled) ;; *) continue;; esac; fi`,
    `  printf '${MARK}\\t%s\\n' "$e"`,
    `  if [ -e "$e/.git" ]; then`,
    `    printf 'origin\\t%s\\n' "$(${GIT} -C "$e" config --get remote.origin.url 2>/dev/null)"`,
    `    printf 'commit\\t%s\\n' "$(${GIT} -C "$e" rev-parse HEAD 2>/dev/null)"`,
    // tracked files only: packs write caches and configs beside their code, which a checkout keeps
    `    ${GIT} -C "$e" status --porcelain --untracked-files=no 2>/dev/null | head -n 20 | sed 's/^/change\\t/'`,
    `  fi`,
    `  if [ -f "$e/${PACK_RECORD}" ]; then printf 'record\\t%s\\n' "$(tr -d '\\n' < "$e/${PACK_RECORD}")"; fi`,
    `  if [ -f "$e/${PACK_SUMS}" ]; then`,
    `    (cd -- "$e" && sha256sum -c --quiet ${PACK_SUMS} 2>/dev/null | head -n 20 | sed 's/^/change\\t/')`,
    `  fi`,
    `done`,
  ].join("\n");
}

export function parsePackScan(out: string, customNodesDir: string): HostPack[] {
  const packs: HostPack[] = [];
  let cur: HostPack | undefined;
  const root = customNodesDir.replace(/\/+$/, "");
  for (const line of out.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab < 0) continue;
    const [key, value] = [line.slice(0, tab), line.slice(tab + 1)];
    if (key === MARK) {
      const disabled = value.endsWith(".disabled");
      const bare = disabled ? value.slice(0, -".disabled".length) : value;
      const file = bare.endsWith(".py");
      cur = { name: bare, path: `${root}/${value}`, disabled, kind: file ? "file" : "folder", dirty: false, changes: [] };
      packs.push(cur);
      continue;
    }
    if (!cur) continue;
    if (key === "origin" && value) cur.origin = value;
    else if (key === "commit" && /^[0-9a-f]{40}$/.test(value)) {
      cur.commit = value;
      cur.kind = "git";
    } else if (key === "change") {
      cur.dirty = true;
      cur.changes.push(value.trim());
    } else if (key === "record") {
      try {
        const r = JSON.parse(value) as { registryId?: unknown; version?: unknown };
        if (typeof r.registryId === "string" && typeof r.version === "string") {
          Object.assign(cur, { registryId: r.registryId, version: r.version });
          if (cur.kind !== "git") cur.kind = "registry";
        }
      } catch {
        // a record someone edited by hand tells nothing; the pack stays a plain folder
      }
    }
  }
  return packs;
}

export interface GitInstall {
  customNodes: string;
  /** the pack's folder name (checked by safePackDir before it gets here) */
  dir: string;
  repo: string;
  commit: string;
  /** where a pack flow must replace (another origin, --force over local changes) is moved first */
  asideDir: string;
  force: boolean;
}

/**
 * Clone into a hidden temporary folder (ComfyUI skips dot-folders) and move it into place, so a
 * dropped connection never leaves a half pack; an existing clone fetches only the commit it lacks
 * (shallow where the server allows fetching by sha, else everything). Prints what it did last.
 */
export function gitInstallCommand(g: GitInstall): string {
  const q = shQuote;
  const dir = q(`${g.customNodes}/${g.dir}`);
  const tmp = q(`${g.customNodes}/.flow-tmp-${g.dir}`);
  const fetch = (at: string) =>
    `{ ${GIT} -C ${at} fetch -q --depth 1 origin ${g.commit} 2>/dev/null || ` +
    `${GIT} -C ${at} fetch -q ${"$"}(test -f ${at}/.git/shallow && echo --unshallow) origin; }`;
  const checkout = (at: string) =>
    `${GIT} -C ${at} -c advice.detachedHead=false checkout -q ${g.force ? "-f " : ""}${g.commit} && ` +
    `if [ -f ${at}/.gitmodules ]; then ${GIT} -C ${at} submodule -q update --init --recursive --depth 1; fi`;
  return [
    "set -e",
    `if [ -d ${dir}/.git ] && [ "$(${GIT} -C ${dir} config --get remote.origin.url)" = ${q(g.repo)} ]; then`,
    // the planner saw it clean; look again just before touching it
    g.force
      ? `  ${GIT} -C ${dir} diff --quiet HEAD || ` +
        `{ mkdir -p ${q(g.asideDir)}; ${GIT} -C ${dir} diff HEAD > ${q(`${g.asideDir}/${g.dir}.patch`)}; }`
      : `  ${GIT} -C ${dir} diff --quiet HEAD || { echo "local changes in ${g.dir}: left as they are" >&2; exit 3; }`,
    `  ${GIT} -C ${dir} cat-file -e ${g.commit}^{commit} 2>/dev/null || ${fetch(dir)}`,
    `  ${checkout(dir)}`,
    `  echo moved`,
    `else`,
    `  rm -rf ${tmp}`,
    `  ${GIT} init -q ${tmp}`,
    `  ${GIT} -C ${tmp} remote add origin ${q(g.repo)}`,
    `  ${fetch(tmp)}`,
    `  ${checkout(tmp)}`,
    `  if [ -e ${dir} ]; then mkdir -p ${q(g.asideDir)}; mv -- ${dir} ${q(`${g.asideDir}/${g.dir}`)}; fi`,
    `  mv -- ${tmp} ${dir}`,
    `  echo cloned`,
    `fi`,
  ].join("\n");
}

export interface RegistryInstall {
  customNodes: string;
  dir: string;
  registryId: string;
  version: string;
  downloadUrl: string;
  asideDir: string;
}

/**
 * The registry's archive of one version, unpacked beside the pack and moved into place with a
 * record of what it is and the sums of what it held (so local edits show as dirty later).
 */
export function registryInstallCommand(r: RegistryInstall): string {
  const q = shQuote;
  const record = JSON.stringify({ registryId: r.registryId, version: r.version });
  return [
    "set -e",
    `d=${q(`${r.customNodes}/${r.dir}`)}; t=${q(`${r.customNodes}/.flow-tmp-${r.dir}`)}`,
    `rm -rf -- "$t" "$t.zip"`,
    `mkdir -p -- "$t"`,
    `trap 'rm -f -- "$t.zip"' EXIT`,
    `curl -fsSL --retry 3 --proto '=https,http' -o "$t.zip" -- ${q(r.downloadUrl)}`,
    // python3 rather than unzip: every GPU image has it, not every one has unzip
    `python3 -m zipfile -e "$t.zip" "$t"`,
    `(cd -- "$t" && find . -type f ! -name ${PACK_SUMS} -print0 | sort -z | xargs -0 -r sha256sum > ${PACK_SUMS})`,
    `printf '%s\\n' ${q(record)} > "$t/${PACK_RECORD}"`,
    `if [ -e "$d" ]; then mkdir -p -- ${q(r.asideDir)}; mv -- "$d" ${q(`${r.asideDir}/${r.dir}`)}; fi`,
    `mv -- "$t" "$d"`,
    `echo unpacked`,
  ].join("\n");
}

/** Enable a pack ComfyUI skips because its folder ends in .disabled. */
export function enableCommand(customNodes: string, dir: string): string {
  const from = shQuote(`${customNodes}/${dir}.disabled`);
  const to = shQuote(`${customNodes}/${dir}`);
  return `if [ -e ${to} ]; then echo "${dir} exists beside ${dir}.disabled" >&2; exit 1; fi; mv -- ${from} ${to}`;
}

/** Move a pack out of custom_nodes (into a snapshot or backup folder): removal that can be undone. */
export function moveAsideCommand(path: string, asideDir: string, name: string): string {
  return `set -e; mkdir -p ${shQuote(asideDir)}; mv -- ${shQuote(path)} ${shQuote(`${asideDir}/${name}`)}`;
}
