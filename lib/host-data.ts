// Where a host keeps its data, in this order: what the command was given, the host's own
// `data.dataRoot` (flowfile, or the root setup recorded on the host), the caller's default (a
// setup task's provider profile), the host's provider's default, the login user's home.
import type { TaskContext } from "./task.ts";

export function dataRootOf(ctx: Pick<TaskContext, "host" | "flow" | "transport">, override?: string, fallback?: string): string {
  if (override) return override;
  const own = ctx.host.data.dataRoot;
  if (typeof own === "string" && own) return own;
  if (fallback) return fallback;
  const provider = ctx.flow.providers.find((p) => p.name === ctx.host.provider);
  const fromProvider = provider?.defaults?.dataRoot;
  if (typeof fromProvider === "string") return fromProvider;
  const user = ctx.transport.user;
  return user === "root" ? "/root" : `/home/${user}`;
}
