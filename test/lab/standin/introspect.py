#!/usr/bin/env python3
# The lab stand-in ComfyUI's custom node loader (run by ./server.mjs with python3 when there is one).
#
# It loads every pack under $COMFY_HOME/custom_nodes the way ComfyUI's nodes.load_custom_node does
# (a package import of <pack>/__init__.py, or of a single <pack>.py, under ComfyUI's module name,
# with $COMFY_HOME on sys.path), then builds /object_info entries in ComfyUI's shape from each
# class of NODE_CLASS_MAPPINGS by calling its INPUT_TYPES() (so model combos list the files on
# disk, through the real `folder_paths` below).
#
# What ComfyUI's image provides is replaced by permissive stubs (see PROVIDED): the stand-in has
# no torch, and a pack must only get past its imports. Everything else must really be importable,
# e.g. from $PYTHONPATH (/opt/flow/python, where flow pip-installs packs' requirements): a pack
# whose requirement is missing fails to import and logs exactly what ComfyUI logs.
#
#   python3 introspect.py            load, print one JSON document {packs, nodes} on stdout
#   python3 introspect.py --serve    load, print it as one line, then answer each stdin line with
#                                    {"nodes": ...} (INPUT_TYPES() called again, as ComfyUI does
#                                    on every GET /object_info, so model lists stay live)
# Log lines (ComfyUI's, and whatever packs print) go to stderr; stdout carries only the JSON.
# Environment: COMFY_HOME (/opt/ComfyUI), MODEL_DIR, INPUT_DIR, OUTPUT_DIR as server.mjs has them.
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import time
import traceback
import types

COMFY_HOME = os.environ.get("COMFY_HOME") or "/opt/ComfyUI"
MODEL_DIR = os.environ.get("MODEL_DIR") or os.path.join(COMFY_HOME, "models")
CUSTOM_NODES = os.path.join(COMFY_HOME, "custom_nodes")
MANIFEST = "flow-standin-nodes.json"

# ---------------------------------------------------------------- what ComfyUI's image provides
#
# Top-level modules present in the comfyui-api image (pytorch/pytorch base, ComfyUI's
# requirements.txt, ComfyUI-Manager's and comfy-cli's), which the stand-in image lacks:
#  - ComfyUI's own modules beside main.py (comfy, comfy_extras, nodes, server, ...);
#  - ComfyUI's requirements.txt: torch, torchsde, torchvision, torchaudio, numpy, einops,
#    transformers, tokenizers, sentencepiece, safetensors, aiohttp, yarl, pyyaml, Pillow, scipy,
#    tqdm, psutil, alembic, SQLAlchemy, filelock, av, comfy-kitchen, comfy-aimdo, requests,
#    simpleeval, blake3, kornia, spandrel, pydantic, pydantic-settings, PyOpenGL, glfw and the
#    frontend/template/docs packages;
#  - what those pull in and packs import directly (triton with torch's CUDA wheels, huggingface_hub
#    and regex with transformers, jinja2/sympy/networkx/fsspec with torch, ...);
#  - ComfyUI-Manager's requirements (GitPython, PyGithub, matrix-nio, aiofiles, typer, rich, toml,
#    uv, chardet) and comfy-cli's (httpx, websocket-client, tomlkit, semver, imageio-ffmpeg, ...).
# Not provided: OpenCV (cv2), which neither lists; packs get it from other packs' requirements.
# A pack's own requirements (InfiniteTalk's accelerate, diffusers, ftfy, peft, protobuf,
# pyloudnorm, gguf) are not here: in the real image they exist only once pip installed them.
# einops and sentencepiece, which that pack lists too, are ComfyUI's own requirements.
COMFY_MODULES = """comfy comfy_extras comfy_api comfy_api_nodes comfy_execution comfy_config app server nodes
node_helpers latent_preview execution cuda_malloc protocol middleware api_server hook_breaker_ac10a0""".split()
HEAVY = """torch torchsde torchvision torchaudio triton numpy scipy PIL einops transformers tokenizers
sentencepiece safetensors huggingface_hub aiohttp yarl multidict yaml av kornia kornia_rs spandrel
sqlalchemy alembic pydantic pydantic_core pydantic_settings OpenGL glfw blake3 simpleeval comfy_kitchen
comfy_aimdo comfyui_frontend_package comfyui_workflow_templates comfyui_embedded_docs regex sympy
mpmath networkx fsspec jinja2 markupsafe psutil tqdm filelock trampoline git github nio aiofiles
typer click toml tomlkit uv httpx websocket semver attr attrs cookiecutter pathspec posthog questionary
mixpanel imageio_ffmpeg""".split()
# Pure-python ones: the real module when python finds one (pip carries copies of most), a stub
# only when not, so version checks and the like behave; comfyui_version is real in the image.
PIP_VENDORED = "packaging typing_extensions requests urllib3 idna certifi chardet rich pygments platformdirs distro six".split()
PURE = PIP_VENDORED + ["charset_normalizer", "comfyui_version"]
# __version__ / importlib.metadata answers for the provided distributions (the image's, roughly)
VERSIONS = {
    "torch": "2.8.0+cu128",
    "torchvision": "0.23.0+cu128",
    "torchaudio": "2.8.0+cu128",
    "triton": "3.4.0",
    "numpy": "2.1.2",
    "scipy": "1.16.2",
    "pillow": "11.3.0",
    "einops": "0.8.1",
    "transformers": "4.57.1",
    "tokenizers": "0.22.1",
    "sentencepiece": "0.2.1",
    "safetensors": "0.6.2",
    "huggingface-hub": "0.36.0",
    "aiohttp": "3.13.1",
    "kornia": "0.8.1",
    "av": "16.0.1",
    "pydantic": "2.12.3",
}
IMPORT_TO_DIST = {"PIL": "pillow", "huggingface_hub": "huggingface-hub", "yaml": "pyyaml", "git": "gitpython", "github": "pygithub"}


