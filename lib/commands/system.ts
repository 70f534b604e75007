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
  return [`i=0`, `while ${busy}; do`, `  [ $i -ge ${timeoutSeconds} ] && { echo "apt/dpkg still locked after ${timeoutSeconds}s" >&2; exit 1; }`, `  sleep 1; i=$((i+1))`, `done`, `echo $i`].join("\n");
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
  const execOpts = Array.isArray(next["exec-opts"]) ? (next["exec-opts"] as string[]).filter((o) => !o.startsWith("native.cgroupdriver=")) : [];
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
  return [`mkdir -p ${q}`, owner ? `chown ${shQuote(owner)} ${q}` : ""].filter(Boolean).join("\n");
}

/** `present|absent`, blkid's export lines (TYPE, UUID) after a low-level probe, then the mount source of `mountpoint`. */
export function volumeFact(device: string, mountpoint: string): string {
  return [
    `[ -b ${shQuote(device)} ] && echo present || echo absent`,
    // blkid -p: 0 found a signature, 2 found none; anything else (8: ambivalent) is not "blank"
    `blkid -p -o export ${shQuote(device)} 2>/dev/null; echo "BLKID_RC=$?"`,
    `echo "MOUNTED=$(findmnt -n -o SOURCE --mountpoint ${shQuote(mountpoint)} 2>/dev/null || true)"`,
    // an entry is a non-comment line whose second field is exactly the mount point
    `echo "FSTAB=$(awk -v m=${shQuote(mountpoint)} '$1 !~ /^#/ && $2 == m { c++ } END { print c + 0 }' /etc/fstab 2>/dev/null)"`,
  ].join("\n");
}

export interface VolumeFact {
  present: boolean;
  /** true only when the low-level probe positively found no signature at all */
  blank: boolean;
  type?: string;
  uuid?: string;
  mountedFrom?: string;
  inFstab: boolean;
}

export function parseVolumeFact(stdout: string): VolumeFact {
  const lines = stdout.split("\n");
  const kv = Object.fromEntries(lines.filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  return { present: lines[0] === "present", blank: kv.BLKID_RC === "2", type: kv.TYPE || undefined, uuid: kv.UUID || undefined, mountedFrom: kv.MOUNTED || undefined, inFstab: Number(kv.FSTAB || 0) > 0 };
}

/** Formats only when a low-level probe finds no signature at all: a device that holds anything is never formatted. */
export function formatIfBlank(device: string): string {
  const d = shQuote(device);
  return [
    `blkid -p ${d} >/dev/null 2>&1; rc=$?`,
    `if [ "$rc" -ne 2 ]; then echo "refusing to format ${device}: blkid -p says it is not blank (exit $rc)" >&2; exit 3; fi`,
    `mkfs.ext4 -q -L flow-data ${d}`,
  ].join("\n");
}

export function mountVolume(device: string, mountpoint: string): string {
  return `mkdir -p ${shQuote(mountpoint)} && mount ${shQuote(device)} ${shQuote(mountpoint)}`;
}

/** fstab by UUID with nofail, so a missing volume never stops the box from booting. */
export function addFstab(uuid: string, mountpoint: string, fsType: string): string {
  if (!/^[0-9a-fA-F-]+$/.test(uuid)) throw new Error(`not a filesystem UUID: ${uuid}`);
  const line = `UUID=${uuid} ${mountpoint} ${fsType} defaults,nofail 0 2`;
  return `grep -q ${shQuote(`UUID=${uuid}`)} /etc/fstab || printf '%s\\n' ${shQuote(line)} >> /etc/fstab`;
}
