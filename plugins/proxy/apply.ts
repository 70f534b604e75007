// api:proxy's steps on one box: the token (made here on first use), the rate gate, the Caddyfile
// (written and reloaded only when its hash differs), the container, and the wait for it to answer.
import { createHash } from "node:crypto";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { bundleScript } from "../../lib/remote-script.ts";
import { ensureContainerSpec } from "../../lib/steps/container.ts";
import { readEndpoints } from "../comfyui-api/health.ts";
import { caddyfile } from "./caddyfile.ts";
import {
  configHashCommand,
  DEFAULT_GATE_IMAGE,
  fileHashCommand,
  GATE_CONTAINER,
  GATE_SCRIPT,
  gateSpec,
  installConfigCommand,
  installConfigDirCommand,
  probeCommand,
  proxySpec,
  removeContainerCommand,
} from "./commands.ts";
import { authOn, DEFAULTS, proxySettings, rateOf, siteFor, type ApiProxyOptions, type Site } from "./settings.ts";
import { newToken, tokenFingerprint, tokenHash } from "./token.ts";
import { readToken, saveToken } from "./token-store.ts";

const root = { sudo: true } as const;

export type Pull = (ctx: TaskContext, image: string) => Promise<unknown>;

/**
 * The host's token: the stored one, or a new one saved to .env (not in a dry run). null when the
 * flowfile turns auth off for this host.
 */
export async function ensureToken(ctx: TaskContext): Promise<string | null> {
  if (!authOn(ctx.host)) {
    await ctx.step("API token", async () => ({ status: "skipped", note: "auth is OFF for this host (flowfile api: { auth: false })" }));
    return null;
  }
  let token = readToken(ctx.projectDir, ctx.host.name)?.token ?? null;
  await ctx.ensure({
    title: "API token kept on this machine",
    check: async () => (token ? { ok: true, note: tokenFingerprint(token) } : { ok: false, note: "none yet" }),
    apply: async () => {
      token = newToken();
      const file = saveToken(ctx.projectDir, ctx.host.name, token);
      return `made ${tokenFingerprint(token)}, saved in ${file} (flow run api:token --host ${ctx.host.name} shows it)`;
    },
  });
  return token;
}

/** Where comfyui-api is published on the box's loopback (comfyui({ apiPort }) may move it), unless the options say. */
async function upstreamOf(ctx: TaskContext, o: ApiProxyOptions): Promise<string> {
  if (o.upstream) return o.upstream;
  const { api } = await readEndpoints(ctx);
  return `${api.address === "0.0.0.0" || api.address === "::" ? "127.0.0.1" : api.address}:${api.host}`;
}

export async function configFor(ctx: TaskContext, o: ApiProxyOptions, token: string | null): Promise<{ site: Site; text: string }> {
  const site = siteFor(ctx);
  const upstream = await upstreamOf(ctx, o);
  try {
    return { site, text: caddyfile(proxySettings({ ...o, upstream }, site, token ? tokenHash(token) : null)) };
  } catch (e) {
    throw new TaskError(`host ${ctx.host.name}: ${(e as Error).message}`);
  }
}

/**
 * The Caddyfile on the box as `text` says: checked by Caddy (a running one loads it) before it
 * replaces the old one, so a refused config leaves the box as it was.
 */
export async function applyConfig(ctx: TaskContext, text: string, image: string, why = ""): Promise<void> {
  const want = createHash("sha256").update(text).digest("hex");
  await ctx.ensure({
    title: `proxy config${why}`,
    check: async () => {
      const have = (await ctx.sh(configHashCommand(), root)).trim();
      if (have === want) return { ok: true, note: `sha256 ${want.slice(0, 12)}` };
      return { ok: false, note: have === "none" ? "none yet" : `sha256 ${have.slice(0, 12)} -> ${want.slice(0, 12)}` };
    },
    apply: async () => {
      const r = await ctx.exec(installConfigCommand(image), { ...root, stdin: text });
      if (r.code !== 0)
        throw new TaskError(`Caddy refused the new config, so the box keeps the old one: ${r.stderr.trim() || r.stdout.trim()}`);
      return "written (a running proxy reloaded it)";
    },
  });
}

/**
 * The per-token rate: the gate's script and container, up before a config that sends requests to
 * it; without a rate (or without auth) no gate runs.
 */
