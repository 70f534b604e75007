// One line per event: for CI logs, pipes, and anything that is not a terminal.
import type { HostRecap, Reporter, RunEvent } from "../events.ts";
import { recapTable } from "./recap.ts";

export class PlainReporter implements Reporter {
  private dryRun = false;
  /** plain output is a log: progress at most once per host every few seconds */
  private lastProgress = new Map<string, number>();
  constructor(
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + "\n"),
    /** --quiet: failures, warnings and the recap only */
    private readonly opts: { quiet?: boolean } = {},
  ) {}

  start(task: string, hosts: string[], dryRun: boolean): void {
    this.dryRun = dryRun;
    if (this.opts.quiet) return;
    const where =
      hosts.length === 1 && hosts[0] === "local"
        ? "this machine"
        : `${hosts.length} host${hosts.length === 1 ? "" : "s"}: ${hosts.join(", ")}`;
    this.write(`${dryRun ? "dry run: " : ""}${task} on ${where}`);
  }

  event(e: RunEvent): void {
    if (
      this.opts.quiet &&
      !(e.type === "step-end" && e.status === "failed") &&
      !(e.type === "log" && e.level !== "info" && e.level !== "debug") &&
      e.type !== "host-end"
    )
      return;
    switch (e.type) {
      case "step-end": {
        const status = e.status === "changed" && e.dryRun ? "would change" : e.status;
        const note = e.note?.replace(/^would change(: )?/, "");
        this.write(`[${e.host}] ${e.step}: ${status}${note ? ` (${note})` : ""}`);
        break;
      }
      case "progress": {
        const now = Date.now();
        if (now - (this.lastProgress.get(e.host) ?? 0) < 5000) break;
        this.lastProgress.set(e.host, now);
        this.write(`[${e.host}] ${e.message}`);
        break;
      }
      case "log":
        for (const line of e.message.split("\n")) this.write(`[${e.host}] ${e.level === "info" ? "" : `${e.level}: `}${line}`);
        break;
      case "host-end":
        if (e.outcome !== "ok") this.write(`[${e.host}] ${e.outcome.toUpperCase()}${e.error ? `: ${e.error}` : ""}`);
        break;
    }
  }

  finish(recap: HostRecap[]): void {
    this.write("");
    this.write(recapTable(recap, this.dryRun));
  }
}
