// The per-host run lock: taken before a task changes a host, waited for up to --lock-wait, and
// taken over when it was left by a run of this machine whose process is gone.
import { hostname, userInfo } from "node:os";
import { acquireLock, parseLockDetails, releaseLock, type LockDetails } from "../commands/lock.ts";
import { machineId } from "../machine-id.ts";
import { TaskError, type TaskContext } from "../task.ts";
import type { RunRequest } from "./request.ts";

export type { LockDetails } from "../commands/lock.ts";

type LockContext = Pick<TaskContext, "host" | "transport" | "log" | "warn">;

export async function takeLock(ctx: LockContext, req: RunRequest): Promise<LockDetails> {
  const remoteDir = req.flow.config.settings.remoteDir;
  const details: LockDetails = {
    holder: `${userInfo().username}@${hostname()}`,
    machine: machineId(),
    task: req.task.name,
    since: new Date().toISOString(),
    pid: process.pid,
  };
  const deadline = Date.now() + req.lockWaitSeconds * 1000;
  let waited = false;
  for (;;) {
    const r = await ctx.transport.exec(acquireLock(remoteDir, details));
    if (r.code === 0) return details;
    const held = parseLockDetails(r.stdout);
    if (held && held.machine === details.machine && !processAlive(held.pid)) {
      // Our own machine's run that died without releasing: its pid is gone, so the lock is stale.
      ctx.warn(`removing a stale lock of ${held.holder} pid ${held.pid} (task ${held.task}), no longer running`);
      await ctx.transport.exec(releaseLock(remoteDir, held));
      continue;
    }
    const who = held ? `${held.holder} (task ${held.task}, pid ${held.pid}, since ${held.since})` : "an unknown holder";
    if (Date.now() >= deadline) {
      throw new TaskError(
        `${ctx.host.name} is locked by ${who}${waited ? ` after waiting ${req.lockWaitSeconds}s` : ""}; ` +
          `wait with --lock-wait SECONDS, or release it with: flow run lock:release --host ${ctx.host.name}`,
      );
    }
    if (!waited) ctx.log(`waiting for the lock held by ${who}`);
    waited = true;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(50, deadline - Date.now()))));
  }
}

/** The command that gives the lock back (also run from the interrupt handler). */
export function releaseLockCommand(req: RunRequest, held: LockDetails): string {
  return releaseLock(req.flow.config.settings.remoteDir, held);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
