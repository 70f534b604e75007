// models:organize: facts (the host's model files; sha256 of files that share a size) -> plan
// (moves into the folders the workflows expect, hardlinks for identical files) -> apply.
import type { TaskContext } from "../../lib/index.ts";
import { hashCommand, linkCommand, moveCommand } from "./commands.ts";
import { fmtBytes, neededModels, planLinks, planMoves, sameSizeGroups, type Move, type ScanFile } from "./plan.ts";
import { loadDeps, modelsRoot, scanHost } from "./facts.ts";
import type { OrganizeOptions } from "./index.ts";

/** The links, planned on the tree as it will be after the moves (a moved file keeps its hash). */
export function linksAfterMoves(
  files: ScanFile[],
  moves: Move[],
  hashes: Map<string, string>,
): { after: ScanFile[]; links: { keep: string; replace: string }[] } {
  const after: ScanFile[] = files.filter((f) => !moves.some((m) => !m.link && m.from === f.path));
  const known = new Map(hashes);
  for (const m of moves) {
    const src = files.find((f) => f.path === m.from)!;
    after.push({ ...src, path: m.to, links: m.link ? src.links + 1 : src.links });
    if (known.has(m.from)) known.set(m.to, known.get(m.from)!);
  }
  return { after, links: planLinks(sameSizeGroups(after), known) };
}

export async function runOrganize(ctx: TaskContext, o: OrganizeOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  const root = modelsRoot(ctx);
  const scan = await scanHost(ctx);
  const { needed } = neededModels(deps);
  // hash only files that share a size with another file: equal hashes need equal sizes
  const groups = sameSizeGroups(scan.files);
  const hashes = new Map<string, string>();
  if (groups.length) {
    await ctx.step("hash same-size files", async () => {
      const paths = [...new Set(groups.flat().map((f) => f.path))];
      const out = (await ctx.sh(hashCommand(root, paths))).split("\n");
      paths.forEach((p, i) => hashes.set(p, out[i]?.trim() || "-"));
      return { status: "ok", note: `${paths.length} files` };
    });
  }
  const moves = planMoves(scan.files, needed);
  const { after, links } = linksAfterMoves(scan.files, moves, hashes);
  await ctx.step("move models into their folders", async () => {
    for (const m of moves) ctx.log(`${ctx.dryRun ? "would " : ""}${m.link ? "link" : "move"} ${m.from} -> ${m.to}`);
    if (!moves.length) return { status: "ok", note: "every needed model is where ComfyUI looks" };
    if (ctx.dryRun) return { status: "changed", note: `would move ${moves.length}` };
    const plain = moves.filter((m) => !m.link);
    if (plain.length)
      await ctx.sh(
        moveCommand(
          root,
          plain.map((m) => ({ from: m.from, to: m.to })),
        ),
      );
    const linked = moves.filter((m) => m.link);
    if (linked.length)
      await ctx.sh(
        linkCommand(
          root,
          linked.map((m) => ({ keep: m.from, replace: m.to })),
        ),
      );
    return { status: "changed", note: `${plain.length} moved, ${linked.length} linked` };
  });
  await ctx.step("hardlink identical files", async () => {
    const size = (p: string) => after.find((f) => f.path === p)?.size ?? 0;
    for (const l of links) {
      ctx.log(`${ctx.dryRun ? "would link" : "link"} ${l.replace} -> ${l.keep} (identical, ${fmtBytes(size(l.replace))})`);
    }
    if (!links.length) return { status: "ok", note: "no duplicates" };
    const saved = links.reduce((n, l) => n + size(l.replace), 0);
    if (ctx.dryRun) return { status: "changed", note: `would link ${links.length}, saving ${fmtBytes(saved)}` };
    await ctx.sh(linkCommand(root, links));
    return { status: "changed", note: `${links.length} linked, ${fmtBytes(saved)} saved` };
  });
  ctx.emit({ modelsOrganize: { moves, links } });
}
