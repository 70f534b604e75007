export { ops } from "./ops.ts";
export { workflow } from "./workflow/index.ts";
