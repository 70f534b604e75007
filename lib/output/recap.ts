// The per-host recap every run ends with, as text.
import type { HostRecap } from "../events.ts";
import { formatTable } from "./table.ts";

export function recapTable(recaps: HostRecap[], dryRun: boolean): string {
  const rows = recaps.map((r) => [
    r.host,
    r.outcome,
    String(r.ok),
    String(r.changed),
    String(r.skipped),
    String(r.failed),
    `${(r.ms / 1000).toFixed(1)}s`,
  ]);
  const head = ["host", "result", "ok", dryRun ? "would change" : "changed", "skipped", "failed", "time"];
  const out = [formatTable(head, rows, { right: [2, 3, 4, 5, 6] })];
  for (const r of recaps) if (r.error) out.push(`${r.host}: ${r.error}`);
  return out.join("\n");
}

export function exitCode(recaps: HostRecap[]): number {
  return recaps.every((r) => r.outcome === "ok") ? 0 : 1;
}
