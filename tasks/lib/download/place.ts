// A complete .part takes the model's name only once it is proven: its size, then its sha256 (or,
// without one, a first look that it is not an error page), then a rename over the target.
import { fdatasync, fstatSync, renameSync, statSync } from "node:fs";
import type { FileDownload } from "./file.ts";
import { writeVerified } from "./hash.ts";
import { FatalError } from "./http.ts";
import { sniff } from "./sniff.ts";

/** Check size and sha256, then rename into place. true, or the reason it was not placed. */
export async function verifyAndPlace(f: FileDownload): Promise<true | string> {
  const { part } = f;
  const st = fstatSync(part.fd);
  const size = part.size ?? st.size;
  part.size = size;
  if (st.size !== size || part.doneBytes < size) {
    part.discard();
    return `size mismatch: expected ${size} bytes, have ${part.doneBytes}`;
  }
  if (!f.sha) {
    // nothing proves these bytes are the model: an error page must not take its name (a sha256 would have)
    const why = sniff(part.readHead(), f.target, size);
    if (why) {
      part.discard();
      throw new FatalError(`${why}: ${f.label}`);
    }
  }
  const hashing = part.digest(size);
  if (hashing) {
    f.verifying = true;
    f.emit({ type: "file", status: "verifying", name: f.name, target: f.target });
    const got = await hashing.finally(() => (f.verifying = false));
    if (got !== f.sha) {
      part.discard();
      return `sha256 mismatch: expected ${f.sha}, got ${got}`;
    }
  }
  if (f.s.fsync) {
    // the rename must not reach the disk before the data it names (power loss, not just a kill);
    // off by default: 1 GiB of dirty pages takes ~0.6 s to flush here, and a kill needs no flush
    await new Promise<void>((ok, fail) => fdatasync(part.fd, (e) => (e ? fail(e) : ok())));
  }
  part.closeFd();
  renameSync(part.path, f.target);
  part.dropState();
  if (f.sha) writeVerified(f.target, f.sha, statSync(f.target));
  return true;
}
