// What a run is asked to do: one task, its options, the hosts, and how to report and connect.
import type { HostSpec } from "../hosts.ts";
import type { LoadedFlow } from "../flowfile/load.ts";
import type { Reporter } from "../events.ts";
import type { TaskContext, TaskDef } from "../task.ts";
import type { Transport } from "../transport/types.ts";

export interface RunRequest {
  flow: LoadedFlow;
  tasks: Map<string, TaskDef<any>>;
  task: TaskDef<any>;
  /** already validated by the task's schema */
  options: Record<string, unknown>;
  rest: string[];
  hosts: HostSpec[];
  secrets: Record<string, string>;
  dryRun: boolean;
  /** a destructive task's go-ahead (--yes or the terminal's answer) */
  confirmed?: boolean;
  /** emit a debug line for each command run on a host */
  verbose?: boolean;
  concurrency: number;
  lockWaitSeconds: number;
  acceptNewHostKey: boolean;
  reporter: Reporter;
  /** the terminal's streams for a passthrough task (see TaskContext.raw) */
  raw?: TaskContext["raw"];
  /** for tests: how to reach a host */
  connect?: (host: HostSpec) => Transport;
}
