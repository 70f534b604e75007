// Host preparation facts and changes as shell text: apt lock, unattended-upgrades, Docker's
// daemon.json, directories, block volumes. Pure: tested by comparing strings and by running them.
import { shQuote } from "../quote.ts";

/** Waits until no apt/dpkg holds its lock (cloud images run apt at first boot). Prints seconds waited. */
export function waitForAptLock(timeoutSeconds: number): string {
  const locks = ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock"].join(" ");
  // apt takes fcntl locks, which flock(1) cannot see; python3's lockf can, pgrep is the fallback.
  const probe = `python3 -c 'import fcntl,sys
for p in sys.argv[1:]:
    try: f=open(p,"w")
    except OSError: continue
    try: fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)
    except OSError: sys.exit(1)' ${locks} 2>/dev/null`;
  const busy = `{ if command -v python3 >/dev/null; then ! ${probe}; else pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null; fi; }`;
  return [
    `i=0`,
    `while ${busy}; do`,
    `  [ $i -ge ${timeoutSeconds} ] && { echo "apt/dpkg still locked after ${timeoutSeconds}s" >&2; exit 1; }`,
    `  sleep 1; i=$((i+1))`,
    `done`,
    `echo $i`,
  ].join("\n");
}

/** `installed`/`absent`, then `active`/`inactive`, then `enabled`/`disabled`. */
export const unattendedFact = [
  `dpkg-query -W -f='\${Status}' unattended-upgrades 2>/dev/null | grep -q 'install ok installed' && echo installed || echo absent`,
  `(systemctl is-active unattended-upgrades 2>/dev/null || true) | head -n1`,
  `(systemctl is-enabled unattended-upgrades 2>/dev/null || true) | head -n1`,
].join("; ");

export const disableUnattended = "systemctl disable --now unattended-upgrades";

/**
 * Merge what flow needs into Docker's daemon.json. Returns the new text, or null when the
 * file already says it (so Docker is restarted only when this file changed).
 * native.cgroupdriver=cgroupfs: with systemd's driver, containers lose their GPU after a
 * `systemctl daemon-reload`.
 */
export function mergeDaemonJson(current: string, opts: { nvidiaRuntime: boolean }): string | null {
  let cfg: Record<string, unknown> = {};
  if (current.trim()) {
    try {
      cfg = JSON.parse(current) as Record<string, unknown>;
    } catch {
      throw new Error("/etc/docker/daemon.json is not valid JSON; fix or remove it first");
    }
  }
  const next = structuredClone(cfg);
  const execOpts = Array.isArray(next["exec-opts"])
    ? (next["exec-opts"] as string[]).filter((o) => !o.startsWith("native.cgroupdriver="))
    : [];
  execOpts.push("native.cgroupdriver=cgroupfs");
  next["exec-opts"] = execOpts;
  if (opts.nvidiaRuntime) {
    const runtimes = (next.runtimes ?? {}) as Record<string, unknown>;
    runtimes.nvidia = { args: [], path: "nvidia-container-runtime" };
    next.runtimes = runtimes;
  }
  return JSON.stringify(next) === JSON.stringify(cfg) ? null : JSON.stringify(next, null, 2) + "\n";
}

/** Prints the missing folders among `dirs`, one per line. */
export function missingDirs(dirs: string[]): string {
  return `for d in ${dirs.map(shQuote).join(" ")}; do [ -d "$d" ] || echo "$d"; done`;
}

export function makeDirs(dirs: string[], owner?: string): string {
  const q = dirs.map(shQuote).join(" ");
  return [`mkdir -p -- ${q}`, owner ? `chown ${shQuote(owner)} ${q}` : ""].filter(Boolean).join("\n");
}

/**
 * Both ends of a device are read: partition tables, superblocks and LUKS headers sit at the start,
 * GPT keeps its backup at the end. 8 MiB is well past any of them.
 */
const WINDOW = 8 * 1024 * 1024;

/** Why a device on which blkid -p found nothing is still not blank, by `zeroCheck`'s verdict. */
const NOT_ZERO: Record<string, string> = {
  head: "no filesystem signature, but its first 8 MiB hold data",
  tail: "no filesystem signature, but its last 8 MiB hold data",
  unreadable: "no filesystem signature, and its first and last 8 MiB could not be read",
};

/**
 * Shell that sets $zeros: `yes` when the first and last 8 MiB read as zeros, `head`/`tail` when
 * that end holds data, `unreadable` otherwise. The windows are clamped to the device's size,
 * so a device under 16 MiB is read (partly twice) without running past its end.
 */
function zeroCheck(device: string): string {
  const d = shQuote(device);
  // blockdev takes no `--`: a path starting with "-" would read as an option
  const bd = device.startsWith("-") ? shQuote(`./${device}`) : d;
  return [
    `zeros=unreadable`,
    `if size=$(blockdev --getsize64 ${bd} 2>/dev/null) && [ -n "$size" ]; then`,
    `  n=${WINDOW}; if [ "$size" -lt "$n" ]; then n=$size; fi`,
    // cmp: 0 same bytes, 1 differ, 2 trouble (read error), which stays "unreadable"
    `  cmp -s -n "$n" -- ${d} /dev/zero; h=$?`,
    `  cmp -s -n "$n" -i "$((size - n)):0" -- ${d} /dev/zero; t=$?`,
    `  if [ "$h" -eq 0 ] && [ "$t" -eq 0 ]; then zeros=yes; elif [ "$h" -eq 1 ]; then zeros=head; elif [ "$t" -eq 1 ]; then zeros=tail; fi`,
    `fi`,
  ].join("\n");
}

