// Hugging Face file URLs, read once and strictly: what the token may be sent to.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hfPartsProblem, hfResolveUrl, isHfUrl, parseHfUrl } from "../../lib/comfy/hf-url.ts";
import { hfClient, HfError } from "../../plugins/shared/hf.ts";
import { startFakeUpstream } from "../support/fake-upstream.ts";

test("parseHfUrl: resolve and blob URLs of models, datasets and spaces, into repo / revision / path", () => {
  const good: [string, { repo: string; revision: string; path: string }][] = [
    [
      "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors",
      { repo: "black-forest-labs/FLUX.1-dev", revision: "main", path: "flux1-dev.safetensors" },
    ],
    [
      "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/blob/main/split_files/vae/wan_2.1_vae.safetensors?download=true",
      {
        repo: "Comfy-Org/Wan_2.1_ComfyUI_repackaged",
        revision: "main",
        path: "split_files/vae/wan_2.1_vae.safetensors",
      },
    ],
    ["https://hf.co/datasets/org/data/resolve/v1.0/a%20b/c.bin#x", { repo: "datasets/org/data", revision: "v1.0", path: "a b/c.bin" }],
    [
      "https://huggingface.co/spaces/o/s/resolve/0123456789abcdef0123456789abcdef01234567/m.pt",
      { repo: "spaces/o/s", revision: "0123456789abcdef0123456789abcdef01234567", path: "m.pt" },
    ],
    // dot segments a URL parser removes leave a path inside the same repository
    ["https://huggingface.co/o/r/resolve/main/sub/../m.safetensors", { repo: "o/r", revision: "main", path: "m.safetensors" }],
  ];
  for (const [url, want] of good) assert.deepEqual(parseHfUrl(url), { ok: true, value: want }, url);
});

test("parseHfUrl: refused with a reason when not clean: malformed escapes, dot segments, encoded slashes, empty segments, ...", () => {
  const bad: [string, RegExp][] = [
    ["https://huggingface.co/org/repo/resolve/main/x%E0%A4%A.safetensors", /malformed %-escape/],
    ["https://huggingface.co/org/repo/resolve/main/%ZZ.safetensors", /malformed %-escape/],
    ["https://huggingface.co/org/repo/resolve/main/..%2F..%2Fapi%2Fwhoami-v2", /encoded slash/],
    ["https://huggingface.co/org/repo/resolve/main/sub%2Fx.safetensors", /encoded slash/],
    ["https://huggingface.co/org/repo/resolve/main/sub%5C..%5Cx.safetensors", /encoded slash or backslash/],
    ["https://huggingface.co/org/repo/resolve/main/%2e%2e/%2e%2e/api/whoami-v2", /not <owner>\/<repo>\/resolve/],
    ["https://huggingface.co/org/repo/resolve/main/../../../api/whoami-v2", /not <owner>\/<repo>\/resolve/],
    ["https://huggingface.co/org%2Fother/repo/resolve/main/x.safetensors", /repository .* is not owner\/name/],
    ["https://huggingface.co/org/re%5Cpo/resolve/main/x.safetensors", /repository .* is not owner\/name/],
    ["https://huggingface.co/org/repo/resolve/refs%2Fpr%2F1/x.safetensors", /revision .* is not one plain segment/],
    ["https://huggingface.co/org/repo/resolve/..%2f/x.safetensors", /revision/],
    ["https://huggingface.co/org/repo/resolve/main//x.safetensors", /segment "" not allowed/],
    ["https://huggingface.co/org/repo/resolve/main/x/", /segment "" not allowed/],
    ["https://huggingface.co/org/repo/resolve/main/a%00b.safetensors", /control character/],
    ["https://huggingface.co/org/repo/resolve/main/", /segment "" not allowed|not <owner>/],
    ["https://huggingface.co/org/repo/tree/main/x.safetensors", /not <owner>\/<repo>\/resolve/],
    ["https://huggingface.co/org/repo", /not <owner>\/<repo>\/resolve/],
    ["https://huggingface.co/api/whoami-v2", /not <owner>\/<repo>\/resolve/],
  ];
  for (const [url, why] of bad) {
    const r = parseHfUrl(url);
    assert.ok(!r.ok, `${url} accepted as ${JSON.stringify(r)}`);
    assert.match(r.reason, why, url);
  }
  assert.equal(isHfUrl("https://HuggingFace.co/x"), true);
  assert.equal(isHfUrl("https://huggingface.co.evil.example/x"), false);
  assert.equal(isHfUrl("https://cdn-lfs.huggingface.co/x"), false, "a CDN link is a plain URL: it never gets the token");
});

test("hfResolveUrl: built from the parts, every segment encoded, on the configured base", () => {
  assert.equal(
    hfResolveUrl("http://mirror.lan/hf/", { repo: "o/r", revision: "v1", path: "a b/c#d.safetensors" }),
    "http://mirror.lan/hf/o/r/resolve/v1/a%20b/c%23d.safetensors",
  );
  assert.equal(hfPartsProblem({ repo: "o/r", revision: "main", path: "../../api/whoami-v2" }), 'path segment ".." not allowed');
  assert.match(hfPartsProblem({ repo: "o/r/x", revision: "main", path: "m" })!, /not owner\/name/);
  assert.match(hfPartsProblem({ repo: "o/r", revision: "refs/pr/1", path: "m" })!, /revision/);
  assert.equal(hfPartsProblem({ repo: "datasets/o/r", revision: "main", path: "a/b.bin" }), undefined);
});

test("Hugging Face lookups (lock, models): decoded parts with '..' or a '/' in the revision are refused, nothing sent", async () => {
  const f = await startFakeUpstream({ hfFiles: { "o/r/m.safetensors": { size: 5, sha256: "a".repeat(64) } } });
  try {
    const retry = { tries: 1, baseMs: 0, maxMs: 0 };
    const hub = hfClient({ hubUrl: `${f.url}/hf`, token: "hf_secret", allowHosts: [new URL(f.url).host], retry });
    // what model-deps decodes from .../resolve/main/..%2F..%2Fapi%2Fwhoami-v2 and from refs%2Fpr%2F1
    for (const src of [
      { repo: "o/r", revision: "main", path: "../../api/whoami-v2" },
      { repo: "o/r", revision: "../../api", path: "whoami-v2" },
      { repo: "o/r/../..", revision: "main", path: "m.safetensors" },
    ]) {
      await assert.rejects(hub.fileFacts(src), (e: unknown) => e instanceof HfError && /not a clean Hugging Face file/.test(e.message));
      await assert.rejects(hub.checkAccess(src), (e: unknown) => e instanceof HfError && /not a clean Hugging Face file/.test(e.message));
    }
    assert.deepEqual(f.log, [], "a request (with the token) went out");
    assert.deepEqual(await hub.fileFacts({ repo: "o/r", revision: "main", path: "m.safetensors" }), { size: 5, sha256: "a".repeat(64) });
    assert.deepEqual(f.log, ["POST /hf/api/models/o/r/paths-info/main"]);
  } finally {
    await f.close();
  }
});