class Stub(types.ModuleType):
    """A module, attribute, call result or base class of the image's modules: anything goes."""

    def __init__(self, name):
        super().__init__(name)

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            if attr == "__version__":
                top = self.__name__.split(".")[0]
                return VERSIONS.get(IMPORT_TO_DIST.get(top, top.lower()), "1.0.0")
            raise AttributeError(attr)
        child = Stub(f"{self.__name__}.{attr}")
        object.__setattr__(self, attr, child)  # the same object next time: identity, hashing
        return child

    def __call__(self, *args, **kwargs):
        # a decorator (@torch.no_grad(), @torch.compile, routes.get(...)) hands back what it wraps
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], Stub):
            return args[0]
        return Stub(f"{self.__name__}()")

    def __mro_entries__(self, bases):
        # `class X(torch.nn.Module)`: a real, permissive class; one per stub, so bases stay consistent
        cls = self.__dict__.get("__stub_class__")
        if cls is None:
            mod, _, leaf = self.__name__.rpartition(".")
            cls = type(leaf or self.__name__, (StubBase,), {"__module__": mod or self.__name__})
            object.__setattr__(self, "__stub_class__", cls)
        return (cls,)

    def __repr__(self):
        return f"<stub {self.__name__}>"

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self)

    def __fspath__(self):
        return f"/nonexistent/{self.__name__}"

    def __bool__(self):
        return True

    def __len__(self):
        return 0

    def __iter__(self):
        return iter(())

    def __contains__(self, item):
        return False

    def __getitem__(self, key):
        return Stub(f"{self.__name__}[]")

    def __setitem__(self, key, value):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __index__(self):
        return 0

    __int__ = __index__

    def __float__(self):
        return 0.0

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __lt__(self, other):
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def _op(self, *other):
        return Stub(f"{self.__name__}()")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _op
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _op
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __lshift__ = __rshift__ = _op
    __neg__ = __pos__ = __abs__ = __invert__ = _op


class StubBase:
    """What a pack's class derives from when its base is one of the image's (nn.Module, ...)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__()

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return Stub(f"{type(self).__name__}.{attr}")

    def __call__(self, *args, **kwargs):
        return Stub(f"{type(self).__name__}()")


def is_stub(v):
    return isinstance(v, (Stub, StubBase)) or (isinstance(v, type) and issubclass(v, StubBase))


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the image's modules: `tops` are top-level names; every submodule under them is a stub too."""

    def __init__(self, tops, vendored=()):
        self.tops = set(tops)
        self.vendored = set(vendored)

    def find_spec(self, fullname, path, target=None):
        top = fullname.split(".")[0]
        if top not in self.tops:
            return None
        if fullname in self.vendored:
            # pip's own copy, loaded afresh under the plain name (its submodules then come from there)
            try:
                real = importlib.util.find_spec(f"pip._vendor.{fullname}")
            except Exception:
                real = None
            if real is not None and real.origin:
                where = list(real.submodule_search_locations) if real.submodule_search_locations is not None else None
                return importlib.util.spec_from_file_location(fullname, real.origin, submodule_search_locations=where)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        parent, _, leaf = spec.name.rpartition(".")
        if parent and isinstance(sys.modules.get(parent), Stub):
            seen = sys.modules[parent].__dict__.get(leaf)
            if isinstance(seen, Stub):
                return seen  # `torch.nn` read as an attribute before it was imported: the same object
        return Stub(spec.name)

    def exec_module(self, module):
        pass


