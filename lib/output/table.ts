// The one text table flow prints (the recap, the fleet's status, deps and models reports, provider lists).

export interface TableOptions {
  /** indexes of columns aligned right (numbers) */
  right?: number[];
  /** a line of dashes under the header */
  rule?: boolean;
}

/** Columns two spaces apart, each as wide as its widest cell; trailing blanks trimmed. */
export function formatTable(header: string[], rows: (string | undefined)[][], opts: TableOptions = {}): string {
  const cells = rows.map((r) => header.map((_, i) => r[i] ?? ""));
  // a loop, not Math.max(...rows): a call with 10^5 arguments overflows the stack
  const widths = header.map((h, i) => cells.reduce((m, r) => Math.max(m, r[i]!.length), h.length));
  const right = new Set(opts.right ?? []);
  const line = (r: string[]) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...(opts.rule ? [line(widths.map((n) => "-".repeat(n)))] : []), ...cells.map(line)].join("\n");
}
