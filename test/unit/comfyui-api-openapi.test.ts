// What comfyui-api serves, judged from its own answers: the OpenAPI document against the project's
// workflows, a smoke request body from an input schema, outputs of a response, the log line
// about a workflow it skipped; and the host facts api:workflows reads in one round trip.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkOpenApi,
  inputFromSchema,
  loadFailureOf,
  outputsOf,
  parseApiLog,
  workflowEndpoints,
} from "../../lib/comfy/comfyui-api-openapi.ts";
import { parseDockerTime, parseFacts, parseGets, parsePost, restartDue } from "../../plugins/comfyui-api/commands.ts";
import { verifyTable } from "../../plugins/comfyui-api/verify.ts";

// The shape of comfyui-api 1.18.0's GET /docs/json (fastify-swagger over its zod schemas), trimmed.
const body = (input: Record<string, unknown>) => ({
  summary: "x",
  requestBody: {
    content: {
      "application/json": {
        schema: { type: "object", properties: { id: { type: "string" }, webhook: { type: "string" }, input }, required: ["input"] },
      },
    },
  },
  responses: {},
});
const DOC = {
  openapi: "3.0.3",
  info: { version: "1.18.0" },
  paths: {
    "/health": { get: {} },
    "/ready": { get: {} },
    "/prompt": { post: {} },
    "/workflow/sd15/txt2img": {
      post: body({
        type: "object",
        properties: {
          prompt: { type: "string", description: "The positive prompt" },
          negative_prompt: { type: "string", default: "" },
          width: { type: "integer", minimum: 256, maximum: 2048, default: 512 },
          steps: { type: "integer", minimum: 1, maximum: 100 },
          sampler_name: { type: "string", enum: ["euler", "heun"], default: "euler" },
          strength: { type: "number", minimum: 0.5, maximum: 1 },
          mode: { type: "string", enum: ["fast", "slow"] },
          image: { type: "string", format: "uri" },
          size: { type: "object", properties: { w: { type: "integer", exclusiveMinimum: 7 } }, required: ["w"] },
          tags: { type: "array", items: { type: "string" }, minItems: 2 },
          optional_free: { type: "string" },
        },
        required: ["prompt", "steps", "strength", "mode", "image", "size", "tags"],
        additionalProperties: false,
      }),
    },
    "/workflow/flux/unet": {
      post: body({ type: "object", properties: { prompt: { type: "string", default: "a cat" }, model: { type: "string", enum: [] } } }),
    },
    "/workflow/old/gone": { post: body({ type: "object", properties: {} }) },
  },
};

test("checkOpenApi: served, missing, unexpected, and fields whose enum is empty", () => {
  assert.deepEqual([...workflowEndpoints(DOC).keys()], ["/workflow/sd15/txt2img", "/workflow/flux/unet", "/workflow/old/gone"]);
  const c = checkOpenApi(DOC, ["/workflow/sd15/txt2img", "/workflow/flux/unet", "/workflow/wan/i2v"]);
  assert.deepEqual(c, {
    served: ["/workflow/flux/unet", "/workflow/sd15/txt2img"],
    missing: ["/workflow/wan/i2v"],
    unexpected: ["/workflow/old/gone"],
    emptyEnums: [{ endpoint: "/workflow/flux/unet", field: "input.model" }],
  });
  assert.deepEqual(checkOpenApi({ nonsense: true }, ["/workflow/a"]).missing, ["/workflow/a"]);
});

test("inputFromSchema: every default, and a value within the bounds for each required field without one", () => {
  const schema = workflowEndpoints(DOC).get("/workflow/sd15/txt2img");
  assert.deepEqual(inputFromSchema(schema), {
    input: {
      prompt: "a photo of a cat",
      negative_prompt: "",
      width: 512,
      steps: 1,
      sampler_name: "euler",
      strength: 0.5,
      mode: "fast",
      image: "https://example.com/",
      size: { w: 8 },
      tags: ["a photo of a cat", "a photo of a cat"],
    },
    madeUp: ["prompt", "steps", "strength", "mode", "image", "size", "tags"],
  });
  assert.deepEqual(inputFromSchema(undefined), { input: {}, madeUp: [] });
});

test("outputsOf: images and filenames; an error body has none", () => {
  assert.deepEqual(outputsOf({ id: "1", images: ["iVBORw0KGgo="], filenames: ["1_out_00001_.png"] }), {
    images: 1,
    filenames: ["1_out_00001_.png"],
  });
  assert.deepEqual(outputsOf({ images: [] }), { images: 0, filenames: [] });
  assert.deepEqual(outputsOf({ error: "Failed to get prompt outputs" }), { images: 0, filenames: [] });
  assert.deepEqual(outputsOf("text"), { images: 0, filenames: [] });
});

