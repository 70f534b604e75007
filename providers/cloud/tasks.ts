// provider:list / provider:up / provider:down: rent and return boxes on Lambda Cloud and
// DataCrunch, and keep the inventory file of launched boxes that the flowfile reads. A box joins
// the inventory only once its SSH port answers with an SSH banner, so every host in it is usable.
import { connect } from "node:net";
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/task.ts";
import { DataCrunchApi } from "./datacrunch-api.ts";
import { LambdaApi } from "./lambda-api.ts";
import type { RetryInfo } from "./http.ts";
import { addHost, DEFAULT_INVENTORY, findHost, hostEntry, inventoryPath, readInventory, removeHosts, type CloudProvider, type LaunchedHost } from "./inventory.ts";

const PROVIDERS = ["lambda", "datacrunch"] as const;
const NEEDS: Record<CloudProvider, string[]> = { lambda: ["LAMBDA_API_KEY"], datacrunch: ["DATACRUNCH_CLIENT_ID", "DATACRUNCH_CLIENT_SECRET"] };
const ALL_SECRETS = [...NEEDS.lambda, ...NEEDS.datacrunch];
// DataCrunch's own SDK examples use this image; a flag picks another.
const DATACRUNCH_IMAGE = "ubuntu-24.04-cuda-12.8-open-docker";
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface CloudType {
  name: string;
  description: string;
  usdPerHour: number;
  /** regions (Lambda) or location codes (DataCrunch) that can launch it now */
  regions: string[];
}

export interface CloudInstance {
  id: string;
  name: string;
  status: string;
  ip: string | null;
  type: string;
  region: string;
}

/** The provider differences the tasks need, behind one small interface. */
interface Cloud {
  provider: CloudProvider;
  types(): Promise<CloudType[]>;
  instances(): Promise<CloudInstance[]>;
  instance(id: string): Promise<CloudInstance | null>;
  launch(req: { name: string; type: string; region: string; sshKey?: string; image?: string }): Promise<string>;
  terminate(id: string): Promise<void>;
  /** running with an address: time to knock on SSH */
  ready(i: CloudInstance): boolean;
  /** will never become ready (provider:up stops waiting) */
  gone(i: CloudInstance): boolean;
  /** needs no termination: deleted or on its way out (provider:down); an offline or errored box still bills */
  deleted(i: CloudInstance): boolean;
}

function cloudFor(ctx: TaskContext, provider: CloudProvider, task: string): Cloud {
  const missing = NEEDS[provider].filter((k) => !ctx.secrets[k]);
  if (missing.length) {
    throw new TaskError(`${task} --provider ${provider} needs ${missing.join(" and ")}: set ${missing.length > 1 ? "them" : "it"} in the environment or in .env`);
  }
  const onRetry = (r: RetryInfo) =>
    ctx.log(`${r.endpoint}: HTTP ${r.status}, retrying in ${(r.delayMs / 1000).toFixed(1)}s (try ${r.attempt + 1} of ${r.tries})`);
  return provider === "lambda" ? lambdaCloud(new LambdaApi({ apiKey: ctx.secrets.LAMBDA_API_KEY!, onRetry })) : datacrunchCloud(new DataCrunchApi({ clientId: ctx.secrets.DATACRUNCH_CLIENT_ID!, clientSecret: ctx.secrets.DATACRUNCH_CLIENT_SECRET!, onRetry }));
}

