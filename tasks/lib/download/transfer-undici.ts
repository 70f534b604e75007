// One range (or the whole file) through undici: the first request of a file (redirects, auth, error
// pages, whether Range works), and every request to a server the range connections leave to it.
import type { FileDownload } from "./file.ts";
import {
  MismatchError,
  RetryableError,
  checkContentRange,
  contentLength,
  contentRange,
  discard,
  open,
  shown,
  type Opened,
} from "./http.ts";
import type { Assignment } from "./scheduler.ts";
import { Writer } from "./writer.ts";

export async function fetchUndici(f: FileDownload, a: Assignment): Promise<void> {
  const { part, sched } = f;
  const res = await open(f.url, {
    dispatcher: f.agent,
    headers: f.headers,
    range: sched.single ? undefined : [a.pos, a.end - 1],
    signal: a.ctrl.signal,
    timeoutMs: f.s.timeoutMs,
    label: f.label,
    policy: f.s.policy,
  });
  if (!f.resolved) f.resolvedTo(res.url, res.sendHeaders);
  if (res.status === 206) {
    try {
      checkContentRange(res.headers, a.pos, a.end - 1, false, part.size, res.url, f.label);
    } catch (e) {
      discard(res.body);
      throw e;
    }
    if (!sched.rangeOk) f.rangesWork();
  } else {
    const len = contentLength(res.headers);
    if (part.size !== undefined && len !== undefined && len !== part.size) {
      discard(res.body);
      throw new MismatchError(`size mismatch: expected ${part.size} bytes, the server sends ${len} (${f.label})`);
    }
    if (!sched.single) {
      if (sched.rangeOk) {
        discard(res.body);
        throw new RetryableError(`the server ignored a Range request (HTTP 200) from ${shown(res.url)}`);
      }
      // one connection, from byte 0 (nothing on disk is usable)
      f.emit({ type: "log", message: `${f.name}: the server does not support Range requests; one connection, from the start` });
      sched.goSingle(a);
    }
    if (part.size === undefined && len !== undefined) part.size = len;
  }
  const w = new Writer(part, a, part.batch);
  try {
    await receive(res.body, a, w, res.status === 206 ? contentRange(res.headers)!.end + 1 : Infinity, f.label);
  } finally {
    w.flush();
  }
  if (sched.single) {
    if (part.size === undefined) part.size = a.pos;
    else if (a.pos < part.size) throw new RetryableError(`connection closed after ${a.pos} of ${part.size} bytes from ${shown(res.url)}`);
  }
}

/**
 * Body bytes into the writer until the assignment's end (which may move down while we read).
 * 'data' events rather than for-await: one promise per 64 KiB chunk is measurable CPU here.
 */
function receive(body: Opened["body"], a: Assignment, w: Writer, asked: number, label: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let over = false;
    const finish = (err?: unknown) => {
      if (over) return;
      over = true;
      body.off("data", onData);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer) => {
      if (over) return;
      try {
        w.accept(chunk);
      } catch (e) {
        discard(body);
        return finish(e);
      }
      if (a.pos >= a.end) {
        // the rest was handed to another connection: stop this response (costs the connection).
        // Otherwise the response ends by itself and the connection is kept for the next range.
        if (a.end < asked) {
          finish();
          discard(body);
        }
      }
    };
    const closed = () => new RetryableError(`connection closed at byte ${a.pos} of a range ending at ${a.end} (${label})`);
    body.on("data", onData);
    body.once("end", () => finish());
    body.once("error", (e) => finish(e));
    body.once("close", () => finish(a.pos >= a.end ? undefined : closed()));
  });
}
