// Progress: each file's speed over the last few seconds, and the job's event that adds them up.
import type { DownloadEvent, FileProgress } from "./types.ts";

/** Bytes per second over the last ~3 s of samples (one sample per progress tick). */
export class SpeedMeter {
  private samples: [number, number][] = [];

  /** Record `received` now; the speed since the oldest sample kept. */
  sample(received: number): number {
    const now = Date.now();
    this.samples.push([now, received]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > 3000) this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    return now > t0 ? Math.round(((received - b0) * 1000) / (now - t0)) : 0;
  }
}

export function fileProgress(name: string, done: number, total: number, speed: number): FileProgress {
  return { name, done, total, speed, eta: speed > 0 && total ? Math.round((total - done) / speed) : null };
}

/** The job's progress event: the files in flight, and their sums. */
export function jobProgress(files: FileProgress[]): DownloadEvent {
  const done = files.reduce((n, f) => n + f.done, 0);
  const total = files.reduce((n, f) => n + f.total, 0);
  const speed = files.reduce((n, f) => n + f.speed, 0);
  return { type: "progress", files, done, total, speed, eta: speed > 0 ? Math.round((total - done) / speed) : null };
}