def install_stubs():
    sys.meta_path.insert(0, StubFinder(COMFY_MODULES + HEAVY))
    # after the path finder: only when python does not find the real one
    sys.meta_path.append(StubFinder(PURE, PIP_VENDORED))
    nodes = importlib.import_module("nodes")
    nodes.MAX_RESOLUTION = 16384
    nodes.NODE_CLASS_MAPPINGS = StubMappings()
    nodes.NODE_DISPLAY_NAME_MAPPINGS = {}
    nodes.EXTENSION_WEB_DIRS = {}
    nodes.LOADED_MODULE_DIRS = {}
    sys.modules["folder_paths"] = make_folder_paths()
    # importlib.metadata.version("torch") and the like, for the provided distributions
    real_version = importlib.metadata.version

    def version(name):
        try:
            return real_version(name)
        except importlib.metadata.PackageNotFoundError:
            key = name.lower().replace("_", "-")
            if key in VERSIONS:
                return VERSIONS[key]
            raise

    importlib.metadata.version = version


class StubMappings(dict):
    """nodes.NODE_CLASS_MAPPINGS: the core classes packs look up are stubs here."""

    def __missing__(self, key):
        return Stub(f"nodes.{key}")


# ---------------------------------------------------------------- folder_paths, for real


def make_folder_paths():
    """ComfyUI's folder_paths module, answering from the folders on disk (read on every call)."""
    fp = types.ModuleType("folder_paths")
    fp.__file__ = os.path.join(COMFY_HOME, "folder_paths.py")
    pt = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
    fp.supported_pt_extensions = pt
    fp.base_path = COMFY_HOME
    fp.models_dir = MODEL_DIR
    m = lambda *names: [os.path.join(MODEL_DIR, n) for n in names]  # noqa: E731
    fp.folder_names_and_paths = {
        "checkpoints": (m("checkpoints"), pt),
        "configs": (m("configs"), {".yaml"}),
        "loras": (m("loras"), pt),
        "vae": (m("vae"), pt),
        "text_encoders": (m("text_encoders", "clip"), pt),
        "diffusion_models": (m("unet", "diffusion_models"), pt),
        "clip_vision": (m("clip_vision"), pt),
        "style_models": (m("style_models"), pt),
        "embeddings": (m("embeddings"), pt),
        "diffusers": (m("diffusers"), {"folder"}),
        "vae_approx": (m("vae_approx"), pt),
        "controlnet": (m("controlnet", "t2i_adapter"), pt),
        "gligen": (m("gligen"), pt),
        "upscale_models": (m("upscale_models"), pt),
        "latent_upscale_models": (m("latent_upscale_models"), pt),
        "custom_nodes": ([CUSTOM_NODES], set()),
        "hypernetworks": (m("hypernetworks"), pt),
        "photomaker": (m("photomaker"), pt),
        "classifiers": (m("classifiers"), {""}),
        "model_patches": (m("model_patches"), pt),
        "audio_encoders": (m("audio_encoders"), pt),
    }
    fp.filename_list_cache = {}
    dirs = {
        "output": os.environ.get("OUTPUT_DIR") or os.path.join(COMFY_HOME, "output"),
        "input": os.environ.get("INPUT_DIR") or os.path.join(COMFY_HOME, "input"),
        "temp": os.path.join(COMFY_HOME, "temp"),
        "user": os.path.join(COMFY_HOME, "user"),
    }
    legacy = {"unet": "diffusion_models", "clip": "text_encoders"}
    fp.map_legacy = lambda name: legacy.get(name, name)
    for kind in dirs:
        setattr(fp, f"get_{kind}_directory", lambda kind=kind: dirs[kind])
        setattr(fp, f"set_{kind}_directory", lambda path, kind=kind: dirs.__setitem__(kind, path))
    fp.get_directory_by_type = lambda t: dirs.get(t) if t in ("output", "input", "temp") else None

    def annotated_filepath(name):
        for suffix, kind in ((" [output]", "output"), (" [input]", "input"), (" [temp]", "temp")):
            if name.endswith(suffix):
                return name[: -len(suffix)], dirs[kind]
        return name, None

    def get_annotated_filepath(name, default_dir=None):
        name, base = annotated_filepath(name)
        return os.path.join(base or default_dir or dirs["input"], name)

    fp.annotated_filepath = annotated_filepath
    fp.get_annotated_filepath = get_annotated_filepath
    fp.exists_annotated_filepath = lambda name: os.path.exists(get_annotated_filepath(name))

    def add_model_folder_path(folder_name, full_folder_path, is_default=False):
        folder_name = fp.map_legacy(folder_name)
        if folder_name in fp.folder_names_and_paths:
            paths = fp.folder_names_and_paths[folder_name][0]
            if full_folder_path in paths:
                if is_default and paths[0] != full_folder_path:
                    paths.remove(full_folder_path)
                    paths.insert(0, full_folder_path)
            elif is_default:
                paths.insert(0, full_folder_path)
            else:
                paths.append(full_folder_path)
        else:
            fp.folder_names_and_paths[folder_name] = ([full_folder_path], set())

    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = lambda folder_name: fp.folder_names_and_paths[fp.map_legacy(folder_name)][0][:]

    def recursive_search(directory, excluded_dir_names=None):
        if not os.path.isdir(directory):
            return [], {}
        excluded = set(excluded_dir_names or []) | {".git"}
        files, mtimes = [], {}
        try:
            mtimes[directory] = os.path.getmtime(directory)
        except OSError:
            pass
        for root, subdirs, names in os.walk(directory, followlinks=True, topdown=True):
            subdirs[:] = [d for d in subdirs if d not in excluded]
            for n in names:
                files.append(os.path.relpath(os.path.join(root, n), directory))
            for d in subdirs:
                try:
                    mtimes[os.path.join(root, d)] = os.path.getmtime(os.path.join(root, d))
                except OSError:
                    pass
        return files, mtimes

    def filter_files_extensions(files, extensions):
        return sorted(f for f in files if len(extensions) == 0 or os.path.splitext(f)[-1].lower() in extensions)

    fp.recursive_search = recursive_search
    fp.filter_files_extensions = filter_files_extensions

    def get_filename_list(folder_name):
        paths, exts = fp.folder_names_and_paths[fp.map_legacy(folder_name)]  # KeyError, as in ComfyUI
        out = set()
        for d in paths:
            files, _ = recursive_search(d)
            out.update(filter_files_extensions(files, exts))
        return sorted(out)

    def get_full_path(folder_name, filename):
        folder_name = fp.map_legacy(folder_name)
        if folder_name not in fp.folder_names_and_paths:
            return None
        filename = os.path.relpath(os.path.join("/", filename), "/")
        for d in fp.folder_names_and_paths[folder_name][0]:
            p = os.path.join(d, filename)
            if os.path.isfile(p) or os.path.islink(p):
                return p
        return None

    def get_full_path_or_raise(folder_name, filename):
        p = get_full_path(folder_name, filename)
        if p is None:
            raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
        return p

    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    fp.get_full_path_or_raise = get_full_path_or_raise

    def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
        subfolder = os.path.dirname(os.path.normpath(filename_prefix))
        filename = os.path.basename(os.path.normpath(filename_prefix))
        full = os.path.join(output_dir, subfolder)
        return full, filename, 1, subfolder, filename_prefix

    fp.get_save_image_path = get_save_image_path
    return fp


