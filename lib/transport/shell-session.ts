// Fast path for short commands: one long-lived `sh` per connection, fed commands on stdin.
// Each exec channel pays a channel open plus a remote login-shell start (bash, .bashrc,
// conda hooks on GPU images); here a command costs one round trip.
//
// Framing: after each command the shell prints a random end marker with the exit code on
// stdout and the marker alone on stderr, so output comes back byte for byte. Commands run
// in a subshell with stdin from /dev/null: `cd`, `exit`, `set -e` do not leak into the next
// command and nothing can swallow the next command's text.
// Limits: commands that need stdin use exec channels; a background job that keeps stdout
// open would bleed into later output (detach with redirects, as the launcher does).
import { randomBytes } from "node:crypto";
import type { ClientChannel } from "ssh2";
import { shQuote } from "../quote.ts";
import type { ExecOptions, ExecResult } from "./types.ts";

/** Collects one stream's bytes up to `marker`, streaming everything that cannot be part of it. */
class MarkerReader {
  private buf: Buffer = Buffer.alloc(0);
  private emitted = 0;
  done = false;
  /** text after the marker, up to the newline (the exit code on stdout) */
  trailer = "";
  output: Buffer = Buffer.alloc(0);

  constructor(
    private readonly marker: Buffer,
    private readonly sink?: (b: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.done) return; // cannot happen unless a background job writes late; dropped
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const at = this.buf.indexOf(this.marker, Math.max(0, this.emitted - this.marker.length));
    if (at >= 0) {
      const nl = this.buf.indexOf(0x0a, at + this.marker.length);
      if (nl < 0) {
        this.emit(at);
        return;
      }
      this.emit(at);
      this.trailer = this.buf.subarray(at + this.marker.length, nl).toString("latin1");
      this.output = this.buf.subarray(0, at);
      this.done = true;
      return;
    }
    // hold back a tail that could be the start of the marker
    this.emit(Math.max(this.emitted, this.buf.length - this.marker.length + 1));
  }

  private emit(upTo: number): void {
    if (upTo <= this.emitted) return;
    const part = this.buf.subarray(this.emitted, upTo);
    this.emitted = upTo;
    if (this.sink) {
      try {
        this.sink(Buffer.from(part));
      } catch {
        // a failing printer must not break the command
      }
    }
  }

  partial(): Buffer {
    return this.buf;
  }
}

export class PersistentShell {
  closed = false;
  private current?: { fail: (why: string) => void };

  constructor(
    private readonly ch: ClientChannel,
    onClose: () => void,
  ) {
    ch.on("close", () => {
      this.closed = true;
      this.current?.fail("closed");
      onClose();
    });
    ch.on("error", () => undefined); // surfaced through "close"
  }

  /** Run one command; callers serialize (one command in flight per shell). */
  run(text: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.closed) return Promise.reject(new Error("persistent shell is closed"));
    const id = randomBytes(16).toString("hex");
    const marker = Buffer.from(`__flow_end_${id}_`);
    const out = new MarkerReader(marker, opts.onStdout);
    const err = new MarkerReader(marker, opts.onStderr);

    return new Promise<ExecResult>((resolve, reject) => {
      const onOut = (d: Buffer) => {
        out.push(d);
        check();
      };
      const onErr = (d: Buffer) => {
        err.push(d);
        check();
      };
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        this.ch.removeListener("data", onOut);
        this.ch.stderr.removeListener("data", onErr);
        this.current = undefined;
      };
      const check = () => {
        if (!out.done || !err.done) return;
        cleanup();
        const code = Number.parseInt(out.trailer, 10);
        resolve({ code: Number.isFinite(code) ? code : null, stdout: out.output.toString("utf8"), stderr: err.output.toString("utf8") });
      };
      // Timeout/abort: the only way to stop the command is to drop the whole shell.
      const stop = (why: string) => {
        this.closed = true; // never hand this shell another command
        this.current?.fail(why);
        try {
          this.ch.signal("KILL");
        } catch {}
        this.ch.close();
      };
      const fail = (why: string) => {
        cleanup();
        if (why === "closed") {
          reject(new Error("connection closed while a command was running"));
          return;
        }
        resolve({ code: null, signal: why, stdout: out.partial().toString("utf8"), stderr: err.partial().toString("utf8") });
      };
      const timer = opts.timeoutMs ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
      const onAbort = () => stop("aborted");
      this.current = { fail };
      this.ch.on("data", onOut);
      this.ch.stderr.on("data", onErr);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });

      this.ch.write(`(eval ${shQuote(text)}) </dev/null; printf '%s%d\\n' ${marker} $?; printf '%s\\n' ${marker} >&2\n`);
    });
  }

  close(): void {
    if (!this.closed) this.ch.end();
  }
}
