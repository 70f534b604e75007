// The proof's child process (started by ./endpoint-proof.ts, never imported by flow): it evaluates a
// workflow file flow did not write (an LLM's) and reports what the file does, as JSON on fd 3. It runs
// with no environment, an empty temporary cwd, Node's permission model (read access to flow's code only,
// no writes, no child processes, no workers), a heap cap and a time limit. stdin: { rel, js, listing }.
import { writeSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { MEDIA_URL, Runner, evalWorkflow, show, standInFromListing, type LlmObservation, type StandInListing } from "./endpoint-eval.ts";

interface Job {
  rel: string;
  /** the file as transpiled by flow's process (the TypeScript compiler stays out of the child) */
  js: string;
  listing: StandInListing;
}

/** Load the file and exercise it the way proveLlm judges it: every call into the file happens here. */
async function observe(job: Job): Promise<LlmObservation> {
  const loaded = evalWorkflow(job.rel, job.js, standInFromListing(job.listing));
  if (!loaded.workflow) return { load: loaded.problems };
  const run = new Runner(loaded.workflow);
  const shape = run.shape();
  const seen: NonNullable<LlmObservation["run"]> = { shape: !!shape, unfilled: [], fields: [] };
  const out = { load: loaded.problems, run: seen };
  if (!shape) return out;
  const filled: Record<string, unknown> = {};
  for (const [k, field] of Object.entries(shape)) {
    if (fieldAccepts(field, undefined)) continue; // optional or defaulted
    const v = placeholders(field).find((c) => fieldAccepts(field, c));
    if (v === undefined) seen.unfilled.push(k);
    else filled[k] = v;
  }
  const base = run.parse(filled);
  if (!base.ok) {
    seen.rejected = base.error;
    return out;
  }
  seen.generated = await run.generate(base.data);
  if (typeof seen.generated === "string") return out;
  const input = base.data as Record<string, unknown>;
  for (const [k, field] of Object.entries(shape)) {
    if (input[k] === undefined) continue;
    const variant = run.vary(input, k, input[k], alternatives(field, input[k]));
    seen.fields.push(variant ? { key: k, tried: show(variant.value), changed: await run.generate(variant.data) } : { key: k });
  }
  return out;
}

// ---------- zod 3 schemas, read without trusting them ----------

type ZodLike = { _def?: Record<string, unknown>; safeParse?: (v: unknown) => { success: boolean } };

function fieldAccepts(field: unknown, v: unknown): boolean {
  try {
    return (field as ZodLike).safeParse?.(v).success === true;
  } catch {
    return false;
  }
}

/** The schema under optional/default/nullable/effects wrappers. */
function unwrap(s: unknown): ZodLike | undefined {
  let cur = s as ZodLike | undefined;
  for (let depth = 0; depth < 20; depth++) {
    const d = cur?._def;
    if (!d) break;
    const t = d.typeName;
    const next = d.innerType ?? (t === "ZodEffects" ? d.schema : t === "ZodPipeline" ? d.in : t === "ZodBranded" ? d.type : undefined);
    if (!next) break;
    cur = next as ZodLike;
  }
  return cur;
}

function numberBounds(t: ZodLike): { min?: number; max?: number; int: boolean } {
  const checks = (t._def?.checks as { kind: string; value?: number }[] | undefined) ?? [];
  return {
    min: checks.find((c) => c.kind === "min")?.value,
    max: checks.find((c) => c.kind === "max")?.value,
    int: checks.some((c) => c.kind === "int"),
  };
}

function enumValues(t: ZodLike): unknown[] {
  const d = t._def ?? {};
  if (d.typeName === "ZodEnum" && Array.isArray(d.values)) return d.values;
  if (d.typeName === "ZodNativeEnum" && typeof d.values === "object" && d.values) return Object.values(d.values);
  if (d.typeName === "ZodLiteral") return [d.value];
  if (d.typeName === "ZodUnion" && Array.isArray(d.options)) return d.options.flatMap((o) => enumValues(unwrap(o) ?? {}));
  return [];
}

/** Values to fill a required field with when nothing says what it means. */
function placeholders(field: unknown): unknown[] {
  const t = unwrap(field) ?? {};
  const { min, max } = numberBounds(t);
  return ["flow-proof", MEDIA_URL, ...enumValues(t), 1, 0, min, max, true, false].filter((v) => v !== undefined);
}

/** Other values for a field currently `current`, by its schema's type. */
function alternatives(field: unknown, current: unknown): unknown[] {
  const t = unwrap(field) ?? {};
  const list: unknown[] = [...enumValues(t)];
  if (typeof current === "number") {
    const { min, max, int } = numberBounds(t);
    list.push(current + 1, current - 1, ...(int ? [] : [current + 0.1, current - 0.1]), min, max);
  } else if (typeof current === "boolean") list.push(!current);
  else if (typeof current === "string") list.push("flow-proof", "flow-proof-2", MEDIA_URL);
  return [...new Set(list)].filter((v) => v !== undefined && !isDeepStrictEqual(v, current));
}

// ---------- the process ----------

async function main() {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const job = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Job;
  // What the permission model leaves open: signals to any process of the user. SIGUSR1 opens a Node
  // process's inspector (flow's own, then reachable over the network), so the file gets no way to send one.
  for (const k of ["kill", "_kill", "_debugProcess", "_debugEnd"]) delete (process as unknown as Record<string, unknown>)[k];
  const answer = Buffer.from(JSON.stringify(await observe(job)));
  // fd 3, not stdout: a console.log in the file cannot garble the answer
  for (let at = 0; at < answer.length;) at += writeSync(3, answer, at);
  // timers or handles the file left behind must not keep the process (and the proof) waiting
  process.exit(0);
}

await main();
