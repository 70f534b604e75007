// Running commands on a connection, two ways with one contract: the persistent `sh` (one round
// trip a command, see shell-session.ts) when it is free and the command needs no stdin, else an
// exec channel of its own, `exec sh -c` so both run the text in the same shell. Every channel,
// the persistent shell's too, holds one of the connection's slots (the channel cap).
import type { Client as SshClient, ClientChannel } from "ssh2";
import { shQuote } from "../quote.ts";
import { PersistentShell } from "./shell-session.ts";
import type { SshConnection } from "./ssh-connection.ts";
import type { ExecOptions, ExecResult } from "./types.ts";

export class SshExec {
  private shell?: PersistentShell;
  private shellBusy = false;

  constructor(
    private readonly conn: SshConnection,
    /** false: every command gets an exec channel (the benchmark's comparison) */
    private readonly persistentShell: boolean,
  ) {
    // the shell lives on one connection: a reconnect starts a new one
    conn.onTeardown(() => {
      this.shell?.close();
      this.shell = undefined;
    });
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const conn = this.conn;
    const client = await conn.ready();
    const text = opts.sudo && conn.user !== "root" ? `sudo -n -- sh -c ${shQuote(command)}` : command;
    if (this.persistentShell && opts.stdin === undefined && !this.shellBusy) {
      this.shellBusy = true;
      try {
        return await conn.guard(this.inShell(client, text, opts));
      } finally {
        this.shellBusy = false;
      }
    }
    // `sh -c` so both paths run the text in the same shell, whatever the login shell is
    return conn.guard(this.inChannel(client, `exec sh -c ${shQuote(text)}`, opts));
  }

  private async inShell(client: SshClient, text: string, opts: ExecOptions): Promise<ExecResult> {
    if (!this.shell || this.shell.closed) {
      // the shell holds one channel slot for as long as it lives
      const sem = this.conn.channels;
      await sem.acquire();
      try {
        const ch = await this.conn.openChannel<ClientChannel>((cb) => client.exec("exec sh", cb));
        this.shell = new PersistentShell(ch, () => sem.release());
      } catch (e) {
        sem.release();
        throw e;
      }
    }
    try {
      return await this.shell.run(text, opts);
    } catch (e) {
      throw this.conn.transportError(e as Error);
    }
  }

  private async inChannel(client: SshClient, text: string, opts: ExecOptions): Promise<ExecResult> {
    const conn = this.conn;
    const sem = conn.channels;
    await sem.acquire();
    let ch: ClientChannel;
    try {
      ch = await conn.openChannel<ClientChannel>((cb) => client.exec(text, cb));
    } catch (e) {
      sem.release();
      throw e;
    }
    // the slot is held until the server confirms the close, even when we answer earlier (timeout)
    ch.once("close", () => sem.release());
    return new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      let stopped: string | undefined;

      ch.on("data", (d: Buffer) => {
        out.push(d);
        safeCall(opts.onStdout, d);
      });
      ch.stderr.on("data", (d: Buffer) => {
        err.push(d);
        safeCall(opts.onStderr, d);
      });
      ch.on("exit", (c: number | null, sig?: string) => {
        code = typeof c === "number" ? c : null;
        if (sig) signal = sig.startsWith("SIG") ? sig : `SIG${sig}`;
      });

      const finish = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        resolve({
          code: stopped ? null : code,
          signal: stopped ?? signal,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
      };
      // sshd keeps the channel until the process exits, so answer now rather than wait for "close"
      const stop = (why: string) => {
        if (stopped) return;
        stopped = why;
        try {
          ch.signal("KILL");
        } catch {}
        ch.close();
        finish();
      };
      const timer = opts.timeoutMs ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
      const onAbort = () => stop("aborted");
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });

      ch.on("close", () => {
        if (stopped) return;
        if (conn.lost && code === null && !signal) {
          clearTimeout(timer);
          reject(conn.transportError(conn.lost));
          return;
        }
        finish();
      });

      feedStdin(ch, opts.stdin);
    });
  }
}

/** Always end stdin so commands that read it never wait forever. */
function feedStdin(ch: ClientChannel, stdin: ExecOptions["stdin"]): void {
  if (stdin === undefined) ch.end();
  else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) ch.end(stdin);
  else {
    stdin.on("error", () => ch.end());
    stdin.pipe(ch);
  }
}

function safeCall(fn: ((b: Buffer) => void) | undefined, b: Buffer): void {
  if (!fn) return;
  try {
    fn(b);
  } catch {
    // a failing printer must not break the command
  }
}
