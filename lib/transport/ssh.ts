// SSH transport on ssh2: one connection per host, channels capped by a semaphore,
// host keys checked against known_hosts before anything runs.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { basename, dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import ssh2 from "ssh2";
import type { Client as SshClient, ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import type { SshOptions, SshTarget } from "../hosts.ts";
import { shQuote } from "../quote.ts";
import {
  appendKnownHost,
  checkHostKeyDetailed,
  entryFingerprint,
  fingerprint,
  forgetHostCommand,
  formatKnownHostLine,
  keyTypeOfBlob,
  knownKeyTypes,
  readKnownHosts,
} from "./known-hosts.ts";
import { Semaphore } from "./semaphore.ts";
import { PersistentShell } from "./shell-session.ts";
import { defaultSshConfigPath, expandTilde, loadSshConfig, parseHostSpec, type ResolvedSshConfig } from "./ssh-config.ts";
import { UnreachableError, type ExecOptions, type ExecResult, type Transport, type UploadResult } from "./types.ts";

const { Client, utils } = ssh2;

/** One machine on the way to the target (jump hosts first, target last). */
export interface Hop {
  /** name as written (alias or address), for messages */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** name/port to look up in known_hosts (HostKeyAlias or host) */
  keyHost: string;
  keyPort: number;
}

type AuthMethod = { type: "publickey"; username: string; key: Buffer } | { type: "agent"; username: string; agent: string };

const MAX_JUMPS = 8;
const OPEN_RETRIES = 6;
/** ssh2's default host key algorithm order; we move the types we already trust to the front. */
const HOST_KEY_ALGOS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];

export interface SshTransportTuning {
  /** Run stdin-less commands through one persistent `sh` instead of a channel each (see shell-session.ts). */
  persistentShell?: boolean;
}

export class SshTransport implements Transport {
  readonly label: string;
  private readonly target: SshTarget;
  private readonly opts: SshOptions;
  private readonly tuning: SshTransportTuning;
  private clients: SshClient[] = [];
  private connecting?: Promise<void>;
  private lost?: Error;
  /** rejects when the current connection drops; raced against in-flight work that might otherwise wait forever */
  private lostPromise: Promise<never> = new Promise(() => undefined);
  private hop?: Hop;
  private shell?: PersistentShell;
  private shellBusy = false;
  /** per connection: a dropped connection's slots are never given back, so a reconnect starts afresh */
  channels: Semaphore;
  private dead = new WeakSet<SshClient>();

  constructor(target: SshTarget & { label: string }, opts: SshOptions, tuning: SshTransportTuning = {}) {
    this.label = target.label;
    this.target = target;
    this.opts = opts;
    this.tuning = { persistentShell: true, ...tuning };
    this.channels = new Semaphore(Math.max(1, opts.maxChannels || 8));
  }

  get user(): string {
    return this.hop?.user ?? this.target.user ?? localUser();
  }

  /** `label (user@host:port)`, used in every error about this host; the address once when it is the label. */
  get where(): string {
    const h = this.hop;
    const addr = h && `${h.user}@${h.host}:${h.port}`;
    return addr && addr !== this.label ? `${this.label} (${addr})` : this.label;
  }

  // ---- connection -----------------------------------------------------------

  async connect(): Promise<void> {
    if (this.clients.length && !this.lost) return;
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    await this.teardown();
    this.lost = undefined;
    this.channels = new Semaphore(this.channels.limit);
    const chain = this.buildChain(this.target.address, this.target, 0);
    this.hop = chain[chain.length - 1];
    const clients: SshClient[] = [];
    try {
      for (const hop of chain) {
        const prev = clients[clients.length - 1];
        const sock = prev ? await forwardOut(prev, hop, this.opts.connectTimeoutMs) : undefined;
        clients.push(await this.connectHop(hop, sock, hop === this.hop));
      }
    } catch (e) {
      for (const c of clients.reverse()) c.end();
      throw e;
    }
    let markLost!: (e: Error) => void;
    this.lostPromise = new Promise<never>((_, reject) => (markLost = reject));
    this.lostPromise.catch(() => undefined);
    for (const c of clients) {
      // A dropped link fails whatever is in flight; the next call reconnects.
      c.on("error", (err: Error) => {
        if (this.clients.includes(c)) this.lost ??= err;
      });
      c.on("close", () => {
        this.dead.add(c);
        if (!this.clients.includes(c)) return; // a previous connection finishing late
        this.lost ??= new Error("connection closed");
        markLost(this.lost);
      });
    }
    this.clients = clients;
  }

