// ComfyUI's own account of loading custom nodes, read from its log: the "Import times for custom
// nodes:" block it prints after each start (a line per pack, "(IMPORT FAILED)" for the ones that
// raised) and the "Cannot import <path> module for custom nodes: <error>" line before it.
export interface ImportFailure {
  /** the pack's folder name under custom_nodes */
  pack: string;
  path: string;
  error?: string;
}

export interface ImportReport {
  loaded: string[];
  failed: ImportFailure[];
}

const folderOf = (path: string) => path.replace(/\/+$/, "").split("/").pop()!.replace(/\.py$/, "");

/** The last start's report in a log (earlier starts are older news); empty when the log has none. */
export function parseImportReport(log: string): ImportReport {
  const lines = log.split(/\r?\n/);
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/Import times for custom nodes:/.test(lines[i]!)) {
      start = i;
      break;
    }
  }
  const errors = new Map<string, string>();
  for (const l of lines) {
    const m = /Cannot import (.+?) module for custom nodes: (.*)$/.exec(l);
    if (m) errors.set(folderOf(m[1]!.trim()), m[2]!.trim());
  }
  const out: ImportReport = { loaded: [], failed: [] };
  if (start < 0) return out;
  for (const l of lines.slice(start + 1)) {
    // tolerant of a prefix (a timestamp or logger name) before ComfyUI's own text
    const m = /\b[\d.]+ seconds( \(IMPORT FAILED\))?: (\S.*)$/.exec(l);
    if (!m) break;
    const path = m[2]!.trim();
    const pack = folderOf(path);
    if (m[1]) out.failed.push({ pack, path, ...(errors.has(pack) ? { error: errors.get(pack) } : {}) });
    else out.loaded.push(pack);
  }
  return out;
}

export const parseImportFailures = (log: string): ImportFailure[] => parseImportReport(log).failed;
