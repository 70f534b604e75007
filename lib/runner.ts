// Runs one task on every selected host, in parallel up to a limit, and collects a recap.
// The pieces live in lib/run/: request.ts (what is asked), connect.ts (how a host is reached),
// host-run.ts (one host: connect, lock, body, recap), host-context.ts (what a task body sees),
// lock.ts (the per-host run lock).
import type { HostRecap } from "./events.ts";
import { LOCAL_HOST } from "./select.ts";
import { runOnHost } from "./run/host-run.ts";
import type { RunRequest } from "./run/request.ts";
import { scopeOf } from "./task.ts";

export type { RunRequest } from "./run/request.ts";
export { sshOptionsFor } from "./run/connect.ts";

export async function runTask(req: RunRequest): Promise<HostRecap[]> {
  const hosts = scopeOf(req.task, req.options) === "local" ? [LOCAL_HOST] : req.hosts;
  req.reporter.start(
    req.task.name,
    hosts.map((h) => h.name),
    req.dryRun,
  );
  const recaps: HostRecap[] = [];
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const host = hosts[next++]!;
      recaps.push(await runOnHost(req, host));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(req.concurrency, hosts.length)) }, worker));
  const order = new Map(hosts.map((h, i) => [h.name, i]));
  recaps.sort((a, b) => order.get(a.host)! - order.get(b.host)!);
  await req.reporter.finish(recaps);
  return recaps;
}
