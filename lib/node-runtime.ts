// Pushed scripts need Node >= settings.node.minVersion on the host; install flow's own when missing.
import type { TaskContext } from "./task.ts";
import { installNode, nodeDistUrl, nodeFact, parseNodeFact, versionAtLeast } from "./commands/node.ts";
import { hostPath } from "./commands/paths.ts";

/** Returns the shell word for the node binary to use; installs one when needed (also in dry-run: scripts only read). */
export async function ensureNode(ctx: TaskContext): Promise<string> {
  const { remoteDir, node } = ctx.flow.settings;
  let binary = "";
  await ctx.step("node runtime", async () => {
    const fact = parseNodeFact(await ctx.sh(nodeFact(remoteDir)));
    if (fact.own && versionAtLeast(fact.own, node.minVersion)) {
      binary = hostPath(remoteDir, "node/bin/node");
      return { status: "ok", note: `node ${fact.own} (flow's own)` };
    }
    if (fact.system && versionAtLeast(fact.system, node.minVersion)) {
      binary = "node";
      return { status: "ok", note: `node ${fact.system} (system)` };
    }
    // A host may say where to get Node (the lab serves it locally); else the flowfile's URL.
    const template = typeof ctx.host.data.nodeDistUrl === "string" ? ctx.host.data.nodeDistUrl : node.url;
    const url = nodeDistUrl(template, node.version, fact.arch);
    const had = fact.own ?? fact.system;
    if (ctx.dryRun) return { status: "changed", note: `would install node ${node.version} from ${url}` };
    const installed = (await ctx.sh(installNode(remoteDir, url))).trim();
    binary = hostPath(remoteDir, "node/bin/node");
    return { status: "changed", note: `installed node ${installed}${had ? ` (had ${had}, need >= ${node.minVersion})` : ""}` };
  });
  return binary;
}
