// The real node definitions of the custom-node classes InfiniteTalk's example workflow uses besides
// WanVideoWrapper's, for the packs the lab generates (fake-packs.ts renders them into INPUT_TYPES).
// Facts only, read from each upstream repository at the commit named: input names in their order,
// types, defaults, bounds, combo options, outputs, category, FUNCTION, display name. Tooltips and
// DESCRIPTION texts are left out (prose, not definitions: the stand-in shows an empty description).
// Each commit is the one the workflow's node records in properties.ver, unless said otherwise; the
// workflow's widgets_values fit each definition as ComfyUI's frontend lays its widgets out.
import type { NodeDefinition, PyInputSpec, PyValue } from "./fake-packs.ts";

/** ComfyUI's nodes.MAX_RESOLUTION, which KJNodes imports for its bounds. */
const MAX_RESOLUTION = 16384;
/** VideoHelperSuite's category and display-name suffix: 🎥🅥🅗🅢 */
const VHS = "\u{1F3A5}\u{1F165}\u{1F157}\u{1F162}";

// VideoHelperSuite at 0a75c7958fe320efcb052f1d9f8451fd20c730a8, video_formats/*.json: the widgets
// each ffmpeg format adds after `format` (gen_format_widgets: every list among a *_pass's items and
// every list-valued key, in file order). get_video_formats lists them in os.scandir order; here in
// sorted order. gifski.json is left out: the format is skipped when no gifski binary is found.
const crf = (d: number): PyValue => ["crf", "INT", { default: d, min: 0, max: 100, step: 1 }];
const saveMetadata: PyValue = ["save_metadata", "BOOLEAN", { default: true }];
const trimToAudio: PyValue = ["trim_to_audio", "BOOLEAN", { default: false }];
const nvenc: PyValue[] = [
  ["pix_fmt", ["yuv420p", "yuv420p10le", "rgba"]],
  ["bitrate", "INT", { default: 10, min: 1, max: 999, step: 1 }],
  ["megabit", "BOOLEAN", { default: true }],
  saveMetadata,
];
const VHS_FORMATS: [name: string, widgets: PyValue[]][] = [
  ["16bit-png", []],
  ["8bit-png", []],
  ["ProRes", [["profile", ["1", "2", "3", "4"], { default: "3" }]]],
  ["av1-webm", [["pix_fmt", ["yuv420p10le", "yuv420p"]], crf(23), ["input_color_depth", ["8bit", "16bit"]], saveMetadata]],
  [
    "ffmpeg-gif",
    [
      [
        "dither",
        ["bayer", "heckbert", "floyd_steinberg", "sierra2", "sierra2_4a", "sierra3", "burkes", "atkinson", "none"],
        { default: "sierra2_4a" },
        "[0:v] split [a][b]; [a] palettegen=reserve_transparent=on:transparency_color=ffffff [p]; [b][p] paletteuse=dither=$val",
      ],
    ],
  ],
  ["h264-mp4", [["pix_fmt", ["yuv420p", "yuv420p10le"]], crf(19), saveMetadata, trimToAudio]],
  ["h265-mp4", [["pix_fmt", ["yuv420p10le", "yuv420p"]], crf(22), saveMetadata]],
  ["nvenc_h264-mp4", nvenc],
  ["nvenc_hevc-mp4", nvenc],
  ["webm", [["pix_fmt", ["yuv420p", "yuva420p"]], crf(20), saveMetadata, trimToAudio]],
];
/** VideoCombine's `format` combo: the two Pillow formats, then video/<ffmpeg format>, with the widgets each adds. */
const vhsFormat: PyInputSpec = [
  ["image/gif", "image/webp", ...VHS_FORMATS.map(([n]) => `video/${n}`)],
  { formats: Object.fromEntries(VHS_FORMATS.filter(([, w]) => w.length).map(([n, w]) => [`video/${n}`, w])) },
];

