// Tier 1's front door, plugin "proxy": comfyui-api is never on the box's public address; Caddy is,
// on 443 (80 for certificate challenges), with a token every request but GET /health must carry,
// TLS (a public certificate for a domain, else Caddy's own CA), a body limit and a timeout that fits
// long jobs. The token is made here and kept here (.env); the box holds only its bcrypt hash.
//
//   flow run api:proxy --host gpu1            # setup:<provider> runs it after comfyui:up
//   flow run api:token --host gpu1 [--rotate] # print (or replace) the token for this box
//   flow run api:ca --host gpu1               # the CA certificate a client trusts (curl --cacert)
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { defineTask, definePlugin, TaskError } from "../../lib/index.ts";
import { ensureImage } from "../../lib/steps/image-pull.ts";
import { applyToken, runProxy } from "./apply.ts";
import { caRootCommand, DEFAULT_PROXY_IMAGE, readConfigCommand } from "./commands.ts";
import { authOn, siteFor, type ApiProxyOptions } from "./settings.ts";
import { hashMatches, newToken, tokenFingerprint, tokenKey } from "./token.ts";
import { readToken, saveToken } from "./token-store.ts";

export type { ApiProxyOptions } from "./settings.ts";
export { checkProxy, type ProxyCheckRow } from "./check.ts";

const root = { sudo: true } as const;

export function apiProxy(o: ApiProxyOptions = {}) {
  const image = o.image ?? DEFAULT_PROXY_IMAGE;

  const proxy = defineTask({
    name: "api:proxy",
    description: "Caddy in front of comfyui-api on 443: a token (made here, kept in .env), TLS, limits; changed only when its config does",
    options: z.object({}),
    run: (ctx) => runProxy(ctx, o, image, (c, img) => ensureImage(c, img)),
  });

  const token = defineTask({
    name: "api:token",
    description: "Print this box's API token (kept in .env); --rotate makes a new one and the box refuses the old one at once",
    options: z.object({
      rotate: z.boolean().default(false).describe("replace the token: the old one is refused as soon as the box reloads"),
    }),
    // the token goes to the terminal's stdout only (one host, no --json): it can be piped into a secret store
    passthrough: true,
    async run(ctx, opts) {
      if (!authOn(ctx.host)) throw new TaskError(`${ctx.host.name} has auth off (flowfile api: { auth: false }): it has no token`);
      let stored = readToken(ctx.projectDir, ctx.host.name);
      if (opts.rotate) {
        if (ctx.dryRun) {
          await ctx.step("new API token", async () => ({ status: "changed", note: "dry run: a new token would replace the old" }));
          return;
        }
        const next = newToken();
        // kept here first: should the box be unreachable now, api:proxy applies it on the next run
        const file = saveToken(ctx.projectDir, ctx.host.name, next);
        await ctx.step("new API token", async () => ({
          status: "changed",
          note: `${tokenFingerprint(next)} saved in ${file}${stored ? `, replacing ${tokenFingerprint(stored.token)}` : ""}`,
        }));
        stored = { token: next, key: tokenKey(ctx.host.name), from: ".env" };
        await applyToken(ctx, o, image, next);
      } else {
        if (!stored) throw new TaskError(`no API token for ${ctx.host.name} yet: flow run api:proxy --host ${ctx.host.name} makes one`);
        await ctx.step("the box accepts this token", async () => {
          const conf = await ctx.exec(readConfigCommand(), root);
          const hash = /^\s*flow\s+(\$2[aby]\$\d\d\$\S{53})\s*$/m.exec(conf.stdout)?.[1];
          if (!hash) return { status: "failed", note: "the box has no token yet: flow run api:proxy applies it" };
          return hashMatches(stored!.token, hash)
            ? { status: "ok", note: tokenFingerprint(stored!.token) }
            : { status: "failed", note: "the box holds another token: flow run api:proxy applies the one kept here" };
        });
      }
      ctx.emit({ apiToken: { host: ctx.host.name, fingerprint: tokenFingerprint(stored.token), key: stored.key } });
      // ctx.raw exists only for one host, no --json, no dry run: the one place the token is shown on purpose
      if (ctx.raw) process.stdout.write(stored.token + "\n");
    },
  });

  const ca = defineTask({
    name: "api:ca",
    description: "Write the certificate of the box's own CA (Caddy's internal CA) so clients can trust it: curl --cacert",
    lock: false,
    options: z.object({ out: z.string().optional().describe("file to write (default .flow/ca/<host>.crt)") }),
    async run(ctx, opts) {
      const site = siteFor(ctx);
      if (site.kind === "domain") {
        await ctx.step("CA certificate", async () => ({
          status: "skipped",
          note: `${site.name} has a public certificate: clients trust it as it is`,
        }));
        return;
      }
      const out = resolve(ctx.projectDir, opts.out ?? `.flow/ca/${ctx.host.name}.crt`);
      await ctx.step(`CA certificate -> ${relative(ctx.projectDir, out) || out}`, async () => {
        const pem = (await ctx.exec(caRootCommand(), root)).stdout;
        if (!pem.includes("BEGIN CERTIFICATE"))
          throw new TaskError("the box has no CA yet: flow run api:proxy starts the proxy, which makes it");
        const cert = new X509Certificate(pem);
        if (ctx.dryRun) return { status: "skipped", note: "dry run" };
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, pem);
        const shown = isAbsolute(opts.out ?? "") ? out : relative(process.cwd(), out) || out;
        ctx.emit({
          apiCa: { host: ctx.host.name, file: out, subject: cert.subject, validTo: cert.validTo, fingerprint256: cert.fingerprint256 },
        });
        return {
          status: "changed",
          note: `${cert.subject.replace(/\n/g, ", ")}, valid until ${cert.validTo}: curl --cacert ${shown} https://${site.name}/health`,
        };
      });
    },
  });

  return definePlugin({
    name: "proxy",
    description: "the served API private: Caddy on 443 with a token and TLS in front of comfyui-api",
    tasks: [proxy, token, ca],
  });
}
