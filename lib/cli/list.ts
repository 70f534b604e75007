// `flow list`: every task of the flow, grouped by provider, plugin and core.
import { FlowfileError, type LoadedFlow } from "../flowfile/load.ts";
import type { PluginDef, TaskDef } from "../task.ts";
import { corePlugin } from "../core-tasks.ts";
import { describeOptions } from "./options.ts";

export interface TaskGroup {
  title: string;
  kind: "provider" | "plugin" | "core";
  description?: string;
  tasks: TaskDef<any>[];
}

export function taskGroups(flow: LoadedFlow): TaskGroup[] {
  const fromPlugin =
    (kind: TaskGroup["kind"]) =>
    (p: PluginDef): TaskGroup => ({ title: p.name, kind, description: p.description, tasks: p.tasks });
  return [
    ...flow.config.providers.map(fromPlugin("provider")),
    ...flow.config.plugins.map(fromPlugin("plugin")),
    fromPlugin("core")(corePlugin),
  ];
}

export function taskIndex(groups: TaskGroup[]): Map<string, TaskDef<any>> {
  const index = new Map<string, TaskDef<any>>();
  for (const g of groups) {
    for (const t of g.tasks) {
      if (index.has(t.name)) throw new FlowfileError(`two tasks are named ${t.name} (the second in ${g.kind} ${g.title})`);
      index.set(t.name, t);
    }
  }
  return index;
}

export function listText(flow: LoadedFlow, groups: TaskGroup[]): string {
  const width = Math.max(...groups.flatMap((g) => g.tasks.map((t) => t.name.length)), 10);
  const out: string[] = [flow.file ? `flowfile: ${flow.file}` : "no flowfile here: built-in default", ""];
  for (const g of groups) {
    if (!g.tasks.length) continue;
    out.push(`${g.kind} ${g.title}${g.description ? ` — ${g.description}` : ""}`);
    for (const t of g.tasks) {
      out.push(
        `  ${t.name.padEnd(width)}  ${t.description}` +
          `${t.scope === "local" ? " [local]" : typeof t.scope === "function" ? " [local or host]" : ""}`,
      );
      const opts = describeOptions(t.options);
      if (opts.length) out.push(`  ${"".padEnd(width)}  options: ${opts.map((o) => o.flag + (o.required ? "*" : "")).join(" ")}`);
    }
    out.push("");
  }
  return out.join("\n");
}

export function listJson(flow: LoadedFlow, groups: TaskGroup[]): string {
  const json = groups.map((g) => ({
    group: g.title,
    kind: g.kind,
    description: g.description,
    tasks: g.tasks.map((t) => ({
      name: t.name,
      description: t.description,
      scope: typeof t.scope === "function" ? "depends on options" : (t.scope ?? "host"),
      lock: t.lock !== false,
      secrets: t.secrets ?? [],
      options: describeOptions(t.options),
    })),
  }));
  return JSON.stringify({ flowfile: flow.file, groups: json }, null, 2) + "\n";
}
