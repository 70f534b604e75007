// workflow:generate's pure core: an API prompt in, a comfyui-api workflow file (.ts) out.
// endpoint-params.ts decides which node inputs become request fields and their names (the rules are
// written at its top); endpoint-source.ts writes the file and reads its header back.
export { detectParams, type EndpointParam, type ParamOverrides } from "./endpoint-params.ts";
export { GENERATED_MARK, generateEndpoint, readGeneratedHeader, type GenerateInput, type Generated } from "./endpoint-source.ts";
