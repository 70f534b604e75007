// Files over SFTP: atomic uploads (temp name, then rename) skipped when the sha256 matches, staged
// in the login user's home and installed by sudo where that user cannot write; downloads to a temp
// name renamed into place. Each SFTP session holds one of the connection's channel slots.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { SFTPWrapper } from "ssh2";
import { shQuote } from "../quote.ts";
import type { SshConnection } from "./ssh-connection.ts";
import type { ExecOptions, ExecResult, UploadResult } from "./types.ts";

export class SshFiles {
  constructor(
    private readonly conn: SshConnection,
    /** the transport's exec, for the probe, the rename and the sudo install */
    private readonly exec: (command: string, opts?: ExecOptions) => Promise<ExecResult>,
  ) {}

  /** `source` is file content (Buffer) or a local file path (string). */
  async upload(source: Buffer | string, remotePath: string, opts: { mode?: number; sudo?: boolean } = {}): Promise<UploadResult> {
    const mode = opts.mode ?? 0o644;
    const localSum = await sha256Local(source);
    const dir = posix.dirname(remotePath);
    const name = posix.basename(remotePath);
    const useSudo = !!opts.sudo && this.conn.user !== "root";
    const [qDir, qPath] = [shQuote(dir), shQuote(remotePath)];

    // One round trip: can we write there ourselves, where is home, what is there now.
    const probe = await this.exec(
      [
        `mkdir -p ${qDir} 2>/dev/null`,
        `if [ -w ${qDir} ] && { [ ! -e ${qPath} ] || [ -w ${qPath} ]; }; then echo w; else echo r; fi`,
        `printf '%s\\n' "$HOME"`,
        `sha256sum -- ${qPath} 2>/dev/null` + (useSudo ? ` || sudo -n sha256sum -- ${qPath} 2>/dev/null` : "") + " || true",
      ].join("; "),
    );
    const [access, home, sumLine] = probe.stdout.split("\n");
    if (sumLine?.split(/\s+/)[0] === localSum) return { changed: false, bytesSent: 0 };

    const tmpName = `.${name}.flow-tmp-${randomBytes(6).toString("hex")}`;
    if (access === "w" || !useSudo) {
      const tmp = posix.join(dir, tmpName);
      const bytesSent = await this.put(source, tmp, mode);
      const res = await this.exec(`mv -f -- ${shQuote(tmp)} ${qPath}`);
      if (res.code !== 0) {
        await this.exec(`rm -f -- ${shQuote(tmp)}`).catch(() => undefined);
        throw new Error(`${this.conn.where}: cannot move upload into ${remotePath}: ${res.stderr.trim()}`);
      }
      return { changed: true, bytesSent };
    }

    // Not writable by the login user: stage in home, then root installs it under a temp name and renames (atomic).
    const staged = posix.join(home || ".", tmpName);
    const bytesSent = await this.put(source, staged, 0o600);
    const finalTmp = posix.join(dir, tmpName);
    const script = [
      `mkdir -p ${qDir}`,
      `install -m ${mode.toString(8)} ${shQuote(staged)} ${shQuote(finalTmp)}`,
      `mv -f -- ${shQuote(finalTmp)} ${qPath}`,
    ].join(" && ");
    const res = await this.exec(`sudo -n -- sh -c ${shQuote(script)}; rc=$?; rm -f -- ${shQuote(staged)}; exit $rc`);
    if (res.code !== 0) throw new Error(`${this.conn.where}: sudo install into ${remotePath} failed: ${res.stderr.trim()}`);
    return { changed: true, bytesSent };
  }

  async download(remotePath: string, localPath: string): Promise<void> {
    const tmp = join(dirname(localPath), `.${basename(localPath)}.flow-tmp-${randomBytes(6).toString("hex")}`);
    await this.withSftp(async (sftp) => {
      try {
        await pipeline(sftp.createReadStream(remotePath), createWriteStream(tmp));
        renameSync(tmp, localPath);
      } catch (e) {
        rmSync(tmp, { force: true });
        const err = e as Error;
        if (/No such file|Permission denied/.test(err.message)) {
          throw new Error(`${this.conn.where}: cannot download ${remotePath}: ${err.message}`);
        }
        throw this.conn.transportError(err);
      }
    });
  }

  /** SFTP-write `source` to `tmp`; on failure remove the temp when the link still allows it. */
  private async put(source: Buffer | string, tmp: string, mode: number): Promise<number> {
    return this.withSftp(async (sftp) => {
      let sent = 0;
      try {
        const input = typeof source === "string" ? createReadStream(source) : Readable.from([source]);
        input.on("data", (c: Buffer) => (sent += c.length));
        await pipeline(input, sftp.createWriteStream(tmp, { mode }));
        await new Promise<void>((res, rej) => sftp.chmod(tmp, mode, (e) => (e ? rej(e) : res())));
        return sent;
      } catch (e) {
        await Promise.race([new Promise<void>((res) => sftp.unlink(tmp, () => res())), sleep(2000)]);
        throw this.conn.transportError(e as Error);
      }
    });
  }

  private async withSftp<T>(fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    const conn = this.conn;
    const client = await conn.ready();
    const sem = conn.channels;
    return conn.guard(
      sem.run(async () => {
        const sftp = await conn.openChannel<SFTPWrapper>((cb) => client.sftp(cb));
        try {
          return await fn(sftp);
        } finally {
          sftp.end();
        }
      }),
    );
  }
}

async function sha256Local(source: Buffer | string): Promise<string> {
  const h = createHash("sha256");
  if (typeof source !== "string") return h.update(source).digest("hex");
  for await (const chunk of createReadStream(source)) h.update(chunk as Buffer);
  return h.digest("hex");
}
