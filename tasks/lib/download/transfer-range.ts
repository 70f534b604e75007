// The bulk path: once a file's final URL has answered 206, each worker asks for its ranges over its
// own kept-alive connection (range-client.ts), written straight from the connection's read buffer.
import type { FileDownload } from "./file.ts";
import { checkContentRange } from "./http.ts";
import { RangeConnection } from "./range-client.ts";
import type { Assignment } from "./scheduler.ts";
import { Writer } from "./writer.ts";

/** A worker's own connection for the range path, kept across its requests. */
export interface Slot {
  conn?: RangeConnection;
}

/** One range over the worker's connection; throws FallbackError for a response it leaves to undici. */
export async function fetchRange(f: FileDownload, a: Assignment, slot: Slot): Promise<void> {
  const url = new URL(f.url);
  if (slot.conn?.origin !== url.origin) {
    slot.conn?.close();
    slot.conn = new RangeConnection(url.origin, f.s.timeoutMs, f.tls ?? {}, f.s.policy);
  }
  const asked = a.end;
  // the chunks are views of the connection's read buffer (256 KiB reads): written as they come
  const w = new Writer(f.part, a, 0);
  try {
    await slot.conn.get({
      url,
      headers: f.headers,
      start: a.pos,
      end: a.end - 1,
      signal: a.ctrl.signal,
      label: f.label,
      head: ({ headers }) => checkContentRange(headers, a.pos, asked - 1, true, f.part.size, f.url, f.label),
      // false once the rest was handed to another connection: stop (costs this connection)
      body: (chunk) => w.accept(chunk) || a.end >= asked,
    });
  } finally {
    w.flush();
  }
}
