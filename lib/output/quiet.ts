// For a passthrough run (one host, output piped as from `ssh host cmd`): stdout belongs to the
// command, so flow says only what went wrong, on stderr.
import type { Reporter, RunEvent } from "../events.ts";

export class QuietReporter implements Reporter {
  constructor(private readonly write: (line: string) => void) {}

  start(): void {}

  event(e: RunEvent): void {
    if (e.type === "log" && e.level !== "info")
      for (const line of e.message.split("\n")) this.write(`flow: [${e.host}] ${e.level}: ${line}`);
    if (e.type === "host-end" && e.outcome === "unreachable") this.write(`flow: [${e.host}] UNREACHABLE${e.error ? `: ${e.error}` : ""}`);
    if (e.type === "host-end" && e.outcome === "failed" && e.error && !/^[^:]*: exit \S+$/.test(e.error))
      this.write(`flow: [${e.host}] ${e.error}`);
  }

  finish(): void {}
}