export async function ensureGate(ctx: TaskContext, o: ApiProxyOptions, pull: Pull): Promise<boolean> {
  const rate = rateOf(o);
  if (!rate || !authOn(ctx.host)) {
    await ctx.step("rate gate", async () => {
      const why = rate ? "auth is off: no token to count by" : "no rate limit (apiProxy({ rateLimit: false }))";
      if (ctx.dryRun) return { status: "skipped", note: why };
      const gone = (await ctx.sh(removeContainerCommand(GATE_CONTAINER), root)).trim();
      return gone ? { status: "changed", note: `removed: ${why}` } : { status: "skipped", note: why };
    });
    return false;
  }
  const script = await bundleScript("rate-gate");
  const sha = createHash("sha256").update(script).digest("hex");
  // the file first: a container started before it would get a folder docker made at the mount point
  await ctx.ensure({
    title: `rate gate script ${GATE_SCRIPT}`,
    check: async () =>
      (await ctx.sh(fileHashCommand(GATE_SCRIPT), root)).trim() === sha || { ok: false, note: "missing or another version" },
    apply: async () => {
      await ctx.sh(installConfigDirCommand(), root);
      await ctx.transport.upload(script, GATE_SCRIPT, { mode: 0o644, sudo: true });
      return `sha256 ${sha.slice(0, 12)}`;
    },
  });
  const image = o.gateImage ?? DEFAULT_GATE_IMAGE;
  await pull(ctx, image);
  await ensureContainerSpec(
    ctx,
    gateSpec(image, DEFAULTS.gate, rate, sha),
    `rate gate container (${rate.perMinute}/min, burst ${rate.burst}, on ${DEFAULTS.gate})`,
  );
  return true;
}

/** Until GET /health through the proxy answers 200 (it is comfyui-api's own /health), and the gate answers. */
export async function waitProxy(ctx: TaskContext, site: Site, timeoutSeconds: number, gate: boolean): Promise<void> {
  await ctx.step(`proxy answers on 443 (GET https://${site.name}/health)`, async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const deadline = Date.now() + timeoutSeconds * 1000;
    const probe = async (cmd: string) => (await ctx.sh(cmd, root)).trim();
    const gateCheck = `curl -s -o /dev/null -w '%{http_code}\\n' --max-time 3 http://${DEFAULTS.gate}/check || true`;
    let last = "";
    let gateLast = "";
    for (;;) {
      last = await probe(probeCommand(site.name, "/health", 3));
      gateLast = gate ? await probe(gateCheck) : "200";
      if (last.startsWith("200 ") && gateLast === "200") {
        const secs = Number(last.split(" ")[1]);
        return { status: "ok", note: `200 in ${secs.toFixed(3)}s${gate ? "; the rate gate answers" : ""}` };
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const code = last.split(" ")[0] ?? "000";
    if (code === "200")
      throw new TaskError(`the rate gate on ${DEFAULTS.gate} does not answer (${gateLast}): docker logs ${GATE_CONTAINER}`);
    throw new TaskError(
      code === "000"
        ? `nothing answers on the box's 443 after ${timeoutSeconds}s: is another server using 80/443? ` +
            `(docker logs flow-proxy; a domain's certificate also needs its name to point at this box)`
        : `GET /health through the proxy answers ${code}, not 200: is comfyui-api up? (flow run status)`,
    );
  });
}

/** api:proxy on one host: token, images, the rate gate, config, container, answer. */
export async function runProxy(ctx: TaskContext, o: ApiProxyOptions, image: string, pull: Pull): Promise<void> {
  const token = await ensureToken(ctx);
  await pull(ctx, image);
  const gate = await ensureGate(ctx, o, pull);
  const { site, text } = await configFor(ctx, o, token);
  if (token || !authOn(ctx.host)) await applyConfig(ctx, text, image);
  // a dry run on a fresh host has no token yet: the config would be written with its hash
  else await ctx.step("proxy config", async () => ({ status: "skipped", note: "dry run: would be written with the new token's hash" }));
  await ensureContainerSpec(ctx, proxySpec(image, site.name), `proxy container (${image}, host network, 80/443)`);
  await waitProxy(ctx, site, o.readyTimeoutSeconds ?? DEFAULTS.readyTimeoutSeconds, gate);
}

/** api:token --rotate's box side: the config with the new token's hash. */
export async function applyToken(ctx: TaskContext, o: ApiProxyOptions, image: string, token: string): Promise<void> {
  const { text } = await configFor(ctx, o, token);
  try {
    await applyConfig(ctx, text, image, ": the old token refused from now on");
  } catch (e) {
    throw new TaskError(
      `${(e as Error).message}\nThe new token is already in .env and the box still takes the old one: ` +
        `flow run api:proxy --host ${ctx.host.name} applies the new one once the box is reachable`,
    );
  }
}
