// Which reporter prints a run: JSON lines for machines, the Listr2 tree on a terminal, plain lines otherwise.
import type { HostRecap, Reporter } from "../events.ts";
import { redactor } from "../secrets.ts";
import { PlainReporter } from "../output/plain.ts";
import { JsonReporter } from "../output/json.ts";

export function pickReporter(opts: { json: boolean; quiet: boolean; verbose: boolean }): Reporter {
  if (opts.json) return new JsonReporter();
  if (process.stdout.isTTY && (process.stdout.columns ?? 0) > 20 && !process.env.CI && !opts.quiet) {
    // loaded lazily: listr2 is only needed on a terminal
    return new LazyListr();
  }
  return new PlainReporter((line) => process.stdout.write(redactor.redact(line) + "\n"), { quiet: opts.quiet });
}

class LazyListr implements Reporter {
  private inner?: Reporter;
  private queue: Array<(r: Reporter) => void> = [];
  private ready = import("../output/listr.ts").then((m) => {
    this.inner = new m.ListrReporter();
    for (const f of this.queue.splice(0)) f(this.inner);
  });
  private call(f: (r: Reporter) => void) {
    if (this.inner) f(this.inner);
    else this.queue.push(f);
  }
  start(task: string, hosts: string[], dryRun: boolean) {
    this.call((r) => r.start(task, hosts, dryRun));
  }
  event(e: Parameters<Reporter["event"]>[0]) {
    this.call((r) => r.event(e));
  }
  async finish(recap: HostRecap[]) {
    await this.ready;
    await this.inner!.finish(recap);
  }
}
