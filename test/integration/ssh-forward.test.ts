// Transport.forward (`ssh -L`) against a real OpenSSH server on 127.0.0.1, and the local one.
import assert from "node:assert/strict";
import { createServer, connect, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { LocalTransport } from "../../lib/transport/local.ts";
import { SshTransport } from "../../lib/transport/ssh.ts";
import { freePort, haveSshd, startSshd, type Sshd } from "../support/sshd.ts";

const skip = haveSshd ? false : "no /usr/sbin/sshd (apt-get install openssh-server)";

/** A server on the "remote" side that answers each line with `echo:<line>`. */
function echoServer(): Promise<Server> {
  return new Promise((ok) => {
    const s = createServer((sock) => sock.on("data", (d) => sock.write(`echo:${d}`)));
    s.listen(0, "127.0.0.1", () => ok(s));
  });
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((ok, fail) => {
    const c = connect(port, "127.0.0.1", () => c.write(text));
    c.once("data", (d) => {
      ok(d.toString());
      c.end();
    });
    c.once("error", fail);
  });
}

/** The client sees the connection end (the far side refused it). */
function endsAtOnce(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const c = connect(port, "127.0.0.1");
    c.on("data", () => undefined);
    c.once("close", () => ok(true));
    c.once("error", () => ok(true));
    setTimeout(() => ok(false), 5000);
  });
}

describe("port forwarding", { skip }, () => {
  let d: Sshd;
  let echo: Server;
  let t: SshTransport;
  before(async () => {
    d = await startSshd();
    echo = await echoServer();
    t = new SshTransport(
      { label: "fwd", address: d.host, port: d.port, user: d.user, identityFile: d.identityFile },
      {
        knownHostsFile: d.knownHostsFile,
        acceptNewHostKey: false,
        connectTimeoutMs: 20_000,
        keepaliveIntervalMs: 5_000,
        sshConfigFile: null,
        maxChannels: 2,
      },
    );
  });
  after(async () => {
    await t?.close();
    echo?.close();
    await d?.stop();
  });

  test("ssh: a local port carries connections to the host's port, many at once, past the channel cap", async () => {
    const port = (echo.address() as AddressInfo).port;
    const f = await t.forward(0, "127.0.0.1", port);
    assert.equal(f.localHost, "127.0.0.1");
    assert.ok(f.localPort > 0);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => roundTrip(f.localPort, `hello ${i}`)));
    assert.deepEqual(
      answers,
      Array.from({ length: 12 }, (_, i) => `echo:hello ${i}`),
    );
    assert.equal(f.connections, 12);
    // commands still run beside the forward
    assert.equal((await t.exec("echo ok")).stdout, "ok\n");
    await f.close();
    await assert.rejects(roundTrip(f.localPort, "x"), /ECONNREFUSED/);
  });

  test("ssh: a closed remote port ends the local connection and is reported, the forward stays", async () => {
    const closed = await freePort();
    const errors: string[] = [];
    const f = await t.forward(0, "127.0.0.1", closed, { onError: (e) => errors.push(e.message) });
    assert.equal(await endsAtOnce(f.localPort), true);
    assert.match(errors.join("\n"), /forwarding to 127\.0\.0\.1:\d+/);
    await f.close();
  });

  test("a local port in use is refused with EADDRINUSE", async () => {
    const busy = await echoServer();
    const port = (busy.address() as AddressInfo).port;
    await assert.rejects(t.forward(port, "127.0.0.1", port), (e: NodeJS.ErrnoException) => e.code === "EADDRINUSE");
    busy.close();
  });

  test("local: the same contract", async () => {
    const port = (echo.address() as AddressInfo).port;
    const f = await new LocalTransport().forward(0, "127.0.0.1", port);
    assert.equal(await roundTrip(f.localPort, "x"), "echo:x");
    await f.close();
  });
});
