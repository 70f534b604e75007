// `--host local`: the same interface as SSH, run on this machine.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, rename, writeFile, chmod, rm } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { localUser } from "../hosts.ts";
import { shJoin } from "../quote.ts";
import { listenForward } from "./forward.ts";
import type { ExecOptions, ExecResult, PortForward, Transport, UploadResult } from "./types.ts";

export class LocalTransport implements Transport {
  readonly label = "local";
  readonly user = localUser();

  async connect(): Promise<void> {}

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const argv = opts.sudo && this.user !== "root" ? ["sudo", "-n", "--", "sh", "-c", command] : ["sh", "-c", command];
    return new Promise((resolveExec, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], signal: opts.signal });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
      child.stdout.on("data", (c: Buffer) => (out.push(c), opts.onStdout?.(c)));
      child.stderr.on("data", (c: Buffer) => (err.push(c), opts.onStderr?.(c)));
      child.stdin.on("error", () => {}); // a command that does not read stdin closes it early
      child.on("error", (e) => (e.name === "AbortError" ? undefined : reject(e)));
      child.on("close", (code, signal) => {
        if (timer) clearTimeout(timer);
        resolveExec({ code, signal: signal ?? undefined, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
      if (opts.stdin instanceof Readable) opts.stdin.pipe(child.stdin);
      else child.stdin.end(opts.stdin ?? "");
    });
  }

  async upload(source: Buffer | string, remotePath: string, opts: { mode?: number; sudo?: boolean } = {}): Promise<UploadResult> {
    const data = typeof source === "string" ? await readFile(source) : source;
    const want = sha256(data);
    const have = await readFile(remotePath).then(sha256, () => null);
    if (have === want) return { changed: false, bytesSent: 0 };
    const tmp = join(dirname(remotePath), `.${basename(remotePath)}.flow-tmp-${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(dirname(remotePath), { recursive: true });
      await writeFile(tmp, data, { mode: opts.mode ?? 0o644 });
      await chmod(tmp, opts.mode ?? 0o644);
      await rename(tmp, remotePath);
    } catch (err) {
      await rm(tmp, { force: true });
      if (opts.sudo && this.user !== "root") {
        // Not writable as us: stage in a temp file, then let sudo install it atomically.
        const staged = join(process.env.TMPDIR ?? "/tmp", `flow-up-${randomBytes(6).toString("hex")}`);
        await writeFile(staged, data, { mode: 0o600 });
        const r = await this.exec(shJoin(["install", "-m", (opts.mode ?? 0o644).toString(8), staged, remotePath]), { sudo: true });
        await rm(staged, { force: true });
        if (r.code !== 0) throw new Error(`upload to ${remotePath} failed: ${r.stderr.trim()}`);
      } else throw err;
    }
    return { changed: true, bytesSent: data.length };
  }

  async download(remotePath: string, localPath: string): Promise<void> {
    await copyFile(remotePath, localPath);
  }

  /** A plain TCP relay on this machine (the "host" is this machine). */
  forward(
    localPort: number,
    remoteHost: string,
    remotePort: number,
    opts: { localHost?: string; onError?: (err: Error) => void } = {},
  ): Promise<PortForward> {
    return listenForward(
      localPort,
      () =>
        new Promise((resolve, reject) => {
          const s = netConnect(remotePort, remoteHost);
          s.once("connect", () => (s.off("error", reject), resolve(s)));
          s.once("error", reject);
        }),
      opts,
    );
  }

  async close(): Promise<void> {}
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