  private resolve(address: string, over: Partial<SshTarget>): { hop: Hop; jumps: string[] } {
    const spec = parseHostSpec(address);
    let cfg: ResolvedSshConfig | undefined;
    if (this.opts.sshConfigFile !== null) {
      try {
        cfg = loadSshConfig(spec.host, this.opts.sshConfigFile || defaultSshConfigPath());
      } catch (e) {
        throw new UnreachableError(`${this.label}: cannot read ssh config: ${(e as Error).message}`, "config");
      }
    }
    const host = cfg?.hostName ?? spec.host;
    const port = over.port ?? spec.port ?? cfg?.port ?? 22;
    const hop: Hop = {
      name: address,
      host,
      port,
      user: over.user ?? spec.user ?? cfg?.user ?? localUser(),
      identityFiles: over.identityFile ? [expandTilde(over.identityFile)] : cfg?.identityFiles ?? [],
      keyHost: cfg?.hostKeyAlias ?? host,
      keyPort: cfg?.hostKeyAlias ? 22 : port,
    };
    const pj = over.proxyJump !== undefined ? splitJumps(over.proxyJump) : cfg?.proxyJump ?? [];
    return { hop, jumps: pj };
  }

  /** Hops from the first jump host to the target; the first jump host honours its own ProxyJump, like `ssh -J`. */
  private buildChain(address: string, over: Partial<SshTarget>, depth: number): Hop[] {
    if (depth > MAX_JUMPS) throw new UnreachableError(`${this.label}: ProxyJump chain deeper than ${MAX_JUMPS} (a loop?)`, "config");
    const { hop, jumps } = this.resolve(address, over);
    if (jumps.length === 0) return [hop];
    const chain = this.buildChain(jumps[0], {}, depth + 1);
    for (const j of jumps.slice(1)) chain.push(this.resolve(j, { proxyJump: "none" }).hop);
    chain.push(hop);
    return chain;
  }

