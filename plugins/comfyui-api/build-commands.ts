// Shell text for comfyui-api builds on a host, as pure functions (every value through shQuote).
// Run as root (docker, and a bin folder setup may have made as another user). The layout is in
// ./builds.ts.
import { shQuote } from "../../lib/quote.ts";
import { FACT_MARKS, HISTORY, INCOMING, isBuildId, LAUNCHER, MANIFEST, MARKER } from "./builds.ts";

const q = shQuote;

function checkId(id: string): string {
  if (!isBuildId(id)) throw new Error(`not a build name: ${JSON.stringify(id)}`);
  return id;
}

/** One round trip: bin/current, the container's command, the history, every build's marker, the published ports. */
export function buildsFactCommand(bin: string, container: string): string {
  const b = q(bin);
  return [
    `echo ${q(FACT_MARKS.current)}; readlink ${q(`${bin}/current`)} 2>/dev/null || true`,
    `echo ${q(FACT_MARKS.command)}; docker inspect -f '{{json .Config.Cmd}}' ${q(container)} 2>/dev/null || true`,
    `echo ${q(FACT_MARKS.history)}; cat ${q(`${bin}/${HISTORY}`)} 2>/dev/null || true`,
    `echo ${q(FACT_MARKS.builds)}`,
    // a marker is one JSON object; newlines dropped so each build is one line
    `for d in ${b}/*/; do n=$(basename "$d"); [ "$n" = current ] && continue; [ -f "$d${MARKER}" ] || continue; ` +
      `printf '%s\\t' "$n"; tr -d '\\n' < "$d${MARKER}"; echo; done 2>/dev/null || true`,
    `echo ${q(FACT_MARKS.ports)}; docker port ${q(container)} 2>/dev/null || true`,
  ].join("\n");
}

/** Check a build's files against its manifest (and that its launcher can run); exit 0 when whole. */
export function verifyBuildCommand(bin: string, id: string): string {
  const d = q(`${bin}/${checkId(id)}`);
  return `cd -- ${d} && test -x ${LAUNCHER} && sha256sum -c --quiet --strict ${MANIFEST}`;
}

/**
 * Unpack (or move) what was uploaded to .incoming into bin/<id>: a tarball `<id>.tgz` with its
 * manifest `<id>.sha256`, or a single binary `<id>.bin` with its sha256. Checked before it is
 * moved into place; the marker (stdin) is written last, so a half-made build never has one.
 */
export function installUploadCommand(bin: string, id: string, kind: "tgz" | "binary", sha256?: string): string {
  checkId(id);
  const inc = `${bin}/${INCOMING}`;
  const dir = q(`${inc}/${id}.d`);
  const steps = [
    "set -e",
    `rm -rf -- ${dir}; mkdir -p -- ${dir}`,
    ...(kind === "tgz"
      ? [`tar -xzf ${q(`${inc}/${id}.tgz`)} -C ${dir} --no-same-owner`, `cp -- ${q(`${inc}/${id}.sha256`)} ${dir}/${MANIFEST}`]
      : [
          `printf '%s  %s\\n' ${q(sha256 ?? "")} ${q(`${inc}/${id}.bin`)} | sha256sum -c --quiet --strict`,
          `mv -- ${q(`${inc}/${id}.bin`)} ${dir}/${LAUNCHER}`,
          `chmod 755 ${dir}/${LAUNCHER}`,
          `(cd -- ${dir} && sha256sum ${LAUNCHER} > ${MANIFEST})`,
        ]),
    ...placeCommands(bin, id, dir),
    `rm -f -- ${q(`${inc}/${id}.tgz`)} ${q(`${inc}/${id}.sha256`)}`,
  ];
  return steps.join("\n");
}

/** The last steps of every install: launcher present, files match the manifest, marker from stdin, moved into place. */
function placeCommands(bin: string, id: string, dir: string): string[] {
  return [
    `test -f ${dir}/${LAUNCHER} || { echo "the build has no ${LAUNCHER} at its top" >&2; exit 4; }`,
    `test -x ${dir}/${LAUNCHER} || { echo "${LAUNCHER} at the build's top is not executable" >&2; exit 4; }`,
    `(cd -- ${dir} && sha256sum -c --quiet --strict ${MANIFEST}) || { echo "the build's files do not match their sha256" >&2; exit 5; }`,
    `cat > ${dir}/${MARKER}`,
    `chmod 755 ${dir}`,
    `rm -rf -- ${q(`${bin}/${id}`)}`,
    `mv -- ${dir} ${q(`${bin}/${id}`)}`,
  ];
}

/**
 * After the host downloaded `file` (in .incoming): its sha256 (compared with `expect` when known),
 * the build's name (the release version, else 12 hex of the sha256), unpacked when it is an archive
 * (a single top folder stepped into), then checked and placed like an upload. Prints
 * `build <id> <sha256> <bytes>` first; the marker comes on stdin with `@ID@`/`@SHA256@`/`@BYTES@`
 * for the host to fill in. When bin/<id> exists already, the download is dropped and it prints `have <id>`.
 */
