// Is SSH up on a new box? Its server's first line says so: SSH-2.0-... (RFC 4253 allows other lines before it).
import { connect } from "node:net";

/** The banner line, or null when nothing SSH-like answered within the timeout. */
export function sshBanner(host: string, port: number, timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    let buf = "";
    const socket = connect({ host, port });
    const done = (v: string | null) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    socket.on("error", () => done(null));
    socket.on("close", () => done(null));
    socket.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (const line of buf.split(/\r?\n/).slice(0, -1)) if (/^SSH-(2\.0|1\.99)-/.test(line)) return done(line.trim());
      if (buf.length > 8192) done(null);
    });
  });
}
