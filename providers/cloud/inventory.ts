// The inventory file of launched boxes (default .flow/inventory.json), in the flowfile's inventory
// schema so `inventory: [".flow/inventory.json"]` makes them ordinary hosts. Writes go to a temp
// file renamed over the old one (a reader never sees half a file), under a mkdir lock so two
// `provider:up` runs do not lose each other's host.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { inventorySchema, formatZodError, type Inventory } from "../../lib/flowfile/schema.ts";

export const DEFAULT_INVENTORY = ".flow/inventory.json";

export interface LaunchedHost {
  name: string;
  provider: string;
  /** login user of the provider's boxes (its profile's) */
  user: string;
  address: string;
  port?: number;
  instanceId: string;
  type: string;
  region: string;
  identityFile?: string;
}

export type InventoryHost = Inventory["hosts"][string];

export function inventoryPath(projectDir: string, file = DEFAULT_INVENTORY): string {
  return isAbsolute(file) ? file : resolve(projectDir, file);
}

export function readInventory(path: string): Inventory {
  if (!existsSync(path)) return { hosts: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message}); fix or remove it`);
  }
  const parsed = inventorySchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new Error(`${path} is not a valid inventory:\n${formatZodError(parsed.error)}`);
  return parsed.data;
}

export function hostEntry(h: LaunchedHost): InventoryHost {
  return {
    address: h.address,
    ...(h.port && h.port !== 22 ? { port: h.port } : {}),
    user: h.user,
    ...(h.identityFile ? { identityFile: h.identityFile } : {}),
    provider: h.provider,
    groups: [h.provider, "cloud"],
    data: { instanceId: h.instanceId, type: h.type, region: h.region },
  };
}

/** Add or replace a host; returns whether the file changed. */
export function addHost(path: string, h: LaunchedHost): boolean {
  return update(path, (inv) => {
    const entry = hostEntry(h);
    if (JSON.stringify(inv.hosts[h.name]) === JSON.stringify(entry)) return false;
    inv.hosts[h.name] = entry;
    return true;
  });
}

/** Remove hosts by name or instance id; returns the names removed. */
export function removeHosts(path: string, match: { name?: string; instanceId?: string }): string[] {
  const removed: string[] = [];
  update(path, (inv) => {
    for (const [name, h] of Object.entries(inv.hosts)) {
      if ((match.name && name === match.name) || (match.instanceId && h.data.instanceId === match.instanceId)) {
        delete inv.hosts[name];
        removed.push(name);
      }
    }
    return removed.length > 0;
  });
  return removed;
}

export function findHost(path: string, match: { name?: string; instanceId?: string }): [string, InventoryHost] | undefined {
  return Object.entries(readInventory(path).hosts).find(
    ([name, h]) => (match.name && name === match.name) || (match.instanceId && h.data.instanceId === match.instanceId),
  );
}

/** Does the flowfile read this inventory file (so its boxes become hosts)? */
export function flowReads(flow: { inventory: string[] }, projectDir: string, file: string): boolean {
  const wanted = inventoryPath(projectDir, file);
  return flow.inventory.some((f) => inventoryPath(projectDir, f) === wanted);
}

function update(path: string, change: (inv: Inventory) => boolean): boolean {
  mkdirSync(dirname(path), { recursive: true });
  return withLock(`${path}.lock`, () => {
    const inv = readInventory(path);
    if (!change(inv)) return false;
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, JSON.stringify(inv, null, 2) + "\n", { mode: 0o644 });
    renameSync(tmp, path);
    return true;
  });
}

/** mkdir is atomic: whoever creates the directory holds the lock. A lock older than a minute is stale. */
function withLock<T>(dir: string, body: () => T): T {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        if (Date.now() - statSync(dir).mtimeMs > 60_000) rmSync(dir, { recursive: true, force: true });
      } catch {
        // gone between the two calls: try again
      }
      if (Date.now() > deadline) {
        throw new Error(`${dir}: another flow process holds the inventory lock; remove the directory if none runs`);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return body();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
