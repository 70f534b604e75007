// Pushed to the host and run detached: downloads the models a job lists (tokens arrive inside the
// job's per-file headers via job.json, never on argv), reporting progress as JSON lines.
import { runScript } from "./lib/run.ts";
import { downloadAll, type DownloadJob, type DownloadSummary } from "./lib/download/index.ts";
import { bytesStillNeeded, freeBytes } from "./lib/disk-space.ts";

const GB = 1024 ** 3;

await runScript<DownloadJob, DownloadSummary>(async (run) => {
  // fail before the first byte when the files cannot fit (sizes known from the lookup), not at 90%
  const need = bytesStillNeeded(run.job.files);
  const free = need > 0 ? await freeBytes(run.job.modelsRoot) : undefined;
  if (free !== undefined && need > free) {
    throw new Error(
      `not enough space on the models volume (${run.job.modelsRoot}): ` +
        `${(need / GB).toFixed(1)} GB to download, ${(free / GB).toFixed(1)} GB free`,
    );
  }
  const summary = await downloadAll(run.job, { onProgress: (event) => run.progress(event) });
  run.progress({
    type: "summary",
    downloaded: summary.downloaded.length,
    skipped: summary.skipped.length,
    failed: summary.failed.map((f) => ({ name: f.name, reason: f.reason })),
    fetched: summary.fetched,
    seconds: summary.seconds,
  });
  // exit 0 even when files failed: runRemoteScript drops the result of a non-zero exit, and the
  // plugin needs the summary (reasons per file) to show them red
  return summary;
});