export const REAL_DEFINITIONS: Record<string, NodeDefinition> = {
  // kijai/ComfyUI-KJNodes 6363376a177c002605e1a2e3c365891575b21d09 (2025-07-01), nodes/image_nodes.py
  // class ImageResizeKJv2, display name from __init__.py's NODE_CONFIG. The workflow's node records
  // f7eb33abc80a2aded1b46dff0dd14d07856a7d50 but shows the optional `mask` input and fourth output
  // `mask`, which this commit added (the widgets are the same: 8 values, image and mask linked).
  ImageResizeKJv2: {
    required: {
      image: ["IMAGE"],
      width: ["INT", { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
      height: ["INT", { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
      upscale_method: [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]],
      keep_proportion: [["stretch", "resize", "pad", "pad_edge", "crop"], { default: false }],
      pad_color: ["STRING", { default: "0, 0, 0" }],
      crop_position: [["center", "top", "bottom", "left", "right"], { default: "center" }],
      divisible_by: ["INT", { default: 2, min: 0, max: 512, step: 1 }],
    },
    optional: {
      mask: ["MASK"],
      device: [["cpu", "gpu"]],
    },
    returnTypes: ["IMAGE", "INT", "INT", "MASK"],
    returnNames: ["IMAGE", "width", "height", "mask"],
    function: "resize",
    category: "KJNodes/image",
    displayName: "Resize Image v2",
  },

  // Kosinkadink/ComfyUI-VideoHelperSuite 0a75c7958fe320efcb052f1d9f8451fd20c730a8 (2025-03-14),
  // videohelpersuite/nodes.py class VideoCombine (images: utils.imageOrLatent, shown as IMAGE;
  // frame_rate: utils.floatOrInt, shown as FLOAT). The format's widgets (pix_fmt, crf, ...) are not
  // inputs: the frontend adds them after `format`, from the combo's `formats` option.
  VHS_VideoCombine: {
    required: {
      images: ["IMAGE"],
      frame_rate: ["FLOAT", { default: 8, min: 1, step: 1 }],
      loop_count: ["INT", { default: 0, min: 0, max: 100, step: 1 }],
      filename_prefix: ["STRING", { default: "AnimateDiff" }],
      format: vhsFormat,
      pingpong: ["BOOLEAN", { default: false }],
      save_output: ["BOOLEAN", { default: true }],
    },
    optional: {
      audio: ["AUDIO"],
      meta_batch: ["VHS_BatchManager"],
      vae: ["VAE"],
    },
    hidden: { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO", unique_id: "UNIQUE_ID" },
    returnTypes: ["VHS_FILENAMES"],
    returnNames: ["Filenames"],
    outputNode: true,
    function: "combine_video",
    category: `Video Helper Suite ${VHS}`,
    displayName: `Video Combine ${VHS}`,
  },

  // christian-byrne/audio-separation-nodes-comfyui 31a4567726e035097cc2d1f767767908a6fda2ea
  // (2025-01-05), src/crop.py class AudioCrop (no RETURN_NAMES, no display name: the pack maps none)
  AudioCrop: {
    required: {
      audio: ["AUDIO"],
      start_time: ["STRING", { default: "0:00" }],
      end_time: ["STRING", { default: "1:00" }],
    },
    returnTypes: ["AUDIO"],
    function: "main",
    category: "audio",
  },

  // the same commit, src/separation.py class AudioSeparation
  AudioSeparation: {
    required: { audio: ["AUDIO"] },
    optional: {
      chunk_fade_shape: [["linear", "half_sine", "logarithmic", "exponential"], { default: "linear" }],
      chunk_length: ["FLOAT", { default: 10.0 }],
      chunk_overlap: ["FLOAT", { default: 0.1 }],
    },
    returnTypes: ["AUDIO", "AUDIO", "AUDIO", "AUDIO"],
    returnNames: ["Bass", "Drums", "Other", "Vocals"],
    function: "main",
    category: "audio",
  },
};
