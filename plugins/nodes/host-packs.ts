// The packs on a host, read in one round trip: every entry under custom_nodes (also ones flow did
// not install), its git origin and commit, local changes, `.disabled`, and the registry version
// flow recorded. Shared by nodes:list, nodes:install and comfyui:snapshot.
import type { TaskContext } from "../../lib/index.ts";
import { packScanCommand, parsePackScan, type HostPack } from "./commands.ts";

export type { HostPack };

export async function readHostPacks(ctx: TaskContext, customNodesDir: string): Promise<HostPack[]> {
  return parsePackScan(await ctx.sh(packScanCommand(customNodesDir)), customNodesDir);
}
