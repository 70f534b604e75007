// Where a host keeps its data: one order for every task that needs the folder (setup and
// comfyui:up, the models tasks, status), so they all reach the same answer for the same host:
//   1. what the command was given (`--data-root`)
//   2. the host's `data.dataRoot`: the root setup recorded on the host (read at connect and merged
//      over the flowfile's data: lib/run/host-run.ts withRecord), else what the flowfile / inventory says
//   3. the default of the host's provider (its profile, reached through the flow's providers)
//   4. the login user's home
import { homedir } from "node:os";
import type { TaskContext } from "./task.ts";

export interface DataRootOptions {
  /**
   * Treat the host as this provider's box: a `setup:<provider>` task passes its own name, so a host
   * the flowfile gives no provider gets that provider's default. Without it, the host's `provider`.
   */
  provider?: string;
}

export function dataRootOf(ctx: Pick<TaskContext, "host" | "flow" | "transport">, override?: string, opts: DataRootOptions = {}): string {
  if (override) return override;
  const own = ctx.host.data.dataRoot;
  if (typeof own === "string" && own) return own;
  const fromProvider = providerDataRoot(ctx, opts.provider ?? ctx.host.provider);
  if (fromProvider) return fromProvider;
  if (ctx.host.local) return homedir();
  const user = ctx.transport.user;
  return user === "root" ? "/root" : `/home/${user}`;
}

/** The data root a registered provider's profile gives its boxes. */
export function providerDataRoot(ctx: Pick<TaskContext, "flow">, provider: string | undefined): string | undefined {
  if (!provider) return undefined;
  const root = ctx.flow.providers.find((p) => p.name === provider)?.defaults?.dataRoot;
  return typeof root === "string" && root ? root : undefined;
}
