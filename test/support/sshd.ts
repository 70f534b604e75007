// A throw-away OpenSSH server on 127.0.0.1 for integration tests.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SSHD = "/usr/sbin/sshd";
export const haveSshd = existsSync(SSHD) && existsSync("/usr/bin/ssh-keygen");
export const isRoot = process.getuid?.() === 0;

export interface SshdOptions {
  /** login users whose authorized_keys get the client key (the file is shared, so any user with the key logs in) */
  users?: string[];
  /** reuse a host key (path of a private key) instead of generating one */
  hostKeyFile?: string;
  /** extra sshd_config lines */
  extraConfig?: string;
}

export interface Sshd {
  port: number;
  host: string;
  /** `[127.0.0.1]:port ssh-ed25519 AAAA...` */
  hostKeyLine: string;
  /** known_hosts holding hostKeyLine */
  knownHostsFile: string;
  identityFile: string;
  /** first user in `users` (default: the current user) */
  user: string;
  dir: string;
  hostKeyFile: string;
  /** sshd's own log (stderr with -e) so far */
  log(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function keygen(file: string, comment = "flow-test", type: "ed25519" | "ecdsa" | "rsa" = "ed25519"): void {
  execFileSync("/usr/bin/ssh-keygen", ["-q", "-t", type, "-N", "", "-C", comment, "-f", file], { stdio: "ignore" });
}

/** `SHA256:...` of a public key file, as ssh-keygen prints it. */
export function keyFingerprint(pubFile: string): string {
  return execFileSync("/usr/bin/ssh-keygen", ["-lf", pubFile]).toString().split(" ")[1];
}

async function waitForPort(port: number, proc: ChildProcess, logText: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sshd exited (${proc.exitCode}):\n${logText()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}:\n${logText()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), "flow-sshd-"));
  // users other than root read authorized_keys with their own rights
  chmodSync(dir, 0o755);
  let hostKeyFile = opts.hostKeyFile;
  if (!hostKeyFile) {
    hostKeyFile = join(dir, "host_ed25519");
    keygen(hostKeyFile, "flow-test-host");
  }
  const identityFile = join(dir, "id_ed25519");
  keygen(identityFile);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(identityFile + ".pub"), { mode: 0o644 });

  const port = await freePort();
  const cfg = join(dir, "sshd_config");
  writeFileSync(
    cfg,
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${hostKeyFile}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      `PidFile ${join(dir, "sshd.pid")}`,
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "AllowTcpForwarding yes",
      "MaxStartups 100:30:200",
      "LogLevel VERBOSE",
      "Subsystem sftp internal-sftp",
      opts.extraConfig ?? "",
    ].join("\n") + "\n",
  );
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege-separation dir sshd insists on

  const proc = spawn(SSHD, ["-D", "-e", "-f", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await waitForPort(port, proc, () => log);

  const pub = readFileSync(hostKeyFile + ".pub", "utf8")
    .trim()
    .split(/\s+/);
  const hostKeyLine = `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}`;
  const knownHostsFile = join(dir, "known_hosts");
  writeFileSync(knownHostsFile, hostKeyLine + "\n", { mode: 0o600 });

  const user = opts.users?.[0] ?? (process.env.USER || "root");
  return {
    port,
    host: "127.0.0.1",
    hostKeyLine,
    knownHostsFile,
    identityFile,
    user,
    dir,
    hostKeyFile,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
