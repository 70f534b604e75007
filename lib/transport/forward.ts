// Local port forwarding (`ssh -L`), transport-neutral: a TCP listener on this machine whose every
// connection is piped into a stream the transport opens to the far side (an SSH direct-tcpip
// channel, or a plain socket for `--host local`). Closing the forward closes the listener and every
// connection it carries.
import { createServer, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { PortForward } from "./types.ts";

export interface ForwardListenOptions {
  /** local address to listen on (default 127.0.0.1: never the LAN) */
  localHost?: string;
  /** told about a connection that could not be carried (the far side refused it, the link dropped) */
  onError?: (err: Error) => void;
}

/**
 * Listen on localHost:localPort (0: a free port) and carry each connection through `open`, which
 * is given the client's address and returns the far side's stream.
 */
export async function listenForward(
  localPort: number,
  open: (from: { address: string; port: number }) => Promise<Duplex>,
  opts: ForwardListenOptions = {},
): Promise<PortForward> {
  const localHost = opts.localHost ?? "127.0.0.1";
  const sockets = new Set<Socket | Duplex>();
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => undefined); // a client that goes away mid-stream is not our failure
    sock.pause();
    open({ address: sock.remoteAddress ?? "127.0.0.1", port: sock.remotePort ?? 0 }).then(
      (far) => {
        if (sock.destroyed) return void far.destroy();
        sockets.add(far);
        far.on("close", () => {
          sockets.delete(far);
          sock.end();
        });
        far.on("error", (e: Error) => {
          opts.onError?.(e);
          sock.destroy();
        });
        sock.on("close", () => far.destroy());
        sock.pipe(far);
        far.pipe(sock);
        sock.resume();
      },
      (err: Error) => {
        opts.onError?.(err);
        sock.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(localPort, localHost, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    localHost,
    localPort: port,
    get connections() {
      return connections;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}
