// flow's record of what it set up on a host (`<remoteDir>/host.json`), read at every connect,
// so later tasks find what setup chose (the data root) without the user repeating it.
import { hostPath } from "./paths.ts";

export function readHostRecordCommand(remoteDir: string): string {
  return `cat ${hostPath(remoteDir, "host.json")} 2>/dev/null || true`;
}

/** Merge `patch` into the record: stdin carries the new JSON, written atomically. */
export function writeHostRecordCommand(remoteDir: string): string {
  const file = hostPath(remoteDir, "host.json");
  const dir = hostPath(remoteDir);
  return `mkdir -p -- ${dir} && tmp=$(mktemp ${dir}/.host.json.XXXXXX) && cat > "$tmp" && mv "$tmp" ${file}`;
}