function lambdaCloud(api: LambdaApi): Cloud {
  const shape = (i: Awaited<ReturnType<LambdaApi["instances"]>>[number]): CloudInstance => ({
    id: i.id, name: i.name ?? "", status: i.status, ip: i.ip ?? null, type: i.instance_type?.name ?? "?", region: i.region?.name ?? "?",
  });
  return {
    provider: "lambda",
    async types() {
      return (await api.instanceTypes()).map((t) => ({ name: t.name, description: t.description, usdPerHour: t.price_cents_per_hour / 100, regions: t.regions.map((r) => r.name) }));
    },
    async instances() {
      return (await api.instances()).map(shape);
    },
    async instance(id) {
      const i = await api.instance(id);
      return i && shape(i);
    },
    async launch(req) {
      let key = req.sshKey;
      if (!key) {
        // Lambda takes exactly one key; with one registered there is nothing to ask.
        const keys = await api.sshKeys();
        if (keys.length !== 1) throw new TaskError(`Lambda needs --ssh-key NAME${keys.length ? ` (your keys: ${keys.map((k) => k.name).join(", ")})` : " (add a key in the Lambda dashboard first)"}`);
        key = keys[0]!.name;
      }
      return api.launch({ region: req.region, type: req.type, sshKeyName: key, name: req.name, image: req.image });
    },
    async terminate(id) {
      await api.terminate([id]);
    },
    ready: (i) => i.status === "active" && !!i.ip,
    gone: (i) => i.status === "terminated" || i.status === "terminating",
    deleted: (i) => i.status === "terminated" || i.status === "terminating",
  };
}

function datacrunchCloud(api: DataCrunchApi): Cloud {
  const shape = (i: Awaited<ReturnType<DataCrunchApi["instances"]>>[number]): CloudInstance => ({
    id: i.id, name: i.hostname ?? "", status: i.status, ip: i.ip ?? null, type: i.instance_type, region: i.location ?? "?",
  });
  return {
    provider: "datacrunch",
    async types() {
      const [types, avail] = await Promise.all([api.instanceTypes(), api.availability()]);
      return types.map((t) => ({
        name: t.instance_type, description: t.description, usdPerHour: t.price_per_hour,
        regions: avail.filter((l) => l.availabilities.includes(t.instance_type)).map((l) => l.location_code),
      }));
    },
    async instances() {
      return (await api.instances()).map(shape);
    },
    async instance(id) {
      const i = await api.instance(id);
      return i && shape(i);
    },
    async launch(req) {
      // --ssh-key takes a key's name or id; without it every registered key may log in, as the SDK examples do.
      const keys = await api.sshKeys();
      const chosen = req.sshKey ? keys.filter((k) => k.id === req.sshKey || k.name === req.sshKey) : keys;
      if (req.sshKey && !chosen.length) throw new TaskError(`DataCrunch has no SSH key ${req.sshKey} (your keys: ${keys.map((k) => k.name).join(", ") || "none"})`);
      if (!chosen.length) throw new TaskError("DataCrunch has no SSH key registered: add one in the dashboard, or you could not log in to the box");
      return api.launch({
        type: req.type, image: req.image ?? DATACRUNCH_IMAGE, sshKeyIds: chosen.map((k) => k.id), location: req.region,
        hostname: req.name, description: `flow: ${req.name}`,
      });
    },
    async terminate(id) {
      await api.action(id, "delete");
    },
    ready: (i) => i.status === "running" && !!i.ip,
    gone: (i) => ["deleting", "discontinued", "error", "notfound", "offline"].includes(i.status),
    deleted: (i) => ["deleting", "discontinued", "notfound"].includes(i.status),
  };
}

/**
 * The name provider:up gives a box without --name: the same for the same provider, type and region,
 * so a re-run (say, after an SSH-wait timeout) finds the box it launched instead of renting another.
 * Hostname rules (RFC 1123 label, which DataCrunch's hostname and Lambda's name both accept):
 * lower-case letters, digits and '-', no leading or trailing '-', at most 63 characters.
 */
export function defaultName(p: CloudProvider, type: string, region: string): string {
  const label = `flow-${p}-${type}-${region}`.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-{2,}/g, "-");
  return label.slice(0, 63).replace(/-+$/, "");
}

const provider = z.enum(PROVIDERS).describe("lambda or datacrunch");
const inventoryOpt = z.string().default(DEFAULT_INVENTORY).describe("inventory file of launched boxes, relative to the project");

