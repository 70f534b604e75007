// Flowfile for `npm run bench:fanout`: the lab's hosts and the benchmark's tasks.
import { z } from "zod";
import { defineFlow, definePlugin, defineTask } from "../lib/index.ts";

export const FIVE = ["uname -a", "df -h /", "free -m", "uptime", "cat /etc/os-release"];

const five = defineTask({
  name: "bench:five",
  description: "five read-only commands as five steps",
  lock: false,
  options: z.object({}),
  async run(ctx) {
    for (const cmd of FIVE) await ctx.step(cmd, async () => void (await ctx.sh(cmd)));
  },
});

const steps = defineTask({
  name: "bench:steps",
  description: "N sequential trivial steps",
  lock: false,
  options: z.object({ count: z.number().int().default(50) }),
  async run(ctx, o) {
    for (let i = 0; i < o.count; i++) await ctx.step(`true #${i}`, async () => void (await ctx.sh("true")));
  },
});

export default defineFlow({
  inventory: ["../.lab/inventory.json"],
  plugins: [definePlugin({ name: "bench", tasks: [five, steps] })],
});
