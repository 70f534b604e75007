// Facts about ComfyUI's model folders and which loader input reads which folder.
// Encoded here (not fetched) because they change only with ComfyUI releases and are small;
// taken from ComfyUI 0.3.64 folder_paths.py / nodes.py / comfy_extras. A caller may pass
// extra entries (e.g. for custom loaders) to modelDeps(). Looked up with names from workflows: own keys only.
import { getOwn } from "./own-keys.ts";

/** Folder name -> search paths under the ComfyUI root. */
export const MODEL_FOLDERS: Record<string, string[]> = {
  checkpoints: ["models/checkpoints"],
  configs: ["models/configs"],
  loras: ["models/loras"],
  vae: ["models/vae"],
  text_encoders: ["models/text_encoders", "models/clip"],
  diffusion_models: ["models/unet", "models/diffusion_models"],
  clip_vision: ["models/clip_vision"],
  style_models: ["models/style_models"],
  embeddings: ["models/embeddings"],
  diffusers: ["models/diffusers"],
  vae_approx: ["models/vae_approx"],
  controlnet: ["models/controlnet", "models/t2i_adapter"],
  gligen: ["models/gligen"],
  upscale_models: ["models/upscale_models"],
  hypernetworks: ["models/hypernetworks"],
  photomaker: ["models/photomaker"],
  classifiers: ["models/classifiers"],
  model_patches: ["models/model_patches"],
  audio_encoders: ["models/audio_encoders"],
};

/** Old folder names still accepted by ComfyUI. */
export const FOLDER_ALIASES: Record<string, string> = { unet: "diffusion_models", clip: "text_encoders", t2i_adapter: "controlnet" };

/** Extensions ComfyUI lists as model files, plus the common custom-loader ones (.gguf, .onnx). */
export const MODEL_EXTENSIONS = [".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".gguf", ".onnx"];

export interface LoaderInput {
  input: string;
  folder: string;
  /** Position in UI widgets_values. */
  widgetIndex: number;
}

const li = (input: string, folder: string, widgetIndex: number): LoaderInput => ({ input, folder, widgetIndex });

/** Core loader class -> its model inputs. */
export const CORE_LOADER_INPUTS: Record<string, LoaderInput[]> = {
  VAELoader: [li("vae_name", "vae", 0)],
  CheckpointLoader: [li("config_name", "configs", 0), li("ckpt_name", "checkpoints", 1)],
  CheckpointLoaderSimple: [li("ckpt_name", "checkpoints", 0)],
  unCLIPCheckpointLoader: [li("ckpt_name", "checkpoints", 0)],
  ImageOnlyCheckpointLoader: [li("ckpt_name", "checkpoints", 0)],
  LoraLoader: [li("lora_name", "loras", 0)],
  LoraLoaderModelOnly: [li("lora_name", "loras", 0)],
  ControlNetLoader: [li("control_net_name", "controlnet", 0)],
  DiffControlNetLoader: [li("control_net_name", "controlnet", 0)],
  UNETLoader: [li("unet_name", "diffusion_models", 0)],
  CLIPLoader: [li("clip_name", "text_encoders", 0)],
  DualCLIPLoader: [li("clip_name1", "text_encoders", 0), li("clip_name2", "text_encoders", 1)],
  TripleCLIPLoader: [li("clip_name1", "text_encoders", 0), li("clip_name2", "text_encoders", 1), li("clip_name3", "text_encoders", 2)],
  QuadrupleCLIPLoader: [
    li("clip_name1", "text_encoders", 0),
    li("clip_name2", "text_encoders", 1),
    li("clip_name3", "text_encoders", 2),
    li("clip_name4", "text_encoders", 3),
  ],
  CLIPVisionLoader: [li("clip_name", "clip_vision", 0)],
  StyleModelLoader: [li("style_model_name", "style_models", 0)],
  GLIGENLoader: [li("gligen_name", "gligen", 0)],
  HypernetworkLoader: [li("hypernetwork_name", "hypernetworks", 0)],
  UpscaleModelLoader: [li("model_name", "upscale_models", 0)],
  PhotoMakerLoader: [li("photomaker_model_name", "photomaker", 0)],
  CreateHookLora: [li("lora_name", "loras", 0)],
  CreateHookLoraModelOnly: [li("lora_name", "loras", 0)],
  CreateHookModelAsLora: [li("ckpt_name", "checkpoints", 0)],
  CreateHookModelAsLoraModelOnly: [li("ckpt_name", "checkpoints", 0)],
  ModelPatchLoader: [li("name", "model_patches", 0)],
  AudioEncoderLoader: [li("audio_encoder_name", "audio_encoders", 0)],
};

/**
 * Input names that by convention hold a file of one folder, for custom loaders the table above
 * does not know (e.g. UnetLoaderGGUF's unet_name). Used only for values with a model extension.
 */
export const INPUT_NAME_FOLDERS: Record<string, string> = {
  ckpt_name: "checkpoints",
  lora_name: "loras",
  unet_name: "diffusion_models",
  vae_name: "vae",
  clip_name: "text_encoders",
  clip_name1: "text_encoders",
  clip_name2: "text_encoders",
  clip_name3: "text_encoders",
  clip_name4: "text_encoders",
  control_net_name: "controlnet",
  style_model_name: "style_models",
  upscale_model: "upscale_models",
  audio_encoder_name: "audio_encoders",
};

/** Canonical folder for a name (resolving aliases); undefined when not a known folder. */
export function canonicalFolder(name: string): string | undefined {
  const first = name.split("/")[0];
  if (getOwn(MODEL_FOLDERS, first)) return first;
  return getOwn(FOLDER_ALIASES, first);
}

export function hasModelExtension(s: string): boolean {
  const l = s.toLowerCase();
  return MODEL_EXTENSIONS.some((e) => l.endsWith(e));
}

/** model-list.json save_path "default" resolves by type. */
export const MODEL_LIST_DEFAULT_FOLDERS: Record<string, string> = {
  checkpoint: "checkpoints",
  checkpoints: "checkpoints",
  lora: "loras",
  clip: "text_encoders",
  unet: "diffusion_models",
  diffusion_model: "diffusion_models",
  upscale: "upscale_models",
  embedding: "embeddings",
  vae: "vae",
  controlnet: "controlnet",
  clip_vision: "clip_vision",
};
