// Dialling a route: one ssh2 client per hop, each later hop tunnelled through the one before
// (ProxyJump), host key checked before authentication, failures mapped to UnreachableError.
import ssh2 from "ssh2";
import type { Client as SshClient, ClientChannel, ConnectConfig } from "ssh2";
import type { SshOptions } from "../hosts.ts";
import { hostKeyAlgorithms, verifyHostKey } from "./host-key-policy.ts";
import { authMethods } from "./ssh-auth.ts";
import { hopWhere, type Hop } from "./ssh-route.ts";
import { UnreachableError } from "./types.ts";

type DialOptions = Pick<SshOptions, "knownHostsFile" | "acceptNewHostKey" | "connectTimeoutMs" | "keepaliveIntervalMs">;

/** Connect every hop of `chain` in turn; on failure the hops already up are closed again. */
export async function dialChain(chain: Hop[], label: string, opts: DialOptions): Promise<SshClient[]> {
  const target = chain[chain.length - 1];
  const clients: SshClient[] = [];
  try {
    for (const hop of chain) {
      const prev = clients[clients.length - 1];
      const sock = prev ? await forwardOut(prev, hop, opts.connectTimeoutMs) : undefined;
      clients.push(await connectHop(hop, sock, hopWhere(label, hop, hop === target), opts));
    }
  } catch (e) {
    for (const c of clients.reverse()) c.end();
    throw e;
  }
  return clients;
}

function connectHop(hop: Hop, sock: NodeJS.ReadableStream | undefined, where: string, opts: DialOptions): Promise<SshClient> {
  const { methods, notes } = authMethods(hop);
  if (methods.length === 0) {
    const why = notes.join("; ") || "no identity file, no SSH_AUTH_SOCK, no ~/.ssh/id_*";
    return Promise.reject(new UnreachableError(`${where}: no SSH key to log in with (${why})`, "auth"));
  }
  const algos = hostKeyAlgorithms(opts.knownHostsFile, hop);

  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let refusal: UnreachableError | undefined;
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(refusal ?? e);
    };
    client.on("error", (err: ConnectError) => fail(mapConnectError(err, where, opts.connectTimeoutMs, notes)));
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
      readyTimeout: opts.connectTimeoutMs,
      keepaliveInterval: opts.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      authHandler: methods as ConnectConfig["authHandler"],
      algorithms: { serverHostKey: algos as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] },
      hostVerifier: (key: Buffer) => {
        refusal = verifyHostKey(opts, hop, key, where);
        return refusal === undefined;
      },
    };
    client.connect(config);
  });
}

type ConnectError = Error & { level?: string; code?: string };

function mapConnectError(err: ConnectError, where: string, timeoutMs: number, notes: string[]): UnreachableError {
  if (err.level === "client-authentication") {
    const why = notes.length ? `; ${notes.join("; ")}` : "";
    return new UnreachableError(`${where}: authentication failed (the server accepted none of our keys)${why}`, "auth");
  }
  if (err.level === "client-timeout") {
    return new UnreachableError(`${where}: no SSH handshake within ${timeoutMs} ms (${err.message})`, "timeout");
  }
  const code = err.code ? `${err.code}: ` : "";
  return new UnreachableError(`${where}: ${code}${err.message}`, "network");
}

/** Tunnel to the next hop through `via` (ProxyJump); the channel becomes the next client's socket. */
function forwardOut(via: SshClient, hop: Hop, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new UnreachableError(`jump to ${hop.host}:${hop.port}: no answer within ${timeoutMs} ms`, "timeout")),
      timeoutMs,
    );
    via.forwardOut("127.0.0.1", 0, hop.host, hop.port, (err, stream) => {
      clearTimeout(t);
      if (err) reject(new UnreachableError(`jump to ${hop.user}@${hop.host}:${hop.port} failed: ${err.message}`, "network"));
      else resolve(stream);
    });
  });
}
