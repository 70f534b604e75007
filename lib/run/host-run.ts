// One task on one host: connect, read what flow recorded there, take the lock, run the body,
// give the lock back, close; every event redacted on its way out and counted into the recap.
import { scopeOf } from "../task.ts";
import type { HostRecap, RunEvent } from "../events.ts";
import type { HostSpec } from "../hosts.ts";
import { onInterrupt } from "../cleanup.ts";
import { readHostRecordCommand } from "../commands/host-record.ts";
import { redactor } from "../secrets.ts";
import { TaskError } from "../task.ts";
import type { Transport } from "../transport/types.ts";
import { UnreachableError } from "../transport/types.ts";
import { transportFor } from "./connect.ts";
import { HostContext } from "./host-context.ts";
import { releaseLockCommand, takeLock, type LockDetails } from "./lock.ts";
import type { RunRequest } from "./request.ts";

export async function runOnHost(req: RunRequest, host: HostSpec): Promise<HostRecap> {
  const started = Date.now();
  const recap: HostRecap = { host: host.name, outcome: "ok", ok: 0, changed: 0, skipped: 0, failed: 0, ms: 0, data: {} };
  // Every event is redacted here, as a value before any reporter encodes it: titles, notes, data.
  const emit = (raw: RunEvent) => {
    const e = redactor.redactValue(raw);
    if (e.type === "step-end") recap[e.status]++;
    if (e.type === "data") Object.assign(recap.data, e.data);
    req.reporter.event(e);
  };
  emit({ type: "host-start", host: host.name });
  let transport: Transport | undefined;
  let lock: LockDetails | undefined;
  let forget: () => unknown = () => undefined;
  try {
    transport = await transportFor(req, host);
    try {
      await transport.connect();
    } catch (err) {
      recap.outcome = "unreachable";
      recap.error = err instanceof UnreachableError ? err.message : `${host.name}: cannot connect: ${(err as Error).message}`;
      return recap;
    }
    const recorded = host.local ? {} : await readHostRecord(transport, req.flow.config.settings.remoteDir);
    const ctx = new HostContext(req, withRecord(host, recorded), transport, emit);
    if (req.task.lock !== false && !req.dryRun && scopeOf(req.task, req.options) !== "local") {
      lock = await takeLock(ctx, req);
      const held = lock;
      const t = transport;
      forget = onInterrupt(() => t.exec(releaseLockCommand(req, held)));
    }
    await req.task.run(ctx, req.options);
    if (recap.failed > 0) recap.outcome = "failed";
  } catch (err) {
    recap.outcome = "failed";
    recap.error = err instanceof TaskError || err instanceof Error ? err.message : String(err);
  } finally {
    forget();
    if (lock && transport) {
      await transport.exec(releaseLockCommand(req, lock)).catch(() => undefined);
    }
    await transport?.close().catch(() => undefined);
    recap.ms = Date.now() - started;
    if (recap.error) recap.error = redactor.redact(recap.error);
    emit({ type: "host-end", host: host.name, outcome: recap.outcome, error: recap.error, ms: recap.ms });
  }
  return recap;
}

async function readHostRecord(t: Transport, remoteDir: string): Promise<Record<string, unknown>> {
  const r = await t.exec(readHostRecordCommand(remoteDir));
  try {
    const v = JSON.parse(r.stdout.trim() || "{}");
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * What flow recorded on the host in earlier runs (the data root setup chose) wins over the flowfile's
 * data for the same key: it says where the containers' folders really are on that box.
 */
export function withRecord(host: HostSpec, recorded: Record<string, unknown>): HostSpec {
  return { ...host, data: { ...host.data, ...recorded } };
}
