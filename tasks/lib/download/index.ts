// Public surface of the download engine (bundled into tasks/models-download.ts).
export { downloadAll, insideRoot, type DownloadOptions } from "./engine.ts";
export { verifiedPath, hashFile } from "./hash.ts";
export { partPath, statePath } from "./state.ts";
export type * from "./types.ts";
