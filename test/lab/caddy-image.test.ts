// The lab's Caddy image (flow-caddy:lab, ./caddy/image.ts) in a real lab host (lab3): loaded into
// the host's inner engine, run as flow runs caddy:2 (--network host, a Caddyfile mounted at
// /etc/caddy, a host folder at /data), and reached from this machine through the ports the lab
// publishes on 127.0.0.1 (httpsPort -> 443, httpPort -> 80).
// node --import tsx --test test/lab/caddy-image.test.ts
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CADDY_TAG, ensureCaddyImage, HASH_LABEL, type CaddyLoad } from "./caddy/image.ts";
import { ensureLab, labUnavailableReason, resetHost, type LabInventory } from "./lab.ts";
import { run, sleep } from "./util.ts";

const reason = await labUnavailableReason();

const HOST = "lab3"; // lab1/lab2 belong to other lab tests; flow setups use lab4/lab5
const NAME = "flow-caddy-it";
const DIR = "/tmp/flow-caddy-it"; // on the lab host: etc/ (-> /etc/caddy) and data/ (-> /data)
const ROOT_CRT = `${DIR}/data/caddy/pki/authorities/local/root.crt`;

// Caddy's local CA signs a certificate for the IP address. curl sends no SNI for an IP, so Caddy
// picks a certificate by default_sni; without it, by the connection's local address, which is the
// lab host's own address behind the published port: no certificate matches it.
const caddyfile = (defaultSni: boolean) => `{
	skip_install_trust
${defaultSni ? "\tdefault_sni 127.0.0.1\n" : ""}}

https://127.0.0.1 {
	tls internal
	respond "ok"
}
`;

