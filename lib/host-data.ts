// Where a host keeps its data: the host's own `data.dataRoot`, else its provider's default,
// else the login user's home.
import type { TaskContext } from "./task.ts";

export function dataRootOf(ctx: Pick<TaskContext, "host" | "flow" | "transport">, override?: string): string {
  if (override) return override;
  const own = ctx.host.data.dataRoot;
  if (typeof own === "string" && own) return own;
  const provider = ctx.flow.providers.find((p) => p.name === ctx.host.provider);
  const fromProvider = provider?.defaults?.dataRoot;
  if (typeof fromProvider === "string") return fromProvider;
  const user = ctx.transport.user;
  return user === "root" ? "/root" : `/home/${user}`;
}