  private connectHop(hop: Hop, sock: NodeJS.ReadableStream | undefined, isTarget: boolean): Promise<SshClient> {
    const where = isTarget ? this.where : `${this.label}: jump host ${hop.name} (${hop.user}@${hop.host}:${hop.port})`;
    const { methods, notes } = authMethods(hop);
    if (methods.length === 0) {
      return Promise.reject(new UnreachableError(`${where}: no SSH key to log in with (${notes.join("; ") || "no identity file, no SSH_AUTH_SOCK, no ~/.ssh/id_*"})`, "auth"));
    }
    const known = readKnownHosts(this.opts.knownHostsFile);
    const trusted = knownKeyTypes(known, hop.keyHost, hop.keyPort);
    const algos = [...HOST_KEY_ALGOS].sort((a, b) => rank(trusted, b) - rank(trusted, a));

    return new Promise((resolve, reject) => {
      const client = new Client();
      let refusal: UnreachableError | undefined;
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(refusal ?? e);
      };
      client.on("error", (err: Error & { level?: string; code?: string }) => fail(mapConnectError(err, where, this.opts.connectTimeoutMs, notes)));
      client.once("close", () => fail(new UnreachableError(`${where}: connection closed during SSH handshake`, "network")));
      client.once("ready", () => {
        settled = true;
        client.setNoDelay(true); // many small request/response round trips: Nagle only adds latency
        resolve(client);
      });
      const config: ConnectConfig = {
        host: hop.host,
        port: hop.port,
        username: hop.user,
        sock: sock as ConnectConfig["sock"],
        readyTimeout: this.opts.connectTimeoutMs,
        keepaliveInterval: this.opts.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        authHandler: methods as ConnectConfig["authHandler"],
        algorithms: { serverHostKey: algos as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] },
        hostVerifier: (key: Buffer) => {
          refusal = this.verifyHostKey(hop, key, where);
          return refusal === undefined;
        },
      };
      client.connect(config);
    });
  }

  /** undefined = trusted; otherwise the refusal to report. Runs before authentication, so a refused host runs nothing. */
  private verifyHostKey(hop: Hop, key: Buffer, where: string): UnreachableError | undefined {
    const file = this.opts.knownHostsFile;
    const type = keyTypeOfBlob(key);
    const fp = fingerprint(key);
    const check = checkHostKeyDetailed(readKnownHosts(file), hop.keyHost, hop.keyPort, type, key);
    switch (check.status) {
      case "match":
        return undefined;
      case "revoked":
        return new UnreachableError(`${where}: host key ${type} ${fp} is marked @revoked in ${file}:${check.entry!.line}; refusing to connect.`, "hostkey-changed");
      case "changed": {
        const old = check.entry!;
        const others = check.known!.filter((e) => e !== old).map((e) => `${file}:${e.line} (${e.keyType})`);
        const also = others.length ? ` (also ${others.join(", ")})` : "";
        // a known host showing another key type is no new host: --accept-new-host-key does not apply
        const otherType =
          old.keyType === type ? [] : [`  A key of another type than the one on record is refused too, even with --accept-new-host-key.`];
        const forget = forgetHostCommand(hop.keyHost, hop.keyPort, file, join(homedir(), ".ssh", "known_hosts"));
        return new UnreachableError(
          [
            `${where}: HOST KEY CHANGED. Refusing to connect; nothing was run.`,
            `  The host now presents ${type} ${fp},`,
            `  but ${file}:${old.line} holds ${old.keyType} ${entryFingerprint(old)} for it${also}.`,
            ...otherType,
            `  Either the box was re-provisioned (new machine at the same address) or someone is intercepting the connection.`,
            `  If you know it was re-provisioned, remove the old key with \`${forget}\` and reconnect with --accept-new-host-key.`,
          ].join("\n"),
          "hostkey-changed",
        );
      }
      case "unknown":
        if (this.opts.acceptNewHostKey) {
          appendKnownHost(file, formatKnownHostLine(hop.keyHost, hop.keyPort, type, key));
          return undefined;
        }
        return new UnreachableError(
          `${where}: host key not in ${file} (${type} ${fp}). Check the fingerprint, then run again with --accept-new-host-key to record it.`,
          "hostkey-unknown",
        );
    }
  }

  private get client(): SshClient {
    const c = this.clients[this.clients.length - 1];
    if (!c) throw new Error(`${this.where}: not connected`);
    return c;
  }

  private async ready(): Promise<SshClient> {
    if (!this.clients.length || this.lost) await this.connect();
    return this.client;
  }

  /** Open a channel, retrying while the server refuses it (MaxSessions reached by someone else, transient). */
  private async openChannel<T>(open: (cb: (err: Error | undefined, ch: T) => void) => void): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<T>((resolve, reject) => open((err, ch) => (err ? reject(err) : resolve(ch))));
      } catch (e) {
        const err = e as Error;
        const retryable = /Channel open failure/.test(err.message) && !/closed channel unexpectedly/.test(err.message) && !this.lost;
        if (!retryable || attempt >= OPEN_RETRIES) throw this.transportError(err);
        await sleep(50 * 2 ** attempt);
      }
    }
  }

  /** Run work that needs the connection; it fails as soon as the connection drops. */
  private guard<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.lostPromise.catch((e: Error) => Promise.reject(this.transportError(e)))]);
  }

  private transportError(err: Error): Error {
    if (err instanceof UnreachableError) return err;
    const cause = this.lost ?? err;
    return new UnreachableError(`${this.where}: ${cause.message}`, "network");
  }

  // ---- exec ---------------------------------------------------------------------

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const client = await this.ready();
    const text = opts.sudo && this.user !== "root" ? `sudo -n -- sh -c ${shQuote(command)}` : command;
    if (this.tuning.persistentShell && opts.stdin === undefined && !this.shellBusy) {
      this.shellBusy = true;
      try {
        return await this.guard(this.execInShell(client, text, opts));
      } finally {
        this.shellBusy = false;
      }
    }
    // `sh -c` so both paths run the text in the same shell, whatever the login shell is
    return this.guard(this.execChannel(client, `exec sh -c ${shQuote(text)}`, opts));
  }

  private async execInShell(client: SshClient, text: string, opts: ExecOptions): Promise<ExecResult> {
    if (!this.shell || this.shell.closed) {
      // the shell holds one channel slot for as long as it lives
      const sem = this.channels;
      await sem.acquire();
      try {
        const ch = await this.openChannel<ClientChannel>((cb) => client.exec("exec sh", cb));
        this.shell = new PersistentShell(ch, () => sem.release());
      } catch (e) {
        sem.release();
        throw e;
      }
    }
    try {
      return await this.shell.run(text, opts);
    } catch (e) {
      throw this.transportError(e as Error);
    }
  }

  private async execChannel(client: SshClient, text: string, opts: ExecOptions): Promise<ExecResult> {
    const sem = this.channels;
    await sem.acquire();
    let ch: ClientChannel;
    try {
      ch = await this.openChannel<ClientChannel>((cb) => client.exec(text, cb));
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
        if (this.lost && code === null && !signal) {
          clearTimeout(timer);
          reject(this.transportError(this.lost));
          return;
        }
        finish();
      });

      feedStdin(ch, opts.stdin);
    });
  }

  // ---- files ------------------------------------------------------------------

  /** `source` is file content (Buffer) or a local file path (string). */
  async upload(source: Buffer | string, remotePath: string, opts: { mode?: number; sudo?: boolean } = {}): Promise<UploadResult> {
    const mode = opts.mode ?? 0o644;
    const localSum = await sha256Local(source);
    const dir = posix.dirname(remotePath);
    const name = posix.basename(remotePath);
    const useSudo = !!opts.sudo && this.user !== "root";

    // One round trip: can we write there ourselves, where is home, what is there now.
    const probe = await this.exec(
      [
        `mkdir -p ${shQuote(dir)} 2>/dev/null`,
        `if [ -w ${shQuote(dir)} ] && { [ ! -e ${shQuote(remotePath)} ] || [ -w ${shQuote(remotePath)} ]; }; then echo w; else echo r; fi`,
        `printf '%s\\n' "$HOME"`,
        `sha256sum -- ${shQuote(remotePath)} 2>/dev/null` + (useSudo ? ` || sudo -n sha256sum -- ${shQuote(remotePath)} 2>/dev/null` : "") + " || true",
      ].join("; "),
    );
    const [access, home, sumLine] = probe.stdout.split("\n");
    if (sumLine?.split(/\s+/)[0] === localSum) return { changed: false, bytesSent: 0 };

    const tmpName = `.${name}.flow-tmp-${randomBytes(6).toString("hex")}`;
    if (access === "w" || !useSudo) {
      const tmp = posix.join(dir, tmpName);
      const bytesSent = await this.sftpPut(source, tmp, mode);
      const res = await this.exec(`mv -f -- ${shQuote(tmp)} ${shQuote(remotePath)}`);
      if (res.code !== 0) {
        await this.exec(`rm -f -- ${shQuote(tmp)}`).catch(() => undefined);
        throw new Error(`${this.where}: cannot move upload into ${remotePath}: ${res.stderr.trim()}`);
      }
      return { changed: true, bytesSent };
    }

    // Not writable by the login user: stage in home, then root installs it under a temp name and renames (atomic).
    const staged = posix.join(home || ".", tmpName);
    const bytesSent = await this.sftpPut(source, staged, 0o600);
    const finalTmp = posix.join(dir, tmpName);
    const script = [
      `mkdir -p ${shQuote(dir)}`,
      `install -m ${mode.toString(8)} ${shQuote(staged)} ${shQuote(finalTmp)}`,
      `mv -f -- ${shQuote(finalTmp)} ${shQuote(remotePath)}`,
    ].join(" && ");
    const res = await this.exec(`sudo -n -- sh -c ${shQuote(script)}; rc=$?; rm -f -- ${shQuote(staged)}; exit $rc`);
    if (res.code !== 0) throw new Error(`${this.where}: sudo install into ${remotePath} failed: ${res.stderr.trim()}`);
    return { changed: true, bytesSent };
  }

  /** SFTP-write `source` to `tmp`; on failure remove the temp when the link still allows it. */
  private async sftpPut(source: Buffer | string, tmp: string, mode: number): Promise<number> {
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
        throw this.transportError(e as Error);
      }
    });
  }

  async download(remotePath: string, localPath: string): Promise<void> {
    const tmp = join(dirname(localPath), `.${basename(localPath)}.flow-tmp-${randomBytes(6).toString("hex")}`);
    await this.withSftp(async (sftp) => {
      try {
        await pipeline(sftp.createReadStream(remotePath), createWriteStream(tmp));
        renameSync(tmp, localPath);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw /No such file|Permission denied/.test((e as Error).message) ? new Error(`${this.where}: cannot download ${remotePath}: ${(e as Error).message}`) : this.transportError(e as Error);
      }
    });
  }

  private async withSftp<T>(fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    const client = await this.ready();
    const sem = this.channels;
    return this.guard(
      sem.run(async () => {
        const sftp = await this.openChannel<SFTPWrapper>((cb) => client.sftp(cb));
        try {
          return await fn(sftp);
        } finally {
          sftp.end();
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    this.shell?.close();
    this.shell = undefined;
    const clients = this.clients.reverse();
    this.clients = [];
    for (const c of clients) {
      if (this.dead.has(c)) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        c.once("close", () => {
          clearTimeout(t);
          resolve();
        });
        c.end();
      });
    }
  }
}

// ---- helpers ------------------------------------------------------------------

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "root";
  }
}

