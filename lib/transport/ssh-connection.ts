// One live connection to a host (through its jump hosts): opened on first use, re-opened after
// a drop, with the channel cap (a semaphore per connection) and the error every caller reports.
import { setTimeout as sleep } from "node:timers/promises";
import type { Client as SshClient } from "ssh2";
import { loginUser, type SshOptions, type SshTarget } from "../hosts.ts";
import { Semaphore } from "./semaphore.ts";
import { dialChain } from "./ssh-connect.ts";
import { buildChain, hopWhere, resolveHop, type Hop } from "./ssh-route.ts";
import { UnreachableError } from "./types.ts";

const OPEN_RETRIES = 6;

export class SshConnection {
  readonly label: string;
  private readonly target: SshTarget;
  private readonly opts: SshOptions;
  private clients: SshClient[] = [];
  private connecting?: Promise<void>;
  /** why the current connection is unusable; the next ready() reconnects */
  lost?: Error;
  /** rejects when the current connection drops; raced against in-flight work that might otherwise wait forever */
  private lostPromise: Promise<never> = new Promise(() => undefined);
  private hop?: Hop;
  /** per connection: a dropped connection's slots are never given back, so a reconnect starts afresh */
  channels: Semaphore;
  private dead = new WeakSet<SshClient>();
  private readonly teardownHooks: (() => void)[] = [];

  constructor(target: SshTarget & { label: string }, opts: SshOptions) {
    this.label = target.label;
    this.target = target;
    this.opts = opts;
    this.channels = new Semaphore(Math.max(1, opts.maxChannels || 8));
  }

  /** The login user: the connected target's; before connecting, the one the route would use. */
  get user(): string {
    if (this.hop) return this.hop.user;
    try {
      return resolveHop(this.route, this.target.address, this.target).hop.user;
    } catch {
      return loginUser(this.target); // ssh_config unreadable: connect() will say so
    }
  }

  /** `label (user@host:port)`, used in every error about this host; the address once when it is the label. */
  get where(): string {
    return hopWhere(this.label, this.hop);
  }

  private get route() {
    return { label: this.label, sshConfigFile: this.opts.sshConfigFile };
  }

  /** Run before the clients close (a reconnect or close()): what lives on a connection goes with it. */
  onTeardown(hook: () => void): void {
    this.teardownHooks.push(hook);
  }

  async connect(): Promise<void> {
    if (this.clients.length && !this.lost) return;
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    await this.teardown();
    this.lost = undefined;
    this.channels = new Semaphore(this.channels.limit);
    const chain = buildChain(this.route, this.target.address, this.target);
    this.hop = chain[chain.length - 1];
    const clients = await dialChain(chain, this.label, this.opts);
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

  /** The target's client, connecting (again) first when needed. */
  async ready(): Promise<SshClient> {
    if (!this.clients.length || this.lost) await this.connect();
    const c = this.clients[this.clients.length - 1];
    if (!c) throw new Error(`${this.where}: not connected`);
    return c;
  }

  /** Open a channel, retrying while the server refuses it (MaxSessions reached by someone else, transient). */
  async openChannel<T>(open: (cb: (err: Error | undefined, ch: T) => void) => void): Promise<T> {
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
  guard<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.lostPromise.catch((e: Error) => Promise.reject(this.transportError(e)))]);
  }

  /** What a caller reports for a failure on this connection: the drop's cause when it dropped. */
  transportError(err: Error): Error {
    if (err instanceof UnreachableError) return err;
    const cause = this.lost ?? err;
    return new UnreachableError(`${this.where}: ${cause.message}`, "network");
  }

  async close(): Promise<void> {
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    for (const hook of this.teardownHooks) hook();
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