# ---------------------------------------------------------------- loading packs, as ComfyUI does

LOG = sys.stderr


def log(msg):
    LOG.write(f"{msg}\n")
    LOG.flush()


def load_custom_node(module_path, mappings, display_names):
    """ComfyUI's nodes.load_custom_node: True when the pack registered its classes."""
    module_name = os.path.basename(module_path)
    if os.path.isfile(module_path):
        module_name = os.path.splitext(module_name)[0]
        sys_module_name = os.path.splitext(module_path)[0]
        spec = importlib.util.spec_from_file_location(sys_module_name, module_path)
    else:
        sys_module_name = module_path.replace(".", "_x_")
        init = os.path.join(module_path, "__init__.py")
        if not os.path.exists(init) and os.path.exists(os.path.join(module_path, MANIFEST)):
            return True  # a stand-in manifest pack: server.mjs adds its classes
        spec = importlib.util.spec_from_file_location(sys_module_name, init)
    try:
        module = importlib.util.module_from_spec(spec)
        sys.modules[sys_module_name] = module
        spec.loader.exec_module(module)
        classes = getattr(module, "NODE_CLASS_MAPPINGS", None)
        if classes is not None:
            for name, cls in classes.items():
                mappings[name] = cls
                try:
                    cls.RELATIVE_PYTHON_MODULE = f"custom_nodes.{module_name}"
                except Exception:
                    pass
            names = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None)
            if isinstance(names, dict):
                display_names.update(names)
            return True
        if hasattr(module, "comfy_entrypoint"):
            log(f"(stand-in) {module_path}: a V3 extension (comfy_entrypoint); its nodes are not introspected")
            return True
        log(f"Skip {module_path} module for custom nodes due to the lack of NODE_CLASS_MAPPINGS or NODES_LIST (need one).")
        return False
    except (Exception, SystemExit) as e:
        log(traceback.format_exc())
        log(f"Cannot import {module_path} module for custom nodes: {e}")
        return False


