// Limits that keep a hostile workflow file from costing more than a look. Subgraphs and group nodes
// used twice at each of 31 levels ask for 2^30 nodes from 8 KB, so expansion is counted; containers
// and JSON values nested without end would overflow the stack of any recursive walk, so both are capped.
import { WorkflowReadError } from "./workflow-error.ts";

/** Nodes made by expanding subgraph and group-node interiors, per workflow; real workflows make a few hundred. */
export const MAX_EXPANDED_NODES = 50_000;
/** Subgraphs and group nodes inside each other; real workflows are a few levels deep. */
export const MAX_NESTING = 32;
/** JSON arrays and objects inside each other. ComfyUI's Python json gives up near 1,000; real workflows stay under 20. */
export const MAX_JSON_DEPTH = 500;

const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** Counts expanded nodes for one workflow; past the limit the file is refused, by name. */
export class ExpansionBudget {
  private used = 0;
  constructor(
    readonly file: string,
    readonly limit = MAX_EXPANDED_NODES,
  ) {}

  /** `n` more nodes expanded for the instance at node `key`. */
  take(n: number, key: string): void {
    this.used += n;
    if (this.used > this.limit)
      throw new WorkflowReadError(
        this.file,
        `expanding its subgraphs and group nodes makes more than ${thousands(this.limit)} nodes (reached at node ${key}): refused, ` +
          "a workflow that uses a subgraph that uses another many times over multiplies without end",
      );
  }
}

/** Refuse JSON nested deeper than `limit`; walks with its own stack, so any depth is safe to check. */
export function checkJsonDepth(value: unknown, file: string, limit = MAX_JSON_DEPTH): void {
  const stack: [object, number][] = typeof value === "object" && value !== null ? [[value, 1]] : [];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (depth > limit)
      throw new WorkflowReadError(
        file,
        `JSON nested more than ${limit} levels deep: no ComfyUI workflow is, and ComfyUI could not load it`,
      );
    for (const k of Array.isArray(v) ? v : Object.values(v)) if (typeof k === "object" && k !== null) stack.push([k, depth + 1]);
  }
}
