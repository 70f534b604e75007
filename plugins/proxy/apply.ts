// api:proxy's steps on one box: the token (made here on first use), the Caddyfile (written and
// reloaded only when its hash differs), the container, and the wait for it to answer.
import { createHash } from "node:crypto";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { ensureContainerSpec } from "../../lib/steps/container.ts";
import { caddyfile } from "./caddyfile.ts";
import { configHashCommand, installConfigCommand, probeCommand, proxySpec } from "./commands.ts";
import { authOn, DEFAULTS, proxySettings, siteOf, type ApiProxyOptions, type Site } from "./settings.ts";
import { newToken, tokenFingerprint, tokenHash } from "./token.ts";
import { readToken, saveToken } from "./token-store.ts";

const root = { sudo: true } as const;

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

export function configFor(ctx: TaskContext, o: ApiProxyOptions, token: string | null): { site: Site; text: string } {
  const site = siteOf(ctx.host);
  try {
    return { site, text: caddyfile(proxySettings(o, site, token ? tokenHash(token) : null)) };
  } catch (e) {
    throw new TaskError(`host ${ctx.host.name}: ${(e as Error).message}`);
  }
}

/** The Caddyfile on the box as `text` says; a running Caddy loads it before it replaces the old one. */
export async function applyConfig(ctx: TaskContext, text: string, why = ""): Promise<void> {
  const want = createHash("sha256").update(text).digest("hex");
  await ctx.ensure({
    title: `proxy config${why}`,
    check: async () => {
      const have = (await ctx.sh(configHashCommand(), root)).trim();
      if (have === want) return { ok: true, note: `sha256 ${want.slice(0, 12)}` };
      return { ok: false, note: have === "none" ? "none yet" : `sha256 ${have.slice(0, 12)} -> ${want.slice(0, 12)}` };
    },
    apply: async () => {
      const r = await ctx.exec(installConfigCommand(), { ...root, stdin: text });
      if (r.code !== 0)
        throw new TaskError(`Caddy refused the new config, so the box keeps the old one: ${r.stderr.trim() || r.stdout.trim()}`);
      return "written (a running proxy reloaded it)";
    },
  });
}

/** Until GET /health through the proxy answers 200 (it is comfyui-api's own /health). */
export async function waitProxy(ctx: TaskContext, site: Site, timeoutSeconds: number): Promise<void> {
  await ctx.step(`proxy answers on 443 (GET https://${site.name}/health)`, async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const deadline = Date.now() + timeoutSeconds * 1000;
    let last = "";
    for (;;) {
      last = (await ctx.sh(probeCommand(site.name, "/health", 3), root)).trim();
      const [code, secs] = last.split(" ");
      if (code === "200") return { status: "ok", note: `200 in ${Number(secs).toFixed(3)}s` };
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const code = last.split(" ")[0] ?? "000";
    throw new TaskError(
      code === "000"
        ? `nothing answers on the box's 443 after ${timeoutSeconds}s: is another server using 80/443? (docker logs flow-proxy)`
        : `GET /health through the proxy answers ${code}, not 200: is comfyui-api up on ${DEFAULTS.upstream}? (flow run status)`,
    );
  });
}

/** api:proxy on one host: token, image, config, container, answer. */
export async function runProxy(
  ctx: TaskContext,
  o: ApiProxyOptions,
  image: string,
  pull: (ctx: TaskContext, image: string) => Promise<unknown>,
): Promise<void> {
  const token = await ensureToken(ctx);
  if (!token && authOn(ctx.host) && ctx.dryRun) {
    // nothing to hash yet: the config would change in any case
    await ctx.step("proxy config", async () => ({ status: "skipped", note: "dry run: would be written with the new token's hash" }));
  }
  await pull(ctx, image);
  const { site, text } = configFor(ctx, o, token);
  if (token || !authOn(ctx.host)) await applyConfig(ctx, text);
  await ensureContainerSpec(ctx, proxySpec(image, site.name), `proxy container (${image}, host network, 80/443)`);
  await waitProxy(ctx, site, o.readyTimeoutSeconds ?? DEFAULTS.readyTimeoutSeconds);
}