export function installDownloadCommand(bin: string, file: string, opts: { version?: string; expect?: string; archive: boolean }): string {
  const inc = `${bin}/${INCOMING}`;
  const f = q(file);
  return [
    "set -e",
    `h=$(sha256sum < ${f} | cut -d' ' -f1); bytes=$(wc -c < ${f} | tr -d ' ')`,
    ...(opts.expect
      ? [
          `[ "$h" = ${q(opts.expect.toLowerCase())} ] || ` +
            `{ echo "sha256 of the download is $h, expected ${opts.expect.toLowerCase()}" >&2; exit 5; }`,
        ]
      : []),
    opts.version ? `id=${q(checkId(opts.version))}` : `id=$(printf %s "$h" | cut -c1-12)`,
    `echo "build $id $h $bytes"`,
    `if [ -f ${q(bin)}/"$id"/${MARKER} ]; then echo "have $id"; rm -rf -- "$(dirname ${f})"; exit 0; fi`,
    `dir=${q(inc)}/"$id.d"; rm -rf -- "$dir"; mkdir -p -- "$dir"`,
    ...(opts.archive
      ? [
          `tar -xf ${f} -C "$dir" --no-same-owner`,
          // one top folder and no launcher beside it: that folder is the build
          `if [ ! -e "$dir"/${LAUNCHER} ] && [ $(ls -A "$dir" | wc -l) = 1 ] && [ -d "$dir"/"$(ls -A "$dir")" ]; ` +
            `then t="$dir"/"$(ls -A "$dir")"; mv -- "$t" "$dir.top"; rmdir -- "$dir"; mv -- "$dir.top" "$dir"; fi`,
          `(cd -- "$dir" && find . -type f ! -name ${MANIFEST} ! -name ${MARKER} -print | LC_ALL=C sort | ` +
            `sed 's|^\\./||' | tr '\\n' '\\0' | xargs -0 -r sha256sum > ${MANIFEST})`,
        ]
      : [`mv -- ${f} "$dir"/${LAUNCHER}`, `chmod 755 "$dir"/${LAUNCHER}`, `(cd -- "$dir" && sha256sum ${LAUNCHER} > ${MANIFEST})`]),
    `test -f "$dir"/${LAUNCHER} || { echo "the build has no ${LAUNCHER} at its top" >&2; exit 4; }`,
    `test -x "$dir"/${LAUNCHER} || { echo "${LAUNCHER} at the build's top is not executable" >&2; exit 4; }`,
    `sed -e "s/@ID@/$id/g" -e "s/@SHA256@/$h/g" -e "s/@BYTES@/$bytes/g" > "$dir"/${MARKER}`,
    `chmod 755 "$dir"`,
    `rm -rf -- ${q(bin)}/"$id"; mv -- "$dir" ${q(bin)}/"$id"`,
    `rm -rf -- "$(dirname ${f})"`,
  ].join("\n");
}

/** Point bin/current at `id` atomically (a new link renamed over the old), or remove it (the image's own comfyui-api). */
export function switchCommand(bin: string, id: string | null): string {
  if (id === null) return `rm -f -- ${q(`${bin}/current`)}`;
  checkId(id);
  const tmp = q(`${bin}/.current.tmp`);
  return `set -e\nrm -f -- ${tmp}\nln -s ${q(id)} ${tmp}\nmv -T -f -- ${tmp} ${q(`${bin}/current`)}`;
}

/** Replace the history (stdin: one build per line). */
export function writeHistoryCommand(bin: string): string {
  const f = q(`${bin}/${HISTORY}`);
  const tmp = q(`${bin}/${HISTORY}.tmp`);
  return `cat > ${tmp} && mv -f -- ${tmp} ${f}`;
}

/** Replace a build's marker (stdin). */
export function writeMarkerCommand(bin: string, id: string): string {
  const d = `${bin}/${checkId(id)}`;
  return `test -d ${q(d)} && cat > ${q(`${d}/${MARKER}.tmp`)} && mv -f -- ${q(`${d}/${MARKER}.tmp`)} ${q(`${d}/${MARKER}`)}`;
}

/** Delete builds (never current, never a path outside bin: ids are checked). */
export function pruneCommand(bin: string, ids: string[]): string {
  if (!ids.length) return "true";
  return `rm -rf -- ${ids.map((id) => q(`${bin}/${checkId(id)}`)).join(" ")}`;
}

/** Make .incoming (owned by the login user, who uploads and downloads there) and empty it of stale work. */
export function incomingCommand(bin: string, owner?: string): string {
  const inc = q(`${bin}/${INCOMING}`);
  return [
    `mkdir -p -- ${inc}`,
    owner ? `chown ${q(owner)} ${q(bin)} ${inc}` : "",
    `find ${inc} -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf -- {} +`,
  ]
    .filter(Boolean)
    .join("\n");
}
