// JSON lines: every event, then one `recap` object. For machines.
import type { HostRecap, Reporter, RunEvent } from "../events.ts";

export class JsonReporter implements Reporter {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l + "\n")) {}

  start(task: string, hosts: string[], dryRun: boolean): void {
    this.write(JSON.stringify({ type: "start", task, hosts, dryRun }));
  }

  event(e: RunEvent): void {
    this.write(JSON.stringify(e));
  }

  finish(recap: HostRecap[]): void {
    this.write(JSON.stringify({ type: "recap", ok: recap.every((r) => r.outcome === "ok"), hosts: recap }));
  }
}
