export { lambda } from "./lambda.ts";
export { datacrunch } from "./datacrunch.ts";
export { cloud } from "./cloud.ts";