function splitJumps(v: string): string[] {
  const t = v.trim();
  if (t === "" || t.toLowerCase() === "none") return [];
  return t.split(",").map((s) => s.trim()).filter(Boolean);
}

function rank(trusted: string[], algo: string): number {
  const type = algo.startsWith("rsa-sha2") ? "ssh-rsa" : algo;
  return trusted.includes(type) ? 1 : 0;
}

/** Keys to offer: explicit identity files only; otherwise the agent, then the default key files. */
function authMethods(hop: Hop): { methods: AuthMethod[]; notes: string[] } {
  const methods: AuthMethod[] = [];
  const notes: string[] = [];
  const addKey = (file: string, explicit: boolean) => {
    if (!existsSync(file)) {
      if (explicit) notes.push(`identity file ${file} not found`);
      return;
    }
    const key = readFileSync(file);
    const parsed = utils.parseKey(key);
    if (parsed instanceof Error) {
      notes.push(`${file} unusable (${/encrypt|passphrase/i.test(parsed.message) ? "passphrase-protected; load it into ssh-agent" : parsed.message})`);
      return;
    }
    methods.push({ type: "publickey", username: hop.user, key });
  };
  if (hop.identityFiles.length) {
    for (const f of hop.identityFiles) addKey(f, true);
  } else {
    if (process.env.SSH_AUTH_SOCK) methods.push({ type: "agent", username: hop.user, agent: process.env.SSH_AUTH_SOCK });
    for (const n of ["id_ed25519", "id_ecdsa", "id_rsa"]) addKey(join(homedir(), ".ssh", n), false);
  }
  return { methods, notes };
}

