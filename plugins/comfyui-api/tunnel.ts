// tunnel: this machine's ports to the host's ComfyUI (8188) and comfyui-api (3000), over the SSH
// connection flow already makes (ssh2's forwardOut, one direct-tcpip channel per local
// connection), until Ctrl-C. ComfyUI is published on the host's loopback only by default (its UI
// and Manager run any code), so this is how a user opens its UI. Local ports listen on 127.0.0.1
// only; 0 picks a free one. The remote side is where docker publishes each port (read with
// `docker port`), so a flowfile's own ports are followed.
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/index.ts";
import { dialAddress, type PublishedPort } from "../../lib/commands/docker.ts";
import type { PortForward } from "../../lib/transport/types.ts";
import { readEndpoints } from "./health.ts";

/** Resolves on the first SIGINT / SIGTERM / SIGHUP (and then stops listening for them). */
export function untilInterrupted(): Promise<string> {
  return new Promise((resolve) => {
    const sigs = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    const on = (sig: string) => {
      for (const s of sigs) process.off(s, on);
      resolve(sig);
    };
    for (const s of sigs) process.on(s, on);
  });
}

export interface TunnelPlan {
  name: string;
  localPort: number;
  remoteHost: string;
  remotePort: number;
  path: string;
}

/** What to forward: each wanted local port to where the host publishes the service. */
export function tunnelPlan(ends: { api: PublishedPort; comfy: PublishedPort }, local: { comfyui?: number; api?: number }): TunnelPlan[] {
  const out: TunnelPlan[] = [];
  if (local.comfyui !== undefined && local.comfyui >= 0) {
    out.push({ name: "ComfyUI", localPort: local.comfyui, remoteHost: dialAddress(ends.comfy), remotePort: ends.comfy.host, path: "/" });
  }
  if (local.api !== undefined && local.api >= 0) {
    out.push({ name: "comfyui-api", localPort: local.api, remoteHost: dialAddress(ends.api), remotePort: ends.api.host, path: "/docs" });
  }
  return out;
}

const localUrl = (f: PortForward, path = "/") => `http://${f.localHost}:${f.localPort}${path}`;

async function openAll(ctx: TaskContext, plan: TunnelPlan[]): Promise<PortForward[]> {
  const forward = ctx.transport.forward?.bind(ctx.transport);
  if (!forward) throw new TaskError("this host's transport cannot forward ports");
  const open: PortForward[] = [];
  try {
    for (const p of plan) {
      try {
        open.push(await forward(p.localPort, p.remoteHost, p.remotePort, { onError: (e) => ctx.warn(`${p.name}: ${e.message}`) }));
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const flag = p.name === "ComfyUI" ? "--local-comfyui" : "--local-api";
        if (err.code === "EADDRINUSE") throw new TaskError(`local port ${p.localPort} is in use (${p.name}): ${flag} 0 picks a free one`);
        if (err.code === "EACCES")
          throw new TaskError(`local port ${p.localPort} needs privileges (${p.name}): choose another with ${flag}`);
        throw e;
      }
    }
    return open;
  } catch (e) {
    await Promise.all(open.map((f) => f.close()));
    throw e;
  }
}

export function tunnelTasks(settings: { container?: string } = {}) {
  const tunnel = defineTask({
    name: "tunnel",
    description: "Forward local ports to the host's ComfyUI (8188) and comfyui-api (3000) over SSH, until Ctrl-C",
    lock: false,
    options: z.object({
      localComfyui: z.number().int().min(-1).max(65535).default(8188).describe("local port for ComfyUI (0: a free one, -1: none)"),
      localApi: z.number().int().min(-1).max(65535).default(3000).describe("local port for comfyui-api (0: a free one, -1: none)"),
    }),
    async run(ctx, o) {
      const ends = await readEndpoints(ctx, settings.container);
      const plan = tunnelPlan(ends, { comfyui: o.localComfyui, api: o.localApi });
      if (!plan.length) throw new TaskError("nothing to forward (both ports are -1)");
      if (!ends.published)
        ctx.warn(
          `docker publishes no ports for the ${settings.container ?? "comfyui"} container here: forwarding to 127.0.0.1:8188 and :3000`,
        );
      await ctx.step(`tunnel ${plan.map((p) => `${p.name} ${p.remoteHost}:${p.remotePort}`).join(", ")}`, async () => {
        if (ctx.dryRun) return { status: "skipped", note: "dry run: nothing listens" };
        const started = Date.now();
        const forwards = await openAll(ctx, plan);
        for (const [i, f] of forwards.entries()) {
          const p = plan[i]!;
          ctx.log(
            `${p.name.padEnd(12)} ${localUrl(f)}${p.path !== "/" ? `  (${localUrl(f, p.path)})` : ""}  ->  ` +
              `${ctx.host.name} ${p.remoteHost}:${p.remotePort}`,
          );
        }
        ctx.emit({ tunnel: Object.fromEntries(forwards.map((f, i) => [plan[i]!.name === "ComfyUI" ? "comfyui" : "api", localUrl(f)])) });
        ctx.log("forwarding over SSH; Ctrl-C ends it");
        const sig = await untilInterrupted();
        const connections = forwards.reduce((n, f) => n + f.connections, 0);
        await Promise.all(forwards.map((f) => f.close()));
        const secs = Math.round((Date.now() - started) / 1000);
        return { status: "ok", note: `closed on ${sig} after ${secs}s, ${connections} connection${connections === 1 ? "" : "s"} carried` };
      });
    },
  });
  return [tunnel];
}
