import { test } from "node:test";
import assert from "node:assert/strict";
import { formatTable } from "../../lib/output/table.ts";

test("one table: columns as wide as their widest cell, numbers right, a rule on request, missing cells blank", () => {
  const t = formatTable(
    ["host", "ok", "note"],
    [
      ["gpu1", "12", "fine"],
      ["a-long-name", "3"],
    ],
    { right: [1], rule: true },
  );
  assert.equal(t, ["host         ok  note", "-----------  --  ----", "gpu1         12  fine", "a-long-name   3"].join("\n"));
  const many = Array.from({ length: 200_000 }, (_, i) => [String(i)]);
  assert.equal(formatTable(["n"], many).split("\n").length, 200_001, "no spread of 200,000 arguments");
});
