// What a run tells its reporters. Everything printed comes from these events.
import type { StepStatus } from "./task.ts";

export type HostOutcome = "ok" | "failed" | "unreachable";

export type RunEvent =
  | { type: "host-start"; host: string }
  | { type: "step-start"; host: string; step: string }
  | { type: "step-end"; host: string; step: string; status: StepStatus; note?: string; ms: number; dryRun: boolean }
  | { type: "log"; host: string; level: "debug" | "info" | "warn" | "error"; message: string }
  | { type: "progress"; host: string; message: string }
  | { type: "data"; host: string; data: Record<string, unknown> }
  | { type: "host-end"; host: string; outcome: HostOutcome; error?: string; ms: number };

export interface HostRecap {
  host: string;
  outcome: HostOutcome;
  ok: number;
  changed: number;
  skipped: number;
  failed: number;
  error?: string;
  ms: number;
  data: Record<string, unknown>;
}

export interface Reporter {
  /** called once with every host name before the run starts */
  start(task: string, hosts: string[], dryRun: boolean): void;
  event(e: RunEvent): void;
  /** after every host ended */
  finish(recap: HostRecap[]): Promise<void> | void;
}
