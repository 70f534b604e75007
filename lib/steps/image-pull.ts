// The image pull as a step of its own: the longest wait of a first setup (the comfyui-api image is
// 10+ GB) shows its bytes, speed and ETA in the task tree and as `--json` data events, and a pull
// that cannot reach its registry fails naming it. Call it before whatever runs the image.
import { StringDecoder } from "node:string_decoder";
import { TaskError, type StepStatus, type TaskContext } from "../task.ts";
import { imagePresentCommand } from "../commands/docker.ts";
import { LineSplitter } from "../facts/logs.ts";
import {
  classifyPullError,
  parseImageRef,
  pulledNote,
  pullCommand,
  pullExitMessage,
  pullFailureMessage,
  PullTracker,
  type PullSnapshot,
} from "../commands/docker-pull.ts";
import { shQuote } from "../quote.ts";

const root = { sudo: true } as const;

export interface EnsureImageOptions {
  /** the step's title (default `image <image>`) */
  title?: string;
  /** least time between two progress lines / data events (default 500 ms) */
  progressEveryMs?: number;
  /** give up when the engine has said nothing for this long (default 300 s; it says "Retrying" every second while it retries) */
  stallSeconds?: number;
  /** the clock (tests) */
  now?: () => number;
}

/** What `--json` consumers get as `data.pull` while the pull runs, and once more at its end. */
export interface PullData {
  image: string;
  registry: string;
  phase: PullSnapshot["phase"];
  layers: number;
  layersDone: number;
  layersExisting: number;
  bytesDone: number;
  bytesTotal: number;
  /** false while some layer has not told its size: bytesTotal and eta are then lower bounds */
  sizesKnown: boolean;
  /** bytes per second over the last 10 s */
  speed: number;
  /** seconds, null without a speed */
  eta: number | null;
  elapsed: number;
}

/** Every image a task ensured on a host, so the recap's `images` keeps them all (data events merge shallowly). */
const seen = new WeakMap<TaskContext, Record<string, { status: "present" | "pulled"; bytes?: number; seconds?: number }>>();

function record(ctx: TaskContext, image: string, entry: { status: "present" | "pulled"; bytes?: number; seconds?: number }): void {
  const images = { ...seen.get(ctx), [image]: entry };
  seen.set(ctx, images);
  ctx.emit({ images });
}

/**
 * Step `image <image>`: "ok (present)" when the engine has it; in a dry run "would change"; else the
 * pull, streamed, ending "changed (pulled 10.2 GB in 312s (32.7 MB/s))". A failure names the registry.
 */
export async function ensureImage(ctx: TaskContext, image: string, opts: EnsureImageOptions = {}): Promise<StepStatus> {
  return ctx.ensure({
    title: opts.title ?? `image ${image}`,
    check: async () => {
      const { registry } = parseImageRef(image); // a bad reference fails the step before anything runs
      if ((await ctx.exec(imagePresentCommand(image), root)).code === 0) {
        record(ctx, image, { status: "present" });
        return { ok: true, note: "present" };
      }
      return { ok: false, note: `not present: pull from ${registry}` };
    },
    apply: () => pullImage(ctx, image, opts),
  });
}

/** Pulls `image` with progress whether or not the engine has it (ensureImage asks first); returns the step's note. */
export async function pullImage(ctx: TaskContext, image: string, opts: EnsureImageOptions = {}): Promise<string> {
  const now = opts.now ?? Date.now;
  const every = opts.progressEveryMs ?? 500;
  const { registry, repository } = parseImageRef(image);
  const short = repository.split("/").pop()!;
  const tracker = new PullTracker({ now });
  const data = (s: PullSnapshot): PullData => ({
    image,
    registry,
    phase: s.phase,
    layers: s.layers,
    layersDone: s.layersDone,
    layersExisting: s.layersExisting,
    bytesDone: s.bytesDone,
    bytesTotal: s.bytesTotal,
    sizesKnown: s.sizesKnown,
    speed: s.speedBytesPerSec,
    eta: s.etaSeconds === null ? null : Math.round(s.etaSeconds),
    elapsed: Math.round(s.elapsedSeconds * 10) / 10,
  });
  let last = -Infinity;
  const report = (force = false) => {
    const t = now();
    if (!force && t - last < every) return;
    last = t;
    const s = tracker.snapshot();
    ctx.progress(`pull ${short}: ${s.text}`);
    ctx.emit({ pull: data(s) });
  };

  // a stream that goes quiet for stallSeconds is given up (the engine says something every second while it works)
  const stall = new AbortController();
  const stallMs = (opts.stallSeconds ?? 300) * 1000;
  let stallTimer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => stall.abort(), stallMs);
  };
  // between lines too, so a slowing download shows its speed falling
  const tick = setInterval(() => report(), Math.max(every, 1000));
  tick.unref();
  const decoder = new StringDecoder("utf8");
  const lines = new LineSplitter((line) => {
    tracker.feed(line);
    report();
  });
  arm();
  let r;
  try {
    r = await ctx.exec(pullCommand(image), {
      ...root,
      signal: stall.signal,
      onStdout: (chunk) => {
        arm();
        lines.push(decoder.write(chunk));
      },
    });
  } finally {
    clearTimeout(stallTimer);
    clearInterval(tick);
  }
  lines.push(decoder.end());
  lines.end();
  const s = tracker.snapshot();
  report(true);

  if (stall.signal.aborted)
    throw new TaskError(
      `pull of ${image} from ${registry} stalled: the engine said nothing for ${stallMs / 1000}s ` +
        `(${s.text}); check the box's network / DNS / firewall to ${registry}`,
    );
  if (s.error) {
    // the API pull carries no credentials; the docker CLI uses root's `docker login` for a private image
    if (classifyPullError(s.error) === "auth" && (await ctx.exec(`docker pull -q ${shQuote(image)} >/dev/null`, root)).code === 0) {
      record(ctx, image, { status: "pulled" });
      return "pulled with the box's docker login (no progress for a private image)";
    }
    throw new TaskError(pullFailureMessage(image, s.error));
  }
  if (r.code !== 0) throw new TaskError(`pull of ${image}: ${pullExitMessage(r.code, r.stderr)}`);
  if (tracker.httpStatus !== 200)
    throw new TaskError(pullFailureMessage(image, `the Docker engine answered HTTP ${tracker.httpStatus ?? "?"}`));
  if (!tracker.finished && (await ctx.exec(imagePresentCommand(image), root)).code !== 0)
    throw new TaskError(`pull of ${image} from ${registry}: the engine's stream ended before the pull did (${s.text})`);
  const seconds = s.elapsedSeconds;
  record(ctx, image, { status: "pulled", bytes: s.bytesDone, seconds: Math.round(seconds * 10) / 10 });
  return s.bytesDone ? pulledNote(s.bytesDone, seconds) : "present after all (the engine had every layer)";
}