function mapConnectError(err: Error & { level?: string; code?: string }, where: string, timeoutMs: number, notes: string[]): UnreachableError {
  if (err.level === "client-authentication") {
    return new UnreachableError(`${where}: authentication failed (the server accepted none of our keys)${notes.length ? `; ${notes.join("; ")}` : ""}`, "auth");
  }
  if (err.level === "client-timeout") return new UnreachableError(`${where}: no SSH handshake within ${timeoutMs} ms (${err.message})`, "timeout");
  const code = err.code ? `${err.code}: ` : "";
  return new UnreachableError(`${where}: ${code}${err.message}`, "network");
}

/** Tunnel to the next hop through `via` (ProxyJump); the channel becomes the next client's socket. */
function forwardOut(via: SshClient, hop: Hop, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new UnreachableError(`jump to ${hop.host}:${hop.port}: no answer within ${timeoutMs} ms`, "timeout")), timeoutMs);
    via.forwardOut("127.0.0.1", 0, hop.host, hop.port, (err, stream) => {
      clearTimeout(t);
      if (err) reject(new UnreachableError(`jump to ${hop.user}@${hop.host}:${hop.port} failed: ${err.message}`, "network"));
      else resolve(stream);
    });
  });
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

async function sha256Local(source: Buffer | string): Promise<string> {
  const h = createHash("sha256");
  if (typeof source !== "string") return h.update(source).digest("hex");
  for await (const chunk of createReadStream(source)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