describe("lab Caddy image on a lab host", { skip: reason ?? false, timeout: 10 * 60_000 }, () => {
  let inv: LabInventory;
  let container: string;
  let first: CaddyLoad;
  let local: string;
  const inHost = (args: string[], input?: string) =>
    run("docker", ["exec", ...(input === undefined ? [] : ["-i"]), container, ...args], { allowFail: true, input, timeoutMs: 120_000 });
  const writeCaddyfile = async (defaultSni: boolean) => {
    const r = await inHost(["sh", "-c", `cat > ${DIR}/etc/Caddyfile`], caddyfile(defaultSni));
    assert.equal(r.code, 0, r.stderr);
  };
  const curl = (args: string[]) => run("curl", ["-sS", "--max-time", "10", ...args], { allowFail: true, timeoutMs: 20_000 });
  const httpsUrl = () => `https://127.0.0.1:${inv.hosts[HOST]!.data.httpsPort}/`;

  before(async () => {
    await ensureLab({ hosts: 3, docker: true });
    inv = await resetHost(HOST);
    container = inv.hosts[HOST]!.data.container;
    local = await mkdtemp(join(tmpdir(), "flow-caddy-it-"));
  });

  after(async () => {
    if (container) {
      await inHost(["docker", "rm", "-f", "-v", NAME]);
      await inHost(["rm", "-rf", DIR]);
    }
    if (local) await rm(local, { recursive: true, force: true });
  });

  test("inventory: https and http ports published on 127.0.0.1", () => {
    const h = inv.hosts[HOST]!;
    assert.equal(h.data.httpsPort, 23000 + 3 * 10 + 2);
    assert.equal(h.data.httpPort, 23000 + 3 * 10 + 3);
  });

  test("ensureCaddyImage loads the image into a fresh host", async () => {
    first = await ensureCaddyImage(inv, HOST, (m) => process.stderr.write(`[caddy] ${m}\n`));
    process.stderr.write(`[caddy] tarball ${first.build.built ? "built" : "cached"} in ${first.build.ms} ms; ensure ${first.ms} ms\n`);
    assert.equal(first.tag, CADDY_TAG);
    assert.equal(first.loaded, true);
    assert.match(first.hash, /^[0-9a-f]{16}$/);
  });

  test("the image is configured as the official caddy:2", async () => {
    const r = await inHost(["docker", "image", "inspect", "--format", "{{json .Config}}", CADDY_TAG]);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout) as {
      Env: string[];
      WorkingDir: string;
      Cmd: string[];
      Volumes: Record<string, unknown>;
      Labels: Record<string, string>;
    };
    assert.ok(c.Env.includes("XDG_CONFIG_HOME=/config"), c.Env.join(" "));
    assert.ok(c.Env.includes("XDG_DATA_HOME=/data"), c.Env.join(" "));
    assert.equal(c.WorkingDir, "/srv");
    assert.deepEqual(c.Cmd, ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]);
    assert.deepEqual(Object.keys(c.Volumes ?? {}).sort(), ["/config", "/data"]);
    assert.equal(c.Labels[HASH_LABEL], first.hash);
  });

  test("--network host with tls internal: the published https port answers, verified by Caddy's root", async () => {
    assert.equal((await inHost(["mkdir", "-p", `${DIR}/etc`, `${DIR}/data`])).code, 0);
    await writeCaddyfile(false);
    const started = await inHost([
      "docker",
      "run",
      "-d",
      "--name",
      NAME,
      "--network",
      "host",
      "-v",
      `${DIR}/etc:/etc/caddy:ro`,
      "-v",
      `${DIR}/data:/data`,
      CADDY_TAG,
    ]);
    assert.equal(started.code, 0, started.stderr);

    // the local CA's root lands under XDG_DATA_HOME, i.e. in the host folder
    let crt = "";
    for (let i = 0; i < 60 && !crt; i++) {
      const r = await inHost(["cat", ROOT_CRT]);
      if (r.code === 0 && r.stdout.includes("BEGIN CERTIFICATE")) crt = r.stdout;
      else await sleep(500);
    }
    if (!crt) assert.fail(`no ${ROOT_CRT}; caddy's log:\n${(await inHost(["docker", "logs", NAME])).stderr}`);
    const cacert = join(local, "root.crt");
    await writeFile(cacert, crt);

    // with SNI the certificate is served and verifies against that root (so it has been issued)
    const port = String(inv.hosts[HOST]!.data.httpsPort);
    const withSni = () =>
      run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "127.0.0.1", "-CAfile", cacert, "-verify_return_error"], {
        allowFail: true,
        input: "",
        timeoutMs: 20_000,
      });
    let sni = await withSni();
    for (let i = 0; i < 40 && sni.code !== 0; i++) {
      await sleep(500);
      sni = await withSni();
    }
    assert.equal(sni.code, 0, `${sni.stdout}\n${sni.stderr}`);
    assert.match(sni.stdout, /Verify return code: 0 \(ok\)/);

    // curl sends no SNI for an IP address: without default_sni the handshake fails
    const noSni = await curl(["--cacert", cacert, httpsUrl()]);
    assert.equal(noSni.code, 35, `expected a TLS failure without default_sni, got ${noSni.code}: ${noSni.stdout}${noSni.stderr}`);
    assert.match(noSni.stderr, /alert internal error/);

    // with default_sni 127.0.0.1
    await writeCaddyfile(true);
    const restarted = await inHost(["docker", "restart", NAME]);
    assert.equal(restarted.code, 0, restarted.stderr);
    let res = await curl(["--cacert", cacert, httpsUrl()]);
    for (let i = 0; i < 40 && res.stdout !== "ok"; i++) {
      await sleep(500);
      res = await curl(["--cacert", cacert, httpsUrl()]);
    }
    assert.equal(res.stdout, "ok", `${res.stderr}\ncaddy's log:\n${(await inHost(["docker", "logs", NAME])).stderr.slice(-3000)}`);
  });

  test("the published http port reaches Caddy's redirect to https", async () => {
    const r = await curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", `http://127.0.0.1:${inv.hosts[HOST]!.data.httpPort}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^30[178] https:\/\/127\.0\.0\.1\//);
  });

  test("second ensureCaddyImage: the host has this hash, nothing loaded", async () => {
    const again = await ensureCaddyImage(inv, HOST);
    process.stderr.write(`[caddy] second ensure ${again.ms} ms\n`);
    assert.equal(again.loaded, false);
    assert.equal(again.hash, first.hash);
    assert.equal(again.build.built, false);
  });
});