test("the log line about a skipped workflow: comfyui-api's own pino line for its file, the last one", () => {
  const log = [
    "Traceback (most recent call last):",
    `{"level":30,"time":1,"msg":"Loaded workflow","workflow":"txt2img","file":"/workflows/sd15/txt2img.js"}`,
    `{"level":50,"time":2,"file":"/workflows/wan/i2v.js","error":"Cannot read properties of undefined ` +
      `(reading 'enum')","stack":"TypeError: ...","msg":"Failed to evaluate workflow file"}`,
    `{"level":40,"time":3,"file":"/workflows/odd.js","msg":"File does not export a valid Workflow object"}`,
    `{"broken json`,
  ].join("\n");
  const lines = parseApiLog(log);
  assert.equal(lines.length, 3);
  assert.equal(
    loadFailureOf(lines, "/workflows/wan/i2v.js"),
    `comfyui-api: "Failed to evaluate workflow file" (/workflows/wan/i2v.js): Cannot read properties of undefined (reading 'enum')`,
  );
  assert.equal(
    loadFailureOf(lines, "/workflows/odd.js"),
    `comfyui-api: "File does not export a valid Workflow object" (/workflows/odd.js)`,
  );
  assert.equal(loadFailureOf(lines, "/workflows/sd15/txt2img.js"), undefined, "an info line is no failure");
});

test("parseFacts: the sections of the one facts round trip", () => {
  const out = [
    "@@flow files",
    `${"a".repeat(64)}  ./sd15/txt2img.ts`,
    "@@flow models",
    "d checkpoints",
    "f checkpoints/m.safetensors",
    "@@flow marker",
    "1700000000.250000000",
    "@@flow container",
    "running 2023-11-14T22:13:21.123456789Z",
    "@@flow api 127.0.0.1:3000",
    "@@flow comfy 172.17.0.2:8188",
    "@@flow health",
    `{"version":"1.18.0","status":"healthy"}`,
    "200",
    "@@flow classes",
    "yes KSampler",
    "no Image%20Resize%20(KJ)",
    "? Other",
    "",
  ].join("\n");
  const f = parseFacts(out);
  assert.deepEqual([...f.files.keys()], ["sd15/txt2img.ts"]);
  assert.deepEqual(f.models.entries.get("checkpoints"), ["m.safetensors"]);
  assert.equal(f.changedAt, 1700000000250);
  assert.deepEqual(f.container, { state: "running", startedAt: Date.parse("2023-11-14T22:13:21.123Z") });
  assert.equal(f.api, "127.0.0.1:3000");
  assert.equal(f.comfy, "172.17.0.2:8188");
  assert.deepEqual(f.health, { status: 200, version: "1.18.0" });
  assert.deepEqual(
    [...f.classes],
    [
      ["KSampler", true],
      ["Image Resize (KJ)", false],
    ],
  );
  const down = parseFacts("@@flow container\nexited 2023-11-14T22:13:21Z\n@@flow api \n@@flow health\n\n000\n@@flow classes\n");
  assert.equal(down.api, undefined);
  assert.deepEqual(down.health, { status: 0, version: undefined });
});

test("restartDue: flow changed the folder after comfyui-api started (or it is not running)", () => {
  const started = parseDockerTime("2024-05-01T10:00:00.500000000Z");
  assert.equal(started, Date.parse("2024-05-01T10:00:00.500Z"));
  assert.ok(Number.isNaN(parseDockerTime("0001-01-01")));
  assert.equal(restartDue({ container: { state: "running", startedAt: started } }), false, "never changed by flow");
  assert.equal(restartDue({ changedAt: started - 1, container: { state: "running", startedAt: started } }), false);
  assert.equal(restartDue({ changedAt: started + 1, container: { state: "running", startedAt: started } }), true);
  assert.equal(restartDue({ changedAt: started - 1, container: { state: "exited", startedAt: started } }), true);
});

test("GET and POST answers as the host prints them", () => {
  const g = parseGets(
    `@@flow /health 200 0.003\n{"status":"healthy"}\n@@flow /ready 503 0.010\n{"status":"not ready"}\n@@flow /docs/json 000 0.000\n\n`,
  );
  assert.deepEqual(g.get("/health"), { status: 200, seconds: 0.003, body: `{"status":"healthy"}` });
  assert.deepEqual(g.get("/ready"), { status: 503, seconds: 0.01, body: `{"status":"not ready"}` });
  assert.equal(g.get("/docs/json")!.status, 0);
  assert.deepEqual(parsePost(`200 1.250\n{"images":["x"]}`), { status: 200, seconds: 1.25, body: `{"images":["x"]}` });
});

test("the verify table: one row per endpoint per host; a host without rows shows its outcome", () => {
  const t = verifyTable([
    {
      host: "gpu1",
      outcome: "failed",
      ok: 2,
      changed: 0,
      skipped: 0,
      failed: 1,
      ms: 1,
      data: {
        apiVerify: {
          rows: [
            { endpoint: "/health", status: "200", seconds: 0.004, ok: true },
            { endpoint: "/workflow/wan/i2v", status: "missing", ok: false, note: 'comfyui-api: "Failed to evaluate workflow file"' },
            { endpoint: "POST /workflow/sd15/txt2img", status: "200", seconds: 1.5, ok: true, note: "1 image" },
          ],
        },
      },
    },
    { host: "gpu2", outcome: "unreachable", ok: 0, changed: 0, skipped: 0, failed: 0, ms: 1, data: {}, error: "connect timeout\nmore" },
  ]);
  assert.equal(
    t,
    [
      "host  endpoint                     status       seconds  note",
      "gpu1  /health                      200             0.00",
      'gpu1  /workflow/wan/i2v            missing               comfyui-api: "Failed to evaluate workflow file"',
      "gpu1  POST /workflow/sd15/txt2img  200             1.50  1 image",
      "gpu2  -                            unreachable           connect timeout",
    ].join("\n"),
  );
});
