// The proof that a box's API is private: from this machine, through an SSH forward to the box's
// 443, TLS checked against the box's own CA (or the system's, for a domain), GET /health is open
// and GET /ready answers 401 without the token, 401 with a wrong one, 200 with it; and on the box,
// comfyui-api's and ComfyUI's ports do not answer on any of its non-loopback addresses.
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { Agent, request } from "undici";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { caRootCommand, exposureCommand, parseExposure } from "./commands.ts";
import { authOn, siteFor, type Site } from "./settings.ts";
import { newToken } from "./token.ts";
import { readToken } from "./token-store.ts";

const root = { sudo: true } as const;

export interface ProxyCheckRow {
  endpoint: string;
  status: string;
  seconds?: number;
  ok: boolean;
  note?: string;
}

interface Answer {
  status: number;
  seconds: number;
}

/** A client of the box's proxy as a user's backend would be, carried over the SSH connection. */
export async function proxyClient(ctx: TaskContext, site: Site) {
  if (!ctx.transport.forward) throw new TaskError("this transport cannot forward a port: the proxy cannot be checked from here");
  const ca = site.kind === "address" ? await ctx.sh(caRootCommand(), root) : undefined;
  const fwd = await ctx.transport.forward(0, "127.0.0.1", 443);
  const agent = new Agent({
    connect: {
      ca,
      // SNI is a name, never an address (what curl and browsers do); the certificate must be the site's
      ...(site.kind === "domain" ? { servername: site.name } : {}),
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(site.name, cert),
    },
  });
  const hostHeader = site.name.includes(":") ? `[${site.name}]` : site.name;
  return {
    async get(path: string, token?: string): Promise<Answer> {
      const t0 = performance.now();
      const r = await request(`https://127.0.0.1:${fwd.localPort}${path}`, {
        dispatcher: agent,
        headers: { host: hostHeader, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        headersTimeout: 20_000,
        bodyTimeout: 20_000,
      });
      await r.body.dump();
      return { status: r.statusCode, seconds: (performance.now() - t0) / 1000 };
    },
    async close() {
      await agent.close();
      await fwd.close();
    },
  };
}

/** The checks, as steps and rows; api:verify calls this first when the proxy plugin is in the flow. */
export async function checkProxy(ctx: TaskContext, ports: number[], rows: ProxyCheckRow[]): Promise<void> {
  const site = siteFor(ctx);
  const auth = authOn(ctx.host);
  await ctx.step(
    `proxy: https://${site.name} (${site.kind === "domain" ? "public certificate" : "the box's CA"})${auth ? ", token required" : ""}`,
    async () => {
      const stored = auth ? readToken(ctx.projectDir, ctx.host.name) : null;
      if (auth && !stored)
        throw new TaskError(`no API token for ${ctx.host.name} on this machine: flow run api:proxy --host ${ctx.host.name} makes one`);
      let client: Awaited<ReturnType<typeof proxyClient>>;
      try {
        client = await proxyClient(ctx, site);
      } catch (e) {
        throw new TaskError(`the proxy cannot be reached: ${(e as Error).message}`);
      }
      const problems: string[] = [];
      const expect = async (label: string, path: string, want: number, token?: string) => {
        let a: Answer | undefined;
        let err = "";
        try {
          a = await client.get(path, token);
        } catch (e) {
          err = (e as Error).message;
        }
        const ok = a?.status === want;
        rows.push({
          endpoint: `proxy ${label}`,
          status: a ? String(a.status) : "no answer",
          seconds: a?.seconds,
          ok,
          note: ok ? undefined : `expected ${want}${err ? `: ${err}` : ""}`,
        });
        if (!ok) problems.push(`${label}: ${a ? a.status : err} (expected ${want})`);
      };
      try {
        await expect("GET /health (no token)", "/health", 200);
        if (auth) {
          await expect("GET /ready (no token)", "/ready", 401);
          await expect("GET /ready (wrong token)", "/ready", 401, newToken());
          await expect("GET /ready (token)", "/ready", 200, stored!.token);
        } else {
          await expect("GET /ready (no token: auth is OFF)", "/ready", 200);
        }
      } finally {
        await client.close();
      }
      if (problems.length) return { status: "failed", note: problems.join("; ") };
      if (!auth) {
        ctx.warn(
          `auth is OFF on ${ctx.host.name} (flowfile api: { auth: false }): anyone who reaches ${site.name}:443 can run jobs on this GPU`,
        );
        return { status: "ok", note: "open to anyone: auth is OFF" };
      }
      return { status: "ok", note: "/health 200; /ready 401 without or with a wrong token, 200 with it" };
    },
  );

  await ctx.step(`ports ${ports.join(", ")} closed on the box's public addresses`, async () => {
    const seen = parseExposure(await ctx.sh(exposureCommand(ports)));
    const open = seen.filter((s) => s.open);
    for (const s of seen)
      rows.push({
        endpoint: `${s.address}:${s.port}`,
        status: s.open ? "open" : "closed",
        ok: !s.open,
        note: s.open ? "answers from outside the box: the proxy can be bypassed" : undefined,
      });
    if (!seen.length) return { status: "skipped", note: "the box lists no address besides loopback" };
    if (open.length)
      return {
        status: "failed",
        note:
          `${open.map((s) => `${s.address}:${s.port}`).join(", ")} answer${open.length === 1 ? "s" : ""}: ` +
          "publish them on 127.0.0.1 (comfyui({ expose }) keeps them there by default)",
      };
    return { status: "ok", note: `closed on ${[...new Set(seen.map((s) => s.address))].join(", ")}` };
  });
}
