// The comfyui container as the comfyui-api tasks see it: its published ports (read from docker,
// so they hold whatever the flowfile chose), a wait for GET /health and /ready that gives up as
// soon as comfyui-api exits, and the last lines of its log.
import { shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import {
  containerLogs,
  containerPorts,
  healthWaitCommand,
  parseDockerPort,
  parseHealthWait,
  publishedUrl,
  type HealthWait,
  type PublishedPort,
} from "../../lib/commands/docker.ts";

export const CONTAINER = "comfyui";
export const API_PORT = 3000;
export const COMFY_PORT = 8188;
const root = { sudo: true } as const;

/** Where comfyui-api (3000) and ComfyUI (8188) are published on the host; the defaults when docker says nothing. */
export function endpointsOf(ports: PublishedPort[]): { api: PublishedPort; comfy: PublishedPort; published: boolean } {
  const pick = (container: number) =>
    ports.find((p) => p.container === container && p.address === "127.0.0.1") ??
    ports.find((p) => p.container === container && !p.address.includes(":")) ??
    ports.find((p) => p.container === container);
  const api = pick(API_PORT);
  const comfy = pick(COMFY_PORT);
  return {
    api: api ?? { container: API_PORT, address: "127.0.0.1", host: API_PORT },
    comfy: comfy ?? { container: COMFY_PORT, address: "127.0.0.1", host: COMFY_PORT },
    published: !!api && !!comfy,
  };
}

export async function readEndpoints(ctx: TaskContext, name = CONTAINER) {
  return endpointsOf(parseDockerPort((await ctx.exec(containerPorts(name), root)).stdout));
}

/** GET /health and /ready both 200 within the timeout; gives up when comfyui-api exits. */
export async function waitApiHealthy(ctx: TaskContext, api: PublishedPort, timeoutSeconds: number, name = CONTAINER): Promise<HealthWait> {
  const urls = [publishedUrl(api, "/health"), publishedUrl(api, "/ready")];
  const r = await ctx.exec(healthWaitCommand(name, urls, timeoutSeconds), root);
  return parseHealthWait(r.stdout);
}

/** The version /health reports (`{"version":"1.18.0","status":"healthy"}`). */
export function healthVersion(body: string): string | undefined {
  try {
    const v = JSON.parse(body).version;
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Why the wait did not end in a 200, in one phrase. */
export function waitProblem(w: HealthWait, timeoutSeconds: number): string {
  if (w.outcome === "exited") {
    const restarted = w.restarts ? `, restarted ${w.restarts} time${w.restarts === 1 ? "" : "s"} by docker` : "";
    return `comfyui-api exited after ${w.seconds}s (the container is ${w.state}${restarted})`;
  }
  if (w.outcome === "timeout")
    return `no 200 from ${w.url || "GET /health"} within ${timeoutSeconds}s (last answer ${w.code === "000" ? "none" : w.code})`;
  return "";
}

/** The log's last lines; `since` (the host's epoch seconds) keeps only what came after it, e.g. the new build's own lines. */
export async function lastLogLines(ctx: TaskContext, lines: number, name = CONTAINER, since?: string): Promise<string> {
  const cmd =
    since && /^\d+$/.test(since)
      ? containerLogs(name, lines).replace(/^docker logs /, `docker logs --since ${since} `)
      : containerLogs(name, lines);
  const r = await ctx.exec(cmd, root);
  return r.stdout.trimEnd();
}

/** The host's clock (epoch seconds), for `docker logs --since`. */
export async function hostNow(ctx: TaskContext): Promise<string> {
  return (await ctx.exec("date +%s")).stdout.trim();
}

/** The health step every task here ends with: ok with the version served, or a TaskError with the log's last lines. */
export async function healthStep(
  ctx: TaskContext,
  api: PublishedPort,
  timeoutSeconds: number,
  lines = 50,
  name = CONTAINER,
): Promise<void> {
  await ctx.step(`comfyui-api healthy (GET :${api.host}/health and /ready)`, async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const w = await waitApiHealthy(ctx, api, timeoutSeconds, name);
    if (w.outcome === "ok")
      return { status: "ok", note: `after ${w.seconds}s, serves comfyui-api ${healthVersion(w.body) ?? "(version unknown)"}` };
    throw new TaskError(
      `${waitProblem(w, timeoutSeconds)}; last ${lines} lines of the ${name} container's log:\n${await lastLogLines(ctx, lines, name)}`,
    );
  });
}

/** The workflow endpoints comfyui-api serves (`/workflow/...` paths of GET /docs/json); null when it does not answer. */
export async function servedWorkflows(ctx: TaskContext, api: PublishedPort): Promise<string[] | null> {
  const r = await ctx.exec(`curl -sf --max-time 15 ${shQuote(publishedUrl(api, "/docs/json"))}`);
  return r.code === 0 ? workflowPaths(r.stdout) : null;
}

export function workflowPaths(openapi: string): string[] | null {
  try {
    const paths = JSON.parse(openapi)?.paths;
    if (!paths || typeof paths !== "object") return null;
    return Object.keys(paths)
      .filter((p) => p.startsWith("/workflow/"))
      .sort();
  } catch {
    return null;
  }
}
