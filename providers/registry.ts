// The providers flow brings. Adding one is its own file (a defineProvider) plus a line here.
import { datacrunch } from "./datacrunch.ts";
import { lambda } from "./lambda.ts";

export { datacrunch, lambda };

/** every built-in provider, in the order `flow list` and provider:list show them */
export const builtinProviders = [lambda, datacrunch] as const;
