// SSH transport on ssh2, a composition of:
//   ssh-route.ts       ~/.ssh/config and ProxyJump -> the hops to go through, each with its login user
//   ssh-connect.ts     dialling the hops (host key checked before login: host-key-policy.ts; keys: ssh-auth.ts)
//   ssh-connection.ts  the live connection: reconnect after a drop, the channel cap, errors naming the host
//   ssh-exec.ts        commands: the persistent shell fast path, or an exec channel each
//   sftp.ts            uploads (atomic, sha256-skipped, sudo-staged) and downloads
//   forward.ts         local port forwarding (`ssh -L`): a direct-tcpip channel per connection
import type { Duplex } from "node:stream";
import type { SshOptions, SshTarget } from "../hosts.ts";
import { listenForward } from "./forward.ts";
import type { Semaphore } from "./semaphore.ts";
import { SshConnection } from "./ssh-connection.ts";
import { SshExec } from "./ssh-exec.ts";
import { SshFiles } from "./sftp.ts";
import type { ExecOptions, ExecResult, PortForward, Transport, UploadResult } from "./types.ts";

export type { Hop } from "./ssh-route.ts";

export interface SshTransportTuning {
  /** Run stdin-less commands through one persistent `sh` instead of a channel each (see shell-session.ts). */
  persistentShell?: boolean;
}

export class SshTransport implements Transport {
  readonly label: string;
  private readonly conn: SshConnection;
  private readonly commands: SshExec;
  private readonly files: SshFiles;
  private readonly forwards = new Set<PortForward>();

  constructor(target: SshTarget & { label: string }, opts: SshOptions, tuning: SshTransportTuning = {}) {
    this.label = target.label;
    this.conn = new SshConnection(target, opts);
    this.commands = new SshExec(this.conn, tuning.persistentShell ?? true);
    this.files = new SshFiles(this.conn, (command, o) => this.commands.exec(command, o));
  }

  /** The login user (loginUser's order: the host's own, ~/.ssh/config's, the provider's, the local one). */
  get user(): string {
    return this.conn.user;
  }

  /** `label (user@host:port)`, used in every error about this host; the address once when it is the label. */
  get where(): string {
    return this.conn.where;
  }

  /** The current connection's channel slots (at most `maxChannels` open at once). */
  get channels(): Semaphore {
    return this.conn.channels;
  }

  connect(): Promise<void> {
    return this.conn.connect();
  }

  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.commands.exec(command, opts);
  }

  /** `source` is file content (Buffer) or a local file path (string). */
  upload(source: Buffer | string, remotePath: string, opts?: { mode?: number; sudo?: boolean }): Promise<UploadResult> {
    return this.files.upload(source, remotePath, opts);
  }

  download(remotePath: string, localPath: string): Promise<void> {
    return this.files.download(remotePath, localPath);
  }

  /**
   * `ssh -L localPort:remoteHost:remotePort` on this connection. Each local connection is one
   * direct-tcpip channel (not a session: OpenSSH's MaxSessions does not count it, so it takes no
   * channel slot); after a dropped connection the next local connection reconnects.
   */
  async forward(
    localPort: number,
    remoteHost: string,
    remotePort: number,
    opts: { localHost?: string; onError?: (err: Error) => void } = {},
  ): Promise<PortForward> {
    await this.conn.connect(); // an unreachable host fails here, before anything listens
    const fwd = await listenForward(
      localPort,
      async (from) => {
        const client = await this.conn.ready();
        return new Promise<Duplex>((resolve, reject) =>
          client.forwardOut(from.address, from.port, remoteHost, remotePort, (err, channel) =>
            err ? reject(new Error(`${this.where}: forwarding to ${remoteHost}:${remotePort}: ${err.message}`)) : resolve(channel),
          ),
        );
      },
      opts,
    );
    this.forwards.add(fwd); // closed with the transport too (closing twice is harmless)
    return fwd;
  }

  async close(): Promise<void> {
    await Promise.all([...this.forwards].map((f) => f.close()));
    return this.conn.close();
  }
}
