// Tasks every flow has, whatever its plugins: the host lock.
import { z } from "zod";
import { definePlugin, defineTask } from "./task.ts";
import { parseLockDetails, readLock, releaseLock } from "./commands/lock.ts";

export const lockStatus = defineTask({
  name: "lock:status",
  description: "Show who holds the flow lock on each host",
  lock: false,
  options: z.object({}),
  async run(ctx) {
    await ctx.step("lock", async () => {
      const out = (await ctx.sh(readLock(ctx.flow.settings.remoteDir))).trim();
      if (!out) {
        ctx.emit({ lock: null });
        return { status: "ok", note: "free" };
      }
      const d = parseLockDetails(out);
      ctx.emit({ lock: d ?? { raw: out } });
      return { status: "ok", note: d ? `held by ${d.holder} (task ${d.task}, pid ${d.pid}, since ${d.since})` : "held (no details)" };
    });
  },
});

export const lockRelease = defineTask({
  name: "lock:release",
  description: "Remove the flow lock from each host (when a run died holding it)",
  lock: false, // it must not wait for the lock it removes
  options: z.object({}),
  async run(ctx) {
    await ctx.step("release lock", async () => {
      const dir = ctx.flow.settings.remoteDir;
      const held = (await ctx.sh(readLock(dir))).trim();
      if (!held) return { status: "ok", note: "was free" };
      if (ctx.dryRun) return { status: "changed", note: "would release" };
      await ctx.sh(releaseLock(dir));
      const d = parseLockDetails(held);
      return { status: "changed", note: d ? `released the lock of ${d.holder} (task ${d.task})` : "released" };
    });
  },
});

export const corePlugin = definePlugin({ name: "core", description: "flow's own housekeeping", tasks: [lockStatus, lockRelease] });
