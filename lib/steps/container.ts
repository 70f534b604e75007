// A container as its spec says, Kamal-style: the label with the spec's hash tells whether the one
// running is it; only a missing, stopped or different container is (re-)created.
import type { StepStatus, TaskContext } from "../task.ts";
import { containerFact, parseContainerFact, replaceContainer, specHash, type ContainerSpec } from "../commands/docker.ts";

const root = { sudo: true } as const;

export async function ensureContainerSpec(
  ctx: TaskContext,
  spec: ContainerSpec,
  title = `container ${spec.name} (${spec.image})`,
): Promise<StepStatus> {
  const want = specHash(spec);
  return ctx.ensure({
    title,
    check: async () => {
      const fact = parseContainerFact(await ctx.sh(containerFact(spec.name), root));
      if (!fact) return { ok: false, note: "missing" };
      if (fact.hash !== want) return { ok: false, note: `spec changed (${fact.hash || "unlabelled"} -> ${want}): re-create` };
      if (fact.state !== "running") return { ok: false, note: `${fact.state}: re-create` };
      return { ok: true, note: `running, spec ${want}` };
    },
    apply: async () => {
      await ctx.sh(replaceContainer(spec), root);
      return `created, spec ${want}`;
    },
  });
}
