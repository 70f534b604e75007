// The private API end to end on a lab host (lab11), through the `flow` binary as a user runs it:
// setup:lambda brings the real comfyui-api (the stand-in image) on the box's loopback and Caddy
// (built from Debian's caddy package) on 443 with a token and Caddy's internal CA. From this
// machine, through the host's published ports: with the token a request reaches comfyui-api,
// without or with a wrong one 401, GET /health open, 3000 and 8188 do not answer; api:ca's
// certificate verifies the TLS; --rotate refuses the old token at once; a second setup changes
// nothing; auth off is served open and flagged by status; the token is nowhere on the box (ps,
// docker inspect, logs, files) nor in --json output. The proxy's added latency is measured on
// the box (median of 100 keep-alive requests with and without it).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { CADDY_TAG, ensureCaddyImage } from "../lab/caddy/image.ts";
import { loadEnv } from "../../lib/secrets.ts";
import { installConfigCommand } from "../../plugins/proxy/commands.ts";
import { shQuote } from "../../lib/quote.ts";

const HOST = "lab11"; // the other lab tests use lab1..lab10
const why = await labUnavailableReason();

function ssh(inv: LabInventory, command: string, input?: string): { code: number | null; out: string; err: string } {
  const h = inv.hosts[HOST]!;
  const r = spawnSync("ssh", sshArgv(h.port, h.user, command), { input, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** curl from THIS machine; `-K -` reads options (the token's header) from stdin, so no token in argv here either. */
function curl(args: string[], header?: string): { code: string; body: string } {
  const r = spawnSync("curl", ["-s", "-K", "-", "--max-time", "10", "-w", "\n%{http_code}", ...args], {
    input: header ? `header = "${header}"\n` : "",
  });
  const out = r.stdout.toString();
  const i = out.lastIndexOf("\n");
  return { code: out.slice(i + 1), body: out.slice(0, i) };
}

function recapOf(stdout: string): { ok: number; changed: number; failed: number } {
  const m = new RegExp(`^${HOST}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, "m").exec(stdout);
  assert.ok(m, `no recap line for ${HOST} in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, failed: +m[4]! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("the private API: Caddy with a token and TLS in front of comfyui-api", { skip: why ?? false, timeout: 900_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  let https: number;
  const outputs: string[] = []; // every flow output, checked for every token at the end
  const tokens = new Set<string>(); // every token the box has had
  const run = async (args: string[], env?: Record<string, string>) => {
    const r = await flow(args, { cwd: dir, env });
    outputs.push(r.stdout, r.stderr);
    const t = loadEnv(dir, {}).FLOW_API_TOKEN_LAB11;
    if (t) tokens.add(t);
    return r;
  };
  const tokenNow = () => loadEnv(dir, {}).FLOW_API_TOKEN_LAB11!;
  const base = () => `https://127.0.0.1:${https}`;
  const ca = () => join(dir, ".flow/ca/lab11.crt");

  before(async () => {
    await ensureLab({ hosts: 11, docker: true });
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST);
    await ensureCaddyImage(inv, HOST);
    https = inv.hosts[HOST]!.data.httpsPort;
    const h = inv.hosts[HOST]!;
    dir = mkdtempSync(join(tmpdir(), "flow-proxy-"));
    mkdirSync(join(dir, "workflows"));
    // the same box once more under another name, with auth off (the flowfile's per-host switch)
    const lab = JSON.parse(readFileSync(join(REPO, ".lab/inventory.json"), "utf8"));
    writeFileSync(
      join(dir, "open.json"),
      JSON.stringify({
        knownHostsFile: join(REPO, ".lab", lab.knownHostsFile),
        hosts: {
          open11: { address: h.address, port: h.port, user: h.user, identityFile: h.identityFile, api: { auth: false } },
          fresh11: { address: h.address, port: h.port, user: h.user, identityFile: h.identityFile },
        },
      }),
    );
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { lambda } from ${JSON.stringify(join(REPO, "providers/index.ts"))};
import { apiProxy, comfyui, comfyuiApi } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}, "open.json"],
  providers: [lambda()],
  plugins: [
    ops(),
    comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 90 }),
    comfyuiApi(),
    apiProxy({
      image: ${JSON.stringify(CADDY_TAG)},
      gateImage: ${JSON.stringify(STANDIN_TAG)},
      maxBodyMb: Number(process.env.FLOW_TEST_BODY ?? 100),
      rateLimit: { perMinute: Number(process.env.FLOW_TEST_RATE ?? 60000), burst: Number(process.env.FLOW_TEST_BURST ?? 1000) },
    }),
  ],
});`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("setup: the images are steps of their own, the token is made here, Caddy answers on 443", async () => {
    const r = await run(["run", "setup:lambda", "--hosts", HOST]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`image ${STANDIN_TAG.replace(/[.:]/g, "\\$&")}: ok \\(present\\)`));
    assert.match(r.stdout, /image flow-caddy:lab: ok \(present\)/);
    assert.match(r.stdout, /API token kept on this machine: changed \(made sha256:[0-9a-f]{12}, saved in/);
    assert.match(r.stdout, /proxy container .*: changed/);
    assert.match(r.stdout, /proxy answers on 443 .*: ok \(200/);
    assert.match(tokenNow(), /^[A-Za-z0-9+/]+=*$/);
    // comfyui-api and ComfyUI on the box's loopback only
    assert.match(ssh(inv, "sudo -n docker port comfyui").out, /^3000\/tcp -> 127\.0\.0\.1:3000$/m);
    assert.doesNotMatch(ssh(inv, "sudo -n docker port comfyui").out, /0\.0\.0\.0|\[::\]/);
  });

  test("api:ca writes the box's CA: TLS verifies with curl --cacert", async () => {
    const r = await run(["run", "api:ca", "--hosts", HOST]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Caddy Local Authority/);
    assert.match(readFileSync(ca(), "utf8"), /BEGIN CERTIFICATE/);
    assert.equal(curl(["--cacert", ca(), `${base()}/health`]).code, "200");
    // without the CA the certificate is not trusted
    assert.equal(curl([`${base()}/health`]).code, "000");
  });

  test("the token opens the real comfyui-api; none or a wrong one gets 401; GET /health is open", () => {
    const t = tokenNow();
    const ready = curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${t}`);
    assert.equal(ready.code, "200");
    assert.match(ready.body, /"status":"ready"/);
    const docs = curl(["--cacert", ca(), `${base()}/docs/json`], `Authorization: Bearer ${t}`);
    assert.equal(docs.code, "200");
    assert.match(docs.body, /"openapi"/);
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`]).code, "401");
    assert.equal(curl(["--cacert", ca(), `${base()}/docs/json`], "Authorization: Bearer Zmxvdzp3cm9uZw==").code, "401");
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${t.slice(0, -4)}AAA=`).code, "401");
    assert.equal(curl(["--cacert", ca(), `${base()}/health`]).code, "200");
    // POST /health is not the open health check
    assert.equal(curl(["--cacert", ca(), "-X", "POST", `${base()}/health`]).code, "401");
  });

  test("a body over the limit (100 MiB, comfyui-api's own default) is refused by the proxy with 413", () => {
    const big = join(dir, "big.bin");
    writeFileSync(big, Buffer.alloc(101 * 1024 * 1024, 0x20));
    const r = spawnSync(
      "curl",
      [
        "-sv",
        "-K",
        "-",
        "--max-time",
        "20",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        ca(),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        `@${big}`,
        `${base()}/prompt`,
      ],
      {
        input: `header = "Authorization: Bearer ${tokenNow()}"\n`,
      },
    );
    rmSync(big);
    assert.equal(
      r.stdout.toString(),
      "413",
      r.stderr
        .toString()
        .split("\n")
        .filter((l) => !/^[><] [A-Za-z-]+: /.test(l) || /HTTP/.test(l))
        .slice(-40)
        .join("\n"),
    );
  });

  test("3000 and 8188 do not answer on the host's published address (they do on its loopback)", () => {
    const h = inv.hosts[HOST]!;
    assert.equal(ssh(inv, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/health").out, "200");
    assert.equal(ssh(inv, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8188/").out, "200");
    assert.equal(curl([`http://127.0.0.1:${h.data.apiPort}/health`]).code, "000");
    assert.equal(curl([`http://127.0.0.1:${h.data.comfyPort}/`]).code, "000");
  });

  test("api:verify goes through the proxy with the token, checks the 401s and the closed ports", async () => {
    const r = await run(["run", "api:verify", "--hosts", HOST]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /proxy: https:\/\/127\.0\.0\.1 \(the box's CA\), token required: ok \(\/health 200; \/ready 401 without or with a wrong token, 200/,
    );
    assert.match(r.stdout, /ports 3000, 8188 closed on the box's public addresses: ok \(closed on /);
    assert.match(r.stdout, /proxy GET \/ready \(wrong token\)\s+401/);
  });

  test("a second setup changes nothing", async () => {
    const r = await run(["run", "setup:lambda", "--hosts", HOST]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(recapOf(r.stdout).changed, 0, r.stdout);
    assert.match(r.stdout, /proxy config: ok \(sha256 /);
  });

  test("status shows the proxy up, auth on, the box's own CA and the certificate's hours left", async () => {
    const r = await run(["run", "status", "--hosts", HOST]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /up auth own-CA \d+h/);
    const j = await run(["run", "status", "--hosts", HOST, "--json"]);
    const facts = j.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .map((e) => e.data?.status?.proxy ?? e.status?.proxy)
      .find(Boolean);
    assert.ok(facts, j.stdout);
    assert.equal(facts.facts.auth, "on");
    assert.equal(facts.facts.tls.kind, "internal");
    assert.ok(Date.parse(facts.facts.tls.expires) > Date.now());
  });

  test("api:token prints the token kept here and checks the box holds it; --rotate refuses the old one at once", async () => {
    const old = tokenNow();
    const shown = await run(["run", "api:token", "--host", HOST]);
    assert.equal(shown.code, 0, shown.stdout + shown.stderr);
    assert.equal(shown.stdout.trim(), old);
    const rot = await run(["run", "api:token", "--host", HOST, "--rotate"]);
    assert.equal(rot.code, 0, rot.stdout + rot.stderr);
    const fresh = rot.stdout.trim();
    assert.notEqual(fresh, old);
    assert.equal(fresh, tokenNow());
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${old}`).code, "401");
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${fresh}`).code, "200");
    // --json tells which token (its fingerprint), never the token
    const j = await run(["run", "api:token", "--host", HOST, "--json"]);
    assert.equal(j.code, 0, j.stdout);
    assert.match(j.stdout, /"fingerprint":"sha256:[0-9a-f]{12}"/);
  });

  test("the per-token rate: past the burst 429 with Retry-After at once; the gate never sees the token", async () => {
    const slow = await run(["run", "api:proxy", "--hosts", HOST], { FLOW_TEST_RATE: "60", FLOW_TEST_BURST: "5" });
    assert.equal(slow.code, 0, slow.stdout + slow.stderr);
    assert.match(slow.stdout, /rate gate container \(60\/min, burst 5, on 127\.0\.0\.1:3090\): changed/);
    // the rate is the gate's alone: Caddy's config stays as it was
    assert.match(slow.stdout, /proxy config: ok/);
    const codes: string[] = [];
    let limited = "";
    for (let i = 0; i < 8; i++) {
      const r = spawnSync("curl", ["-s", "-K", "-", "-D", "-", "-o", "/dev/null", "--cacert", ca(), `${base()}/ready`], {
        input: `header = "Authorization: Bearer ${tokenNow()}"\n`,
      });
      const head = r.stdout.toString();
      codes.push(/^HTTP\/\S+ (\d{3})/m.exec(head)?.[1] ?? "000");
      if (codes.at(-1) === "429") limited = head;
    }
    assert.deepEqual(codes.slice(0, 5), ["200", "200", "200", "200", "200"], codes.join(" "));
    assert.ok(
      codes.slice(5).every((c) => c === "429"),
      codes.join(" "),
    );
    assert.match(limited, /^retry-after: \d+\r?$/im);
    // a stranger is refused by the token check before the gate counts anything
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`]).code, "401");
    const back = await run(["run", "api:proxy", "--hosts", HOST]);
    assert.equal(back.code, 0, back.stdout);
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${tokenNow()}`).code, "200");
  });

  test("auth off for a host: served without a token, and status flags it", async () => {
    const r = await run(["run", "api:proxy", "--hosts", "open11"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /API token: skipped \(auth is OFF/);
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`]).code, "200");
    const s = await run(["run", "status", "--hosts", "open11"]);
    assert.match(s.stdout, /up auth OFF/);
    assert.match(s.stdout, /open11: !! proxy: auth is OFF/);
    assert.match(r.stdout, /rate gate: changed \(removed: auth is off/);
    // and back: the token is asked for again at once, and counted by the gate again
    const back = await run(["run", "api:proxy", "--hosts", HOST]);
    assert.equal(back.code, 0, back.stdout);
    assert.equal(recapOf(back.stdout).changed, 2, back.stdout);
    assert.match(back.stdout, /rate gate container .*: changed/);
    assert.match(back.stdout, /proxy config: changed/);
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`]).code, "401");
  });

  test("the proxy's added latency on the box: median of 100 keep-alive requests with and without it", (t) => {
    const n = 100;
    const times = (urls: string, opts: string, input?: string) => {
      const r = ssh(inv, `sudo -n curl -s -w '%{time_total}\\n' ${opts} ${urls}`, input);
      const xs = r.out.trim().split("\n").map(Number);
      assert.equal(xs.length, n, r.out + r.err);
      return xs;
    };
    // one curl, one connection kept alive, each answer to /dev/null
    const direct = Array(n).fill("http://127.0.0.1:3000/ready -o /dev/null").join(" ");
    const proxied = Array(n).fill("https://127.0.0.1/ready -o /dev/null").join(" ");
    const caOnBox = "/var/lib/flow-proxy/data/caddy/pki/authorities/local/root.crt";
    // the token's header through stdin (-K -), never in the box's argv
    const header = `header = "Authorization: Bearer ${tokenNow()}"\n`;
    times(direct, "");
    times(proxied, `--cacert ${caOnBox} -K -`, header);
    const a = median(times(direct, ""));
    const b = median(times(proxied, `--cacert ${caOnBox} -K -`, header));
    t.diagnostic(
      `GET /ready on ${HOST}: direct median ${(a * 1000).toFixed(2)} ms, ` +
        `through the proxy ${(b * 1000).toFixed(2)} ms, added ${((b - a) * 1000).toFixed(2)} ms`,
    );
    assert.ok(b < 1, "a request through the proxy takes under a second");
  });

  test("a config change is reloaded without dropping a request in flight", async () => {
    // 300 keep-alive requests with the token from this machine while api:proxy changes the body limit
    const header = `header = "Authorization: Bearer ${tokenNow()}"\n`;
    const urls = Array(300)
      .fill([`${base()}/ready`, "-o", "/dev/null"])
      .flat();
    const child = spawn("curl", ["-s", "-K", "-", "--cacert", ca(), "-w", "%{http_code}\n", ...urls], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    child.stdin.end(header);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    const done = new Promise((r) => child.on("close", r));
    const r = await run(["run", "api:proxy", "--hosts", HOST], { FLOW_TEST_BODY: "99" });
    await done;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /proxy config: changed \(written \(a running proxy reloaded it\)\)/);
    const codes = out.trim().split("\n");
    assert.equal(codes.length, 300);
    assert.deepEqual([...new Set(codes)], ["200"], `not every request answered 200: ${codes.join(" ")}`);
    const back = await run(["run", "api:proxy", "--hosts", HOST]);
    assert.equal(recapOf(back.stdout).changed, 1, back.stdout);
  });

  test("a config Caddy refuses leaves the box as it was; --dry-run for a new name writes nothing", async () => {
    const before = ssh(inv, "sudo -n sha256sum /etc/flow-proxy/Caddyfile").out;
    // the command api:proxy writes a config with, given one Caddy cannot parse
    const bad = ssh(inv, `sudo -n sh -c ${shQuote(installConfigCommand(CADDY_TAG))}`, "{\n\tthis is not caddy\n}\n");
    assert.equal(bad.code, 1, bad.out + bad.err);
    assert.match(bad.err, /not caddy|unrecognized|Error/i);
    assert.equal(ssh(inv, "sudo -n sha256sum /etc/flow-proxy/Caddyfile").out, before);
    assert.equal(ssh(inv, "sudo -n ls -A /etc/flow-proxy").out.includes(".next"), false, "nothing half-written left");
    assert.equal(curl(["--cacert", ca(), `${base()}/ready`], `Authorization: Bearer ${tokenNow()}`).code, "200");
    const dry = await run(["run", "api:proxy", "--hosts", "fresh11", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /API token kept on this machine: would change \(none yet\)/);
    assert.equal(loadEnv(dir, {}).FLOW_API_TOKEN_FRESH11, undefined);
    assert.equal(ssh(inv, "sudo -n sha256sum /etc/flow-proxy/Caddyfile").out, before);
  });

  test("the token is nowhere on the box (ps, docker inspect, logs, files) nor in any output", async () => {
    // --json output of the tasks that handle the token
    for (const args of [["api:proxy"], ["api:verify"], ["api:token"], ["status"]]) {
      const r = await run(["run", ...args, "--hosts", HOST, "--json"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    assert.ok(tokens.size >= 2, "the first token and the rotated one");
    const onBox = ssh(
      inv,
      "ps -eo args; sudo -n docker inspect flow-proxy flow-proxy-gate comfyui; sudo -n docker logs flow-proxy 2>&1; " +
        "sudo -n docker logs flow-proxy-gate 2>&1; sudo -n docker logs comfyui 2>&1; " +
        "sudo -n grep -rIh . /etc/flow-proxy /var/lib/flow-proxy 2>/dev/null; cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '",
    ).out;
    assert.ok(onBox.length > 1000, "the box said something");
    for (const t of tokens) {
      const secret = Buffer.from(t, "base64").toString().slice(5);
      for (const v of [t, secret]) {
        assert.ok(!onBox.includes(v), "a token is on the box");
        for (const o of outputs) {
          // api:token's own stdout is the one place a token is shown on purpose
          if (o.trim() === t) continue;
          assert.ok(!o.includes(v), `a token in flow's output:\n${o.slice(0, 400)}`);
        }
      }
    }
    // the Caddyfile holds the bcrypt hash, root's only
    assert.match(ssh(inv, "sudo -n stat -c '%a %U' /etc/flow-proxy/Caddyfile /etc/flow-proxy").out, /^600 root\n700 root\n$/);
  });
});