def load_packs():
    """Every pack under custom_nodes, in name order; returns (packs, mappings, display names)."""
    mappings, display_names, packs = {}, {}, []
    try:
        names = sorted(os.listdir(CUSTOM_NODES))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(CUSTOM_NODES, name)
        if name == "__pycache__" or name.startswith(".") or name.endswith(".disabled"):
            continue
        if os.path.isfile(path) and not name.endswith(".py"):
            continue
        started = time.perf_counter()
        ok = load_custom_node(path, mappings, display_names)
        packs.append({"path": path, "ok": ok, "seconds": time.perf_counter() - started})
    return packs, mappings, display_names


# ---------------------------------------------------------------- /object_info entries

DROP = object()


def jsonable(v):
    """A JSON value for v: stubs dropped, non-finite floats null, anything else unknown as str()."""
    if is_stub(v):
        return DROP
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = jsonable(x)
            if x is not DROP:
                out[str(k)] = x
        return out
    if isinstance(v, (set, frozenset)):
        v = sorted(v, key=str)
    if isinstance(v, (list, tuple)):
        return [x for x in map(jsonable, v) if x is not DROP]
    return str(v)


def type_name(v):
    """An input or output type: a combo list stays a list (stubs dropped), else a string."""
    if isinstance(v, (list, tuple)):
        return jsonable(v)
    return v if isinstance(v, str) else str(v)


def input_spec(spec):
    if not isinstance(spec, (list, tuple)) or not spec:
        return [type_name(spec)]
    out = [type_name(spec[0])]
    for extra in spec[1:]:
        x = jsonable(extra)
        if x is not DROP:
            out.append(x)
    return out


def node_info(name, cls, display_names):
    """ComfyUI's server.node_info for a V1 class; raises what the class raises."""
    inputs = cls.INPUT_TYPES()
    section = {}
    for key, value in inputs.items():
        if key == "hidden":
            section[key] = {str(k): type_name(v[0] if isinstance(v, (list, tuple)) and v else v) for k, v in value.items()}
        else:
            section[key] = {str(k): input_spec(v) for k, v in value.items()}
    outputs = [type_name(t) for t in cls.RETURN_TYPES]
    info = {
        "input": section,
        "input_order": {key: list(value.keys()) for key, value in section.items()},
        "output": outputs,
        "output_is_list": [bool(x) for x in getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs))],
        "output_name": [str(x) for x in getattr(cls, "RETURN_NAMES", outputs)],
        "name": name,
        "display_name": str(display_names.get(name, name)),
        "description": str(getattr(cls, "DESCRIPTION", "")),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "category": str(getattr(cls, "CATEGORY", "sd")),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = jsonable(cls.OUTPUT_TOOLTIPS)
    if getattr(cls, "DEPRECATED", False) is True:
        info["deprecated"] = True
    if getattr(cls, "EXPERIMENTAL", False) is True:
        info["experimental"] = True
    return info


def object_info(mappings, display_names):
    out = {}
    for name, cls in mappings.items():
        try:
            out[name] = node_info(name, cls, display_names)
        except Exception:
            log(f"[ERROR] An error occurred while retrieving information for the '{name}' node.")
            log(traceback.format_exc())
    return out


def main():
    serve = "--serve" in sys.argv[1:]
    # the JSON goes to the real stdout; print() in packs (and in C code) goes to the log
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)
    # ComfyUI runs main.py from its folder: its own modules and custom_nodes' parent are importable
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    sys.path.insert(0, COMFY_HOME)
    install_stubs()
    packs, mappings, display_names = load_packs()
    nodes = importlib.import_module("nodes")
    nodes.NODE_CLASS_MAPPINGS.update(mappings)
    nodes.NODE_DISPLAY_NAME_MAPPINGS.update(display_names)
    first = {"packs": packs, "nodes": object_info(mappings, display_names)}
    channel.write(json.dumps(first) + "\n")
    channel.flush()
    if not serve:
        return
    for line in sys.stdin:
        if line.strip():
            channel.write(json.dumps({"nodes": object_info(mappings, display_names)}) + "\n")
            channel.flush()


if __name__ == "__main__":
    main()
