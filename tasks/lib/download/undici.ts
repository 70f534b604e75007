// The two parts of undici the download script uses. Its index also loads fetch, WebSocket, caches
// and mocks: 1 MB more to parse at every start of the pushed script (+0.14 s here, against
// +0.03 s for these two). undici is pinned to 7.x in package.json; these are its own module paths.
import { setFlagsFromString } from "node:v8";
import type { Agent as AgentClass, Dispatcher, buildConnector as buildConnectorType } from "undici";
// @ts-expect-error undici ships no types for its inner modules; the casts below give them
import AgentImpl from "undici/lib/dispatcher/agent.js";
// @ts-expect-error as above
import requestImpl from "undici/lib/api/api-request.js";
// @ts-expect-error as above
import buildConnectorImpl from "undici/lib/core/connect.js";

// undici's HTTP parser is llhttp compiled to wasm. V8 compiles all of it with Liftoff at the first
// request, then again with TurboFan on a background thread: ~0.25 s of a core, just while the
// connections ramp up (on 2 cores, 1 GiB at 640 MB/s: median 2.07 s before, 1.94 s after). The bulk
// bytes bypass llhttp (range-client.ts): Liftoff's code, compiled per function as first called
// (14 ms -> 4 ms before the first request goes out), is ample for the few responses it parses.
// Only wasm compiled after these lines is affected, and llhttp is the only wasm the script runs.
setFlagsFromString("--liftoff-only");
setFlagsFromString("--wasm-lazy-compilation");

export const Agent = AgentImpl as typeof AgentClass;
/** undici's own socket factory (net / tls connect with its timeout), for a connector that wraps it. */
export const buildConnector = buildConnectorImpl as typeof buildConnectorType;
export type { Dispatcher };
export type ConnectorFn = buildConnectorType.connector;

type RequestOptions = Omit<Dispatcher.RequestOptions, "origin" | "path" | "method"> & {
  dispatcher: Dispatcher;
  method?: Dispatcher.HttpMethod;
};

/** undici's request(url, options), without its index. */
export function request(url: string, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return (requestImpl as (this: Dispatcher, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>).call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: u.pathname + u.search,
    method: opts.method ?? "GET",
  });
}
