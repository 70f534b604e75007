// Public surface of the download engine (bundled into tasks/models-download.ts).
export { downloadAll, type DownloadOptions } from "./job.ts";
export { insideRoot } from "./targets.ts";
export { verifiedPath, hashFile } from "./hash.ts";
export { partPath, statePath } from "./state.ts";
export type * from "./types.ts";