/** Quoted for the reader only: in shell text this whole phrase goes through shQuote. */
const refusing = (device: string) => `refusing to format '${device}'`;

/**
 * `present|absent`, blkid's export lines (TYPE, PTTYPE, UUID) after a low-level probe, then, when the
 * probe found nothing, whether both ends of the device read as zeros; then the mount source of `mountpoint`.
 */
export function volumeFact(device: string, mountpoint: string): string {
  return [
    `[ -b ${shQuote(device)} ] && echo present || echo absent`,
    // blkid -p: 0 found a signature, 2 found none; anything else (8: ambivalent) is not "blank"
    `blkid -p -o export -- ${shQuote(device)} 2>/dev/null; rc=$?; echo "BLKID_RC=$rc"`,
    // raw data, plain dm-crypt or a wiped superblock have no signature: "nothing found" is not "blank"
    `if [ "$rc" -eq 2 ]; then`,
    zeroCheck(device),
    `echo "ZEROS=$zeros"`,
    `fi`,
    `echo "MOUNTED=$(findmnt -n -o SOURCE --mountpoint ${shQuote(mountpoint)} 2>/dev/null || true)"`,
    // an entry is a non-comment line whose second field is exactly the mount point
    `echo "FSTAB=$(awk -v m=${shQuote(mountpoint)} '$1 !~ /^#/ && $2 == m { c++ } END { print c + 0 }' /etc/fstab 2>/dev/null)"`,
  ].join("\n");
}

export interface VolumeFact {
  present: boolean;
  /** true only when the low-level probe found no signature at all and both ends of the device read as zeros */
  blank: boolean;
  /** when not blank: what the device holds, in words, for a refusal */
  found?: string;
  type?: string;
  uuid?: string;
  mountedFrom?: string;
  inFstab: boolean;
}

export function parseVolumeFact(stdout: string): VolumeFact {
  const lines = stdout.split("\n");
  const kv = Object.fromEntries(lines.filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  const blank = kv.BLKID_RC === "2" && kv.ZEROS === "yes";
  let found: string | undefined;
  if (blank) {
    // nothing found, both ends zero
  } else if (kv.TYPE) found = `a filesystem signature (${kv.TYPE})`;
  else if (kv.PTTYPE) found = `a partition table (${kv.PTTYPE})`;
  else if (kv.BLKID_RC === "2") found = NOT_ZERO[kv.ZEROS] ?? NOT_ZERO.unreadable;
  else found = `a signature blkid -p cannot name (exit ${kv.BLKID_RC ?? "unknown"})`;
  return {
    present: lines[0] === "present",
    blank,
    found,
    type: kv.TYPE || undefined,
    uuid: kv.UUID || undefined,
    mountedFrom: kv.MOUNTED || undefined,
    inFstab: Number(kv.FSTAB || 0) > 0,
  };
}

/** The refusal ensureVolume raises, in the same words as the format command's own. */
export function formatRefusal(device: string, found: string): string {
  return `${refusing(device)}: ${found}`;
}

/**
 * Formats only when a low-level probe finds no signature and both ends of the device read as zeros:
 * a device that holds anything is never formatted. Checked again here, right before mkfs, whatever
 * the plan said. Exit 3 with the reason on stderr when refused.
 */
export function formatIfBlank(device: string): string {
  const d = shQuote(device);
  return [
    // the device name reaches the message as one quoted word: a name holding $(...) stays text
    `refuse() { printf '%s: %s\\n' ${shQuote(refusing(device))} "$1" >&2; exit 3; }`,
    `info=$(blkid -p -o export -- ${d} 2>/dev/null); rc=$?`,
    `if [ "$rc" -ne 2 ]; then`,
    `  ty=$(printf '%s\\n' "$info" | sed -n 's/^TYPE=//p'); pt=$(printf '%s\\n' "$info" | sed -n 's/^PTTYPE=//p')`,
    `  if [ -n "$ty" ]; then refuse "a filesystem signature ($ty)"; fi`,
    `  if [ -n "$pt" ]; then refuse "a partition table ($pt)"; fi`,
    `  refuse "a signature blkid -p cannot name (exit $rc)"`,
    `fi`,
    zeroCheck(device),
    `case "$zeros" in`,
    `  yes) ;;`,
    ...["head", "tail"].map((k) => `  ${k}) refuse ${shQuote(NOT_ZERO[k])} ;;`),
    `  *) refuse ${shQuote(NOT_ZERO.unreadable)} ;;`,
    `esac`,
    `mkfs.ext4 -q -L flow-data -- ${d}`,
  ].join("\n");
}

export function mountVolume(device: string, mountpoint: string): string {
  return `mkdir -p -- ${shQuote(mountpoint)} && mount -- ${shQuote(device)} ${shQuote(mountpoint)}`;
}

/** fstab by UUID with nofail, so a missing volume never stops the box from booting. */
export function addFstab(uuid: string, mountpoint: string, fsType: string): string {
  if (!/^[0-9a-fA-F-]+$/.test(uuid)) throw new Error(`not a filesystem UUID: ${uuid}`);
  const line = `UUID=${uuid} ${mountpoint} ${fsType} defaults,nofail 0 2`;
  return `grep -q ${shQuote(`UUID=${uuid}`)} /etc/fstab || printf '%s\\n' ${shQuote(line)} >> /etc/fstab`;
}
