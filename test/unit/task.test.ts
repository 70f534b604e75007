import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { defineTask, scopeOf, TaskError } from "../../lib/task.ts";
import { globalsSchema } from "../../lib/cli/globals.ts";

const body = async () => undefined;

test("a task option named like a run option is an error when the task is defined, not a silent alias", () => {
  for (const key of Object.keys(globalsSchema.shape)) {
    assert.throws(
      () => defineTask({ name: "t:x", description: "d", options: z.object({ [key]: z.string().optional() }), run: body }),
      (e: Error) => e instanceof TaskError && e.message.includes("task t:x") && /is a run option of every task/.test(e.message),
      key,
    );
  }
  assert.doesNotThrow(() => defineTask({ name: "t:ok", description: "d", options: z.object({ hostName: z.string() }), run: body }));
});

test("scope may depend on the options", () => {
  const t = defineTask({
    name: "t:s",
    description: "d",
    run: body,
    options: z.object({ file: z.string().optional() }),
    scope: (o) => (o.file ? "local" : "host"),
  });
  assert.equal(scopeOf(t, { file: "x" }), "local");
  assert.equal(scopeOf(t, {}), "host");
  assert.equal(scopeOf({}, {}), "host");
  assert.equal(scopeOf({ scope: "local" }, {}), "local");
});
