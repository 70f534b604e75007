// provider:list: instance types with price and the regions that can launch them now, and the
// instances running, for each provider with a cloud API (only reads).
import { z } from "zod";
import { formatTable } from "../../lib/output/table.ts";
import { defineTask, TaskError } from "../../lib/task.ts";
import type { CloudInstance, CloudType } from "../shared/cloud-api.ts";
import { CLOUD_SECRETS, cloudProviders, hasSecrets, HELP, openCloud } from "./clouds.ts";
import { inventoryPath, readInventory } from "./inventory.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export const providerList = defineTask({
  name: "provider:list",
  description: `instance types with price and regions that have capacity, and running instances (${HELP.titles.join(", ")})`,
  scope: "local",
  lock: false,
  optionalSecrets: CLOUD_SECRETS,
  options: z.object({
    provider: z.string().min(1).optional().describe(HELP.names),
    type: z.string().optional().describe("only types whose name contains this"),
    available: z.boolean().default(false).describe("only types some region can launch now"),
  }),
  async run(ctx, o) {
    const all = cloudProviders(ctx.flow);
    const chosen = o.provider ? [o.provider] : all.filter((p) => hasSecrets(p, ctx.secrets)).map((p) => p.name);
    if (!chosen.length) {
      const needs = all.map((p) => `${p.cloud.secrets.join(" and ")} for ${p.cloud.title}`).join(", or ");
      throw new TaskError(`provider:list needs credentials: ${needs} (environment or .env)`);
    }
    const inv = readInventory(inventoryPath(ctx.projectDir));
    const allTypes: (CloudType & { provider: string })[] = [];
    const allInstances: (CloudInstance & { provider: string; inventory: string | null })[] = [];
    for (const name of chosen) {
      const { session } = openCloud(ctx, name, "provider:list");
      await ctx.step(`${name}: instance types`, async () => {
        const types = (await session.types())
          .filter((t) => !o.type || t.name.includes(o.type))
          .filter((t) => !o.available || t.regions.length)
          .sort((a, b) => a.usdPerHour - b.usdPerHour || a.name.localeCompare(b.name));
        allTypes.push(...types.map((t) => ({ ...t, provider: name })));
        const rows = types.map((t) => [t.name, t.usdPerHour.toFixed(2), t.regions.join(",") || "-", t.description]);
        ctx.log(formatTable(["type", "$/hour", "regions with capacity", "description"], rows));
        return { status: "ok", note: `${plural(types.length, "type")}, ${types.filter((t) => t.regions.length).length} with capacity` };
      });
      await ctx.step(`${name}: instances`, async () => {
        const rows = (await session.instances()).map((i) => ({
          ...i,
          provider: name,
          inventory: Object.entries(inv.hosts).find(([, h]) => h.data.instanceId === i.id)?.[0] ?? null,
        }));
        allInstances.push(...rows);
        if (rows.length) {
          const cells = rows.map((i) => [i.name || "-", i.id, i.status, i.ip ?? "-", i.type, i.region, i.inventory ?? "-"]);
          ctx.log(formatTable(["name", "id", "status", "ip", "type", "region", "in inventory"], cells));
        }
        return { status: "ok", note: plural(rows.length, "instance") };
      });
    }
    ctx.emit({ types: allTypes, instances: allInstances });
  },
});
