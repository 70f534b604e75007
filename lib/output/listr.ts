// Terminal view: one Listr2 task per host; its steps appear under it as they finish.
import { Listr, type ListrTaskWrapper, type DefaultRenderer, type SimpleRenderer } from "listr2";
import type { HostRecap, Reporter, RunEvent } from "../events.ts";
import { recapTable } from "./recap.ts";

type Wrapper = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;

const MARK: Record<string, string> = { ok: "✔", changed: "●", skipped: "↷", failed: "✖" };

interface HostView {
  wrapper?: Wrapper;
  done: (err?: Error) => void;
  finished: Promise<void>;
  pending: RunEvent[];
}

export class ListrReporter implements Reporter {
  private views = new Map<string, HostView>();
  private list?: Promise<void>;
  private dryRun = false;

  start(task: string, hosts: string[], dryRun: boolean): void {
    this.dryRun = dryRun;
    for (const host of hosts) {
      let done!: (err?: Error) => void;
      const finished = new Promise<void>((res, rej) => (done = (err) => (err ? rej(err) : res())));
      finished.catch(() => undefined);
      this.views.set(host, { done, finished, pending: [] });
    }
    const list = new Listr(
      hosts.map((host) => ({
        title: `${host}: waiting`,
        task: async (_ctx: unknown, wrapper: Wrapper) => {
          const view = this.views.get(host)!;
          view.wrapper = wrapper;
          for (const e of view.pending.splice(0)) this.apply(view, e);
          await view.finished;
        },
        rendererOptions: { persistentOutput: true, outputBar: Infinity },
      })),
      // flow's own Ctrl-C handler (lib/cleanup.ts) releases host locks; listr2's would exit first
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        rendererOptions: { collapseErrors: false, showErrorMessage: true },
      },
    );
    this.list = list.run().then(
      () => undefined,
      () => undefined,
    );
    void task;
  }

  event(e: RunEvent): void {
    const view = this.views.get(e.host);
    if (!view) return;
    if (!view.wrapper) view.pending.push(e);
    else this.apply(view, e);
  }

  private apply(view: HostView, e: RunEvent): void {
    const w = view.wrapper!;
    switch (e.type) {
      case "host-start":
        w.title = `${e.host}: connecting`;
        break;
      case "step-start":
        w.title = `${e.host}: ${e.step}`;
        break;
      case "step-end": {
        const status = e.status === "changed" && e.dryRun ? "would change" : e.status;
        const note = e.note?.replace(/^would change(: )?/, "");
        // listr2 keeps every line written to output (outputBar: Infinity): write only the new one
        w.output = `${MARK[e.status]} ${e.step}: ${status}${note ? ` (${note})` : ""}`;
        break;
      }
      case "progress":
        w.title = `${e.host}: ${e.message}`;
        break;
      case "log":
        w.output = `${e.level === "info" ? " " : e.level === "debug" ? "·" : "!"} ${e.message}`;
        break;
      case "host-end":
        w.title = `${e.host}: ${e.outcome} (${(e.ms / 1000).toFixed(1)}s)`;
        view.done(e.outcome === "ok" ? undefined : new Error(e.error ?? "a step failed"));
        break;
    }
  }

  async finish(recap: HostRecap[]): Promise<void> {
    for (const v of this.views.values()) v.done();
    await this.list;
    process.stdout.write("\n" + recapTable(recap, this.dryRun) + "\n");
  }
}
