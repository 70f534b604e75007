// The CDN of `npm run bench:download`, in a process of its own: forked by bench/download.ts with an
// IPC channel. It must not share a process with the timing harness: the harness forks every tool
// it times, and forking a process that holds the 1 GiB file costs ~50 ms more per spawn here (its
// page tables are copied), a cost the tools would be charged for.
// argv: the file to serve (read into memory once). Messages: rate, reset, stats, killAt, close.
import { readFileSync } from "node:fs";
import { startFakeHub } from "../test/support/fake-hub.ts";

type Msg =
  { cmd: "rate"; rate: number } | { cmd: "reset" } | { cmd: "stats" } | { cmd: "killAt"; bytes: number; pid: number } | { cmd: "close" };

const send = (m: unknown) => process.send!(m);
const content = readFileSync(process.argv[2]!);
const hub = await startFakeHub({ files: { "model.bin": content } });
const url = `${hub.url}/files/model.bin`;
await fetch(url, { method: "HEAD" }); // the server hashes the file once for its ETag: not during a run

// killAt: SIGKILL a process once the server has sent this many bytes, then answer with the bytes
let kill: NodeJS.Timeout | undefined;

process.on("message", (m: Msg) => {
  if (m.cmd === "rate") {
    hub.faults.rate = m.rate;
    send({ ok: true });
  } else if (m.cmd === "reset") {
    hub.resetStats();
    send({ ok: true });
  } else if (m.cmd === "stats") {
    send({ bytes: hub.stats.bytes });
  } else if (m.cmd === "killAt") {
    clearInterval(kill);
    kill = setInterval(() => {
      if (hub.stats.bytes < m.bytes) return;
      clearInterval(kill);
      try {
        process.kill(m.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
      send({ bytes: hub.stats.bytes });
    }, 1);
  } else if (m.cmd === "close") {
    void hub.close().then(() => process.exit(0));
  }
});
send({ url });
