// Shapes of the upstream reference data (ComfyUI-Manager's maps, ComfyUI's /object_info).
// The lead's fetcher validates downloads with these so that a changed upstream format
// fails with a message naming the file and the key, not deep inside a resolver.
import { z } from "zod";

/** extension-node-map.json: repo URL -> [class names, meta]. */
export const ExtensionNodeMetaSchema = z
  .object({
    title_aux: z.string().optional(),
    title: z.string().optional(),
    author: z.string().optional(),
    nodename_pattern: z.string().optional(),
    preemptions: z.array(z.string()).optional(),
  })
  .passthrough();
export const ExtensionNodeMapSchema = z.record(
  z.string(),
  z.tuple([z.array(z.string()), ExtensionNodeMetaSchema]).or(z.tuple([z.array(z.string())])),
);
export type ExtensionNodeMap = z.infer<typeof ExtensionNodeMapSchema>;

/** custom-node-list.json */
export const CustomNodeEntrySchema = z
  .object({
    author: z.string().optional(),
    title: z.string().optional(),
    id: z.string().optional(),
    reference: z.string(),
    files: z.array(z.string()).default([]),
    install_type: z.string().optional(),
    description: z.string().optional(),
    pip: z.array(z.string()).optional(),
    nodename_pattern: z.string().optional(),
    preemptions: z.array(z.string()).optional(),
  })
  .passthrough();
export const CustomNodeListSchema = z.object({ custom_nodes: z.array(CustomNodeEntrySchema) }).passthrough();
export type CustomNodeEntry = z.infer<typeof CustomNodeEntrySchema>;
export type CustomNodeList = z.infer<typeof CustomNodeListSchema>;

/** model-list.json */
export const ModelListEntrySchema = z
  .object({
    name: z.string(),
    type: z.string(),
    base: z.string().optional(),
    save_path: z.string(),
    description: z.string().optional(),
    reference: z.string().optional(),
    filename: z.string(),
    url: z.string(),
    size: z.string().optional(),
  })
  .passthrough();
export const ModelListSchema = z.object({ models: z.array(ModelListEntrySchema) }).passthrough();
export type ModelListEntry = z.infer<typeof ModelListEntrySchema>;
export type ModelList = z.infer<typeof ModelListSchema>;

/** github-stats.json */
export const GithubStatsSchema = z.record(
  z.string(),
  z
    .object({
      stars: z.number().optional(),
      last_update: z.string().optional(),
      author_account_age_days: z.number().optional(),
    })
    .passthrough(),
);
export type GithubStats = z.infer<typeof GithubStatsSchema>;

/** One input spec in /object_info: [type or combo list, options?]. */
export const ObjectInfoInputSchema = z.tuple([z.unknown()]).rest(z.unknown());
export const ObjectInfoNodeSchema = z
  .object({
    input: z
      .object({
        required: z.record(z.string(), z.array(z.unknown())).optional(),
        optional: z.record(z.string(), z.array(z.unknown())).optional(),
        hidden: z.record(z.string(), z.unknown()).optional(),
      })
      .passthrough()
      .default({}),
    input_order: z
      .object({ required: z.array(z.string()).optional(), optional: z.array(z.string()).optional() })
      .passthrough()
      .optional(),
    output: z.array(z.unknown()).optional(),
    output_name: z.array(z.unknown()).optional(),
    // Real servers send null for some of these (e.g. display_name of LatentAdd).
    name: z.string().nullish(),
    display_name: z.string().nullish(),
    category: z.string().nullish(),
    python_module: z.string().nullish(),
    output_node: z.boolean().nullish(),
  })
  .passthrough();
export const ObjectInfoSchema = z.record(z.string(), ObjectInfoNodeSchema);
export type ObjectInfoNode = z.infer<typeof ObjectInfoNodeSchema>;
export type ObjectInfo = z.infer<typeof ObjectInfoSchema>;

export class DataValidationError extends Error {}

/** Validate fetched data; the error names the source (file or URL) and the first bad keys. */
export function parseData<T>(schema: z.ZodType<T>, data: unknown, source: string): T {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const where = r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
  throw new DataValidationError(`${source}: unexpected shape (${where})`);
}

export const parseExtensionNodeMap = (d: unknown, src = "extension-node-map.json") => parseData(ExtensionNodeMapSchema, d, src);
export const parseCustomNodeList = (d: unknown, src = "custom-node-list.json") => parseData(CustomNodeListSchema, d, src);
export const parseModelList = (d: unknown, src = "model-list.json") => parseData(ModelListSchema, d, src);
export const parseGithubStats = (d: unknown, src = "github-stats.json") => parseData(GithubStatsSchema, d, src);
export const parseObjectInfo = (d: unknown, src = "object_info") => parseData(ObjectInfoSchema, d, src);
