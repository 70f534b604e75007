// Sizes and times as the progress lines show them (decimal units, as download tools do).

export function fmtBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i ? v.toFixed(v < 10 ? 2 : 1) : v} ${units[i]}`;
}

export function fmtEta(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return "ETA ?";
  if (s < 60) return `ETA ${Math.round(s)}s`;
  if (s < 3600) return `ETA ${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `ETA ${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, "0")}m`;
}
