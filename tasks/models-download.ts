// Pushed to the host and run detached: downloads the models a job lists (tokens arrive inside the
// job's per-file headers via job.json, never on argv), reporting progress as JSON lines.
import { runScript } from "./lib/run.ts";
import { downloadAll, type DownloadJob, type DownloadSummary } from "./lib/download/index.ts";

await runScript<DownloadJob, DownloadSummary>(async (run) => {
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
