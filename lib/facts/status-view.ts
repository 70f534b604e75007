// The `status` fact as text: short cells per host, one labelled line per host (the live view of
// `status --watch`), and the fleet table printed after the run. Pure functions.
import { styleText } from "node:util";
import { formatTable } from "../output/table.ts";
import type { HostStatus, HttpCheck, StatusRow } from "./status.ts";

export const COLUMNS = [
  "gpu",
  "comfyui",
  "api",
  "proxy",
  "health",
  "ready",
  "queue",
  "workflows",
  "packs",
  "models",
  "disk free",
  "load",
] as const;
export type Column = (typeof COLUMNS)[number];
export type Cells = Record<Column, string>;

/** 45s, 12m, 3h12m, 2d4h */
export function fmtDuration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return "?";
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

const gb = (mb: number) => (mb / 1024 >= 100 ? Math.round(mb / 1024).toString() : (Math.round((mb / 1024) * 10) / 10).toString());

function gpuCell(s: HostStatus): string {
  if (!s.gpus) return "-";
  if (!s.gpus.length) return "nvidia-smi failed";
  const names = [...new Set(s.gpus.map((g) => g.name.replace(/^NVIDIA\s+/, "")))];
  const used = s.gpus.reduce((n, g) => n + (g.memoryUsedMB ?? 0), 0);
  const total = s.gpus.reduce((n, g) => n + (g.memoryTotalMB ?? 0), 0);
  const utils = s.gpus.map((g) => g.utilization).filter((u): u is number => u !== null);
  const util = utils.length ? `${Math.round(utils.reduce((a, b) => a + b, 0) / utils.length)}%` : "?%";
  const name = names.length === 1 ? `${s.gpus.length > 1 ? `${s.gpus.length}x ` : ""}${names[0]}` : `${s.gpus.length} GPUs`;
  return `${name} ${gb(used)}/${gb(total)}G ${util}`;
}

function containerCell(s: HostStatus): string {
  if (s.docker.state !== "ok") return `docker ${s.docker.state}`;
  const c = s.container;
  if (!c) return "no container";
  const restarts = c.restarts ? `, ${c.restarts} restart${c.restarts === 1 ? "" : "s"}` : "";
  if (c.state === "running")
    return `up ${fmtDuration(c.uptimeSeconds)}${c.health && c.health !== "healthy" ? ` (${c.health})` : ""}${restarts}`;
  return `${c.state}${c.exitCode !== null ? ` (exit ${c.exitCode})` : ""}${restarts}`;
}

function httpCell(h: HttpCheck | null): string {
  if (!h) return "?";
  if (h.code !== null) return String(h.code);
  if (!h.error) return "?";
  return /refused/.test(h.error) ? "refused" : /timed out/.test(h.error) ? "timeout" : "error";
}

export function statusCells(s: HostStatus): Cells {
  const w = s.workflows;
  const m = s.models;
  return {
    gpu: gpuCell(s),
    comfyui: containerCell(s),
    api: s.api.version ?? "-",
    proxy: s.proxy?.cell ?? "-",
    health: httpCell(s.api.health),
    ready: httpCell(s.api.ready),
    queue: s.queue ? String(s.queue.total) : "?",
    workflows: w ? (w.expected ? `${w.served.length}/${w.expected.length}` : String(w.served.length)) : "?",
    packs: s.nodePacks ? String(s.nodePacks.length) : "-",
    models: m ? (m.error && !m.needed ? "?" : `${m.ready}/${m.needed}`) : "-",
    "disk free": s.disk ? `${s.disk.availableGB}G` : "?",
    load: s.load ? String(s.load[0]) : "?",
  };
}

/** What is worth a line under the table: open ports, workflows not served, missing models. */
export function statusNotes(s: HostStatus): string[] {
  const out = [...(s.proxy?.alerts ?? []).map(alert), ...s.warnings];
  const w = s.workflows;
  if (w?.missing?.length) out.push(`not served: ${w.missing.join(", ")} (in workflows/, not in GET /docs/json)`);
  if (w?.unexpected?.length) out.push(`served but not in workflows/: ${w.unexpected.join(", ")}`);
  if (s.models?.missing.length) {
    const shown = s.models.missing.slice(0, 5).join(", ");
    out.push(
      `models missing: ${shown}${s.models.missing.length > 5 ? ` and ${s.models.missing.length - 5} more` : ""} (flow run models:download)`,
    );
  }
  if (s.models?.error) out.push(`models: ${s.models.error}`);
  return out;
}

/** A line that must stand out: red on a terminal that takes colour. */
export function alert(text: string): string {
  const colour = !!process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== "dumb";
  return colour ? styleText("red", text) : `!! ${text}`;
}

/** `gpu H100 1/80G 3%  comfyui up 2h  api 1.18.0 ...`; `widths` pads each value to line up hosts. */
export function statusLine(cells: Cells, widths?: Partial<Record<Column, number>>): string {
  return COLUMNS.map((c) => `${c} ${cells[c].padEnd(widths?.[c] ?? 0)}`)
    .join("  ")
    .trimEnd();
}

export function cellWidths(all: Cells[]): Record<Column, number> {
  return Object.fromEntries(COLUMNS.map((c) => [c, all.reduce((n, x) => Math.max(n, x[c].length), 0)])) as Record<Column, number>;
}

export function rowText(row: StatusRow, widths?: Partial<Record<Column, number>>): string {
  return row.reachable ? statusLine(statusCells(row), widths) : `unreachable: ${row.error}`;
}

/** One row per host; a host without a status says why (unreachable: ..., failed: ...), then the notes. */
export function fleetTable(rows: { host: string; row?: StatusRow; error?: string }[]): string {
  const head = ["host", ...COLUMNS];
  const cells = rows.map((r) => (r.row?.reachable ? [r.host, ...COLUMNS.map((c) => statusCells(r.row as HostStatus)[c])] : [r.host]));
  const lines = formatTable(head, cells).split("\n");
  const hostWidth = Math.max(4, ...rows.map((r) => r.host.length));
  const out = [lines[0]!];
  rows.forEach((r, i) => {
    if (r.row?.reachable) out.push(lines[i + 1]!);
    else out.push(`${r.host.padEnd(hostWidth)}  ${r.row ? `unreachable: ${r.row.error}` : (r.error ?? "no status")}`);
  });
  const notes = rows.flatMap((r) => (r.row?.reachable ? statusNotes(r.row).map((n) => `${r.host}: ${n}`) : []));
  return [...out, ...(notes.length ? ["", ...notes] : [])].join("\n");
}
