// The one interface every step talks to: an SSH connection or the local machine.
import type { Readable } from "node:stream";

export interface ExecOptions {
  /** Bytes fed to the command's stdin (secrets travel this way, never in argv). */
  stdin?: string | Buffer | Readable;
  /** Wrap in `sudo -n sh -c` when the login user is not root. */
  sudo?: boolean;
  /** Streaming callbacks; the full output is still returned in the result. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Kill the remote command (close the channel) after this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit status; null when the command died by a signal or the channel closed. */
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface UploadResult {
  /** false when the host already had a file with the same sha256 (nothing sent). */
  changed: boolean;
  /** payload bytes sent over SFTP */
  bytesSent: number;
}

/** A local port carried to an address as seen from the host (`ssh -L`); see Transport.forward. */
export interface PortForward {
  /** where this machine listens (127.0.0.1 unless asked otherwise) */
  readonly localHost: string;
  /** the port it listens on (the one asked for, or the free one picked for 0) */
  readonly localPort: number;
  /** connections carried so far */
  readonly connections: number;
  /** stop listening and close every connection it carries */
  close(): Promise<void>;
}

export interface Transport {
  /** host label used in output */
  readonly label: string;
  /** login user once connected ("root" means no sudo needed) */
  readonly user: string;
  connect(): Promise<void>;
  /** Run POSIX shell text on the host. Rejects only on transport failure, never on a non-zero exit. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Atomic upload (temp name then rename); skipped when sha256 matches. mode defaults to 0644. */
  upload(source: Buffer | string, remotePath: string, opts?: { mode?: number; sudo?: boolean }): Promise<UploadResult>;
  /** Copy a file from the host to a local path. */
  download(remotePath: string, localPath: string): Promise<void>;
  /**
   * Listen on localhost:localPort (0: a free port) and carry each connection to remoteHost:remotePort
   * as the host sees it (over SSH: a direct-tcpip channel on the one connection, like `ssh -L`).
   * Resolves once listening. Optional: a transport without it cannot forward.
   */
  forward?(
    localPort: number,
    remoteHost: string,
    remotePort: number,
    opts?: { localHost?: string; onError?: (err: Error) => void },
  ): Promise<PortForward>;
  close(): Promise<void>;
}

/** Raised when a host cannot be reached or refused (host key, auth, timeout): the host is "unreachable". */
export class UnreachableError extends Error {
  constructor(
    message: string,
    readonly reason: "hostkey-unknown" | "hostkey-changed" | "auth" | "timeout" | "network" | "config",
  ) {
    super(message);
    this.name = "UnreachableError";
  }
}