function pollMs(): number {
  const v = Number(process.env.FLOW_CLOUD_POLL_MS);
  return Number.isFinite(v) && v >= 10 ? v : 5000;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first line an SSH server sends starts with SSH-2.0- (RFC 4253 allows other lines before it). */
export function sshBanner(host: string, port: number, timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    let buf = "";
    const socket = connect({ host, port });
    const done = (v: string | null) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    socket.on("error", () => done(null));
    socket.on("close", () => done(null));
    socket.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (const line of buf.split(/\r?\n/).slice(0, -1)) if (/^SSH-(2\.0|1\.99)-/.test(line)) return done(line.trim());
      if (buf.length > 8192) done(null);
    });
  });
}

function checkInventoryIsRead(ctx: TaskContext, file: string): void {
  const wanted = inventoryPath(ctx.projectDir, file);
  if (!ctx.flow.inventory.some((f) => inventoryPath(ctx.projectDir, f) === wanted)) {
    ctx.warn(`the flowfile does not read ${file}: add inventory: [${JSON.stringify(file)}] to it so launched boxes become hosts`);
  }
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [head, ...rows].map((r) => r.map((c, i) => (c ?? "").padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

export const providerList = defineTask({
  name: "provider:list",
  description: "instance types with price and regions that have capacity, and running instances (Lambda, DataCrunch)",
  scope: "local",
  lock: false,
  optionalSecrets: ALL_SECRETS,
  options: z.object({
    provider: provider.optional(),
    type: z.string().optional().describe("only types whose name contains this"),
    available: z.boolean().default(false).describe("only types some region can launch now"),
  }),
  async run(ctx, o) {
    const chosen: CloudProvider[] = o.provider ? [o.provider] : PROVIDERS.filter((p) => NEEDS[p].every((k) => ctx.secrets[k]));
    if (!chosen.length) throw new TaskError(`provider:list needs credentials: LAMBDA_API_KEY for Lambda, or DATACRUNCH_CLIENT_ID and DATACRUNCH_CLIENT_SECRET for DataCrunch (environment or .env)`);
    const inv = readInventory(inventoryPath(ctx.projectDir));
    const allTypes: (CloudType & { provider: CloudProvider })[] = [];
    const allInstances: (CloudInstance & { provider: CloudProvider; inventory: string | null })[] = [];
    for (const p of chosen) {
      const cloud = cloudFor(ctx, p, "provider:list");
      await ctx.step(`${p}: instance types`, async () => {
        const types = (await cloud.types())
          .filter((t) => !o.type || t.name.includes(o.type))
          .filter((t) => !o.available || t.regions.length)
          .sort((a, b) => a.usdPerHour - b.usdPerHour || a.name.localeCompare(b.name));
        allTypes.push(...types.map((t) => ({ ...t, provider: p })));
        ctx.log(table(["type", "$/hour", "regions with capacity", "description"], types.map((t) => [t.name, t.usdPerHour.toFixed(2), t.regions.join(",") || "-", t.description])));
        return { status: "ok", note: `${types.length} type${types.length === 1 ? "" : "s"}, ${types.filter((t) => t.regions.length).length} with capacity` };
      });
      await ctx.step(`${p}: instances`, async () => {
        const list = await cloud.instances();
        const rows = list.map((i) => ({ ...i, provider: p, inventory: Object.entries(inv.hosts).find(([, h]) => h.data.instanceId === i.id)?.[0] ?? null }));
        allInstances.push(...rows);
        if (rows.length) ctx.log(table(["name", "id", "status", "ip", "type", "region", "in inventory"], rows.map((i) => [i.name || "-", i.id, i.status, i.ip ?? "-", i.type, i.region, i.inventory ?? "-"])));
        return { status: "ok", note: `${rows.length} instance${rows.length === 1 ? "" : "s"}` };
      });
    }
    ctx.emit({ types: allTypes, instances: allInstances });
  },
});

export const providerUp = defineTask({
  name: "provider:up",
  description: "launch a box on Lambda or DataCrunch, wait until SSH answers, add it to the inventory",
  scope: "local",
  lock: false,
  optionalSecrets: ALL_SECRETS,
  options: z.object({
    provider,
    type: z.string().min(1).describe("instance type, e.g. gpu_1x_h100_pcie or 1H100.80S.30V"),
    region: z.string().min(1).describe("region (Lambda, e.g. us-east-1) or location code (DataCrunch, e.g. FIN-01)"),
    name: z.string().regex(NAME, "expected letters, digits, '.', '_' or '-'").optional().describe("instance and host name (default flow-<provider>-<type>-<region>, so a re-run finds the box)"),
    sshKey: z.string().optional().describe("SSH key name (Lambda) or name/id (DataCrunch) registered with the provider"),
    image: z.string().optional().describe(`image family (Lambda) or image (DataCrunch, default ${DATACRUNCH_IMAGE})`),
    sshPort: z.number().int().min(1).max(65535).default(22).describe("port to wait on for the SSH banner"),
    identityFile: z.string().optional().describe("private key to record for the host in the inventory"),
    waitSshTimeout: z.number().positive().default(900).describe("seconds to wait for the box to run and answer on SSH"),
    inventory: inventoryOpt,
  }),
  async run(ctx, o) {
    const cloud = cloudFor(ctx, o.provider, "provider:up");
    const name = o.name ?? defaultName(o.provider, o.type, o.region);
    const invFile = inventoryPath(ctx.projectDir, o.inventory);
    checkInventoryIsRead(ctx, o.inventory);
    const downHint = (id: string) => `instance ${id} is still running (and billed): look at it, or terminate it with flow run provider:down --provider ${o.provider} --id ${id}`;

    let id = "";
    let launched = false;
    await ctx.step(`launch ${name} (${o.type} in ${o.region})`, async () => {
      // Same name already running: pick it up instead of renting a second box.
      const existing = (await cloud.instances()).find((i) => i.name === name && !cloud.gone(i));
      if (existing) {
        id = existing.id;
        if (existing.type !== o.type || existing.region !== o.region) ctx.warn(`${name} already runs as ${existing.type} in ${existing.region}, not ${o.type} in ${o.region}`);
        return { status: "ok", note: `already running as ${existing.id}` };
      }
      if (ctx.dryRun) {
        const t = (await cloud.types()).find((x) => x.name === o.type);
        const capacity = !t ? `but ${o.provider} has no type ${o.type}` : t.regions.includes(o.region) ? `${o.region} has capacity now` : `but ${o.region} has no capacity now${t.regions.length ? ` (capacity in ${t.regions.join(", ")})` : ""}`;
        return { status: "changed", note: `would launch ${o.type} in ${o.region}${t ? ` at $${t.usdPerHour.toFixed(2)}/h` : ""}; ${capacity}` };
      }
      id = await cloud.launch({ name, type: o.type, region: o.region, sshKey: o.sshKey, image: o.image });
      launched = true;
      return { status: "changed", note: `launched ${id}` };
    });
    if (ctx.dryRun && !id) {
      await ctx.step(`wait for SSH, add ${name} to ${o.inventory}`, async () => ({ status: "skipped", note: "dry run: nothing launched" }));
      return;
    }

    const deadline = Date.now() + o.waitSshTimeout * 1000;
    let box: CloudInstance | null = null;
    await ctx.step(`wait until ${name} runs with an address`, async () => {
      const started = Date.now();
      for (;;) {
        box = await cloud.instance(id);
        if (!box) throw new TaskError(`${o.provider} no longer knows instance ${id}`);
        if (cloud.gone(box)) throw new TaskError(`instance ${id} is ${box.status}; it will not come up`);
        if (cloud.ready(box)) return { status: launched ? "changed" : "ok", note: `${box.status} at ${box.ip} after ${Math.round((Date.now() - started) / 1000)}s` };
        if (Date.now() > deadline) throw new TaskError(`${name} is still ${box.status} after ${o.waitSshTimeout}s; ${downHint(id)}`);
        await sleep(pollMs());
      }
    });
    const ip = (box as CloudInstance | null)!.ip!;

    await ctx.step(`wait for SSH on ${ip}:${o.sshPort}`, async () => {
      let tries = 0;
      for (;;) {
        tries++;
        const banner = await sshBanner(ip, o.sshPort, Math.min(5000, Math.max(1000, deadline - Date.now())));
        if (banner) return { status: "ok", note: `${banner} (try ${tries})` };
        if (Date.now() > deadline) throw new TaskError(`${ip}:${o.sshPort} gave no SSH banner within ${o.waitSshTimeout}s; ${name} not added to the inventory; ${downHint(id)}`);
        await sleep(Math.min(2000, pollMs()));
      }
    });

    const host: LaunchedHost = { name, provider: o.provider, address: ip, port: o.sshPort, instanceId: id, type: o.type, region: o.region, identityFile: o.identityFile };
    await ctx.ensure({
      title: `inventory: ${name} in ${o.inventory}`,
      check: async () => JSON.stringify(findHost(invFile, { name })?.[1]) === JSON.stringify(hostEntry(host)),
      apply: async () => void addHost(invFile, host),
    });
    ctx.emit({ instance: { provider: o.provider, id, name, ip, port: o.sshPort, type: o.type, region: o.region, user: hostEntry(host).user } });
  },
});

export const providerDown = defineTask({
  name: "provider:down",
  description: "terminate (Lambda) or delete (DataCrunch) a box and remove it from the inventory",
  scope: "local",
  lock: false,
  optionalSecrets: ALL_SECRETS,
  options: z.object({
    provider,
    name: z.string().optional().describe("instance / host name"),
    id: z.string().optional().describe("instance id"),
    inventory: inventoryOpt,
  }),
  async run(ctx, o) {
    if (!o.name === !o.id) throw new TaskError("provider:down needs exactly one of --name NAME or --id ID");
    const cloud = cloudFor(ctx, o.provider, "provider:down");
    const invFile = inventoryPath(ctx.projectDir, o.inventory);
    const label = o.name ?? o.id!;
    let id = o.id;
    if (!id) {
      const entry = findHost(invFile, { name: o.name });
      if (entry && entry[1].provider && entry[1].provider !== o.provider) throw new TaskError(`${o.name} is a ${entry[1].provider} box in ${o.inventory}, not ${o.provider}`);
      id = typeof entry?.[1].data.instanceId === "string" ? entry[1].data.instanceId : undefined;
      // Not in the inventory (say, SSH never answered): look the name up at the provider.
      id ??= (await cloud.instances()).find((i) => i.name === o.name && !cloud.deleted(i))?.id;
    }
    await ctx.step(`terminate ${label}`, async () => {
      if (!id) return { status: "ok", note: `${o.provider} runs no instance named ${o.name}` };
      const box = await cloud.instance(id);
      if (!box || cloud.deleted(box)) return { status: "ok", note: `${id} already ${box?.status ?? "gone"}` };
      if (ctx.dryRun) return { status: "changed", note: `would terminate ${id} (${box.type} in ${box.region}, ${box.status})` };
      await cloud.terminate(id);
      return { status: "changed", note: `${o.provider === "lambda" ? "terminated" : "deleted"} ${id}` };
    });
    await ctx.ensure({
      title: `inventory: remove ${label} from ${o.inventory}`,
      check: async () => !findHost(invFile, { name: o.name, instanceId: id }),
      apply: async () => {
        const removed = removeHosts(invFile, { name: o.name, instanceId: id });
        return `removed ${removed.join(", ")}`;
      },
    });
  },
});

/** Wire into a provider group: `import { cloudTasks } from "./cloud/tasks.ts"` and add `...cloudTasks` to its tasks. */
export const cloudTasks = [providerList, providerUp, providerDown];
