"""Choosing a backend and its options: what is refused before any engine starts (no vLLM needed)."""
import pytest

from pycomp.config import RankConfig
from pycomp.judge_stage import load_judge


@pytest.mark.parametrize("fields, message", [
    ({"backend": "tgi"}, "--backend 'tgi' is not one of: transformers, vllm, openai"),
    ({"base_urls": ("http://127.0.0.1:9/v1",)}, "--base-url is for --backend openai (this run uses --backend "
                                                 "transformers)"),
    ({"backend": "vllm", "base_urls": ("http://h/v1",)}, "--base-url is for --backend openai (this run uses "
                                                          "--backend vllm)"),
    ({"backend": "openai", "model": "m"}, "--backend openai needs --base-url URL (repeat it for several servers)"),
    ({"backend": "openai", "base_urls": ("http://127.0.0.1:9/v1",)},
     "--backend openai needs --model: the model name the server serves"),
    ({"backend": "openai", "model": "m", "base_urls": ("http://127.0.0.1:9/v1",), "adapter": "ad"},
     "--adapter cannot be applied by --backend openai: load the adapter in the server (vllm serve --enable-lora "
     "--lora-modules NAME=PATH) and pass --model NAME"),
    ({"backend": "openai", "model": "m", "base_urls": ("http://127.0.0.1:9/v1",), "api": "grpc"},
     "api='grpc' is not one of auto, completions, chat"),
])
def test_refused_settings(fields, message):
    with pytest.raises(ValueError) as info:
        load_judge(RankConfig(**fields))
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "int8"}, "--dtype 'int8' is not one of auto, float32, bfloat16, float16"),
    ({"tensor_parallel_size": 0}, "--tensor-parallel-size 0 must be >= 1"),
    ({"data_parallel_size": -1}, "--data-parallel-size -1 must be >= 1"),
    ({"gpu_memory_utilization": 1.5}, "--gpu-memory-utilization 1.5 must be in (0, 1]"),
    ({"max_model_len": 4}, "--max-model-len 4 must be at least 16 tokens"),
])
def test_engine_options_are_checked(kwargs, message):
    pytest.importorskip("torch")
    from pycomp.judge.vllm_backend import engine_kwargs

    with pytest.raises(ValueError) as info:
        engine_kwargs(**kwargs)
    assert str(info.value) == message


def test_engine_options_pass_through():
    torch = pytest.importorskip("torch")
    from pycomp.judge.vllm_backend import engine_kwargs

    out = engine_kwargs(tensor_parallel_size=2, data_parallel_size=3, max_model_len=4096, gpu_memory_utilization=0.5,
                        seed=7, enable_prefix_caching=False)
    on_cpu = not torch.cuda.is_available()
    assert out == {"dtype": "float32" if on_cpu else "auto", "tensor_parallel_size": 2, "data_parallel_size": 3,
                   "seed": 7, "enforce_eager": on_cpu, "max_model_len": 4096, "gpu_memory_utilization": 0.5,
                   "enable_prefix_caching": False}


def test_cli_takes_the_backend_options(tmp_path):
    from typer.testing import CliRunner

    from pycomp.cli import app

    result = CliRunner().invoke(app, ["judge", "example:reviews", "--out", str(tmp_path / "x.jsonl"), "--backend", "bogus",
                                      "--base-url", "http://127.0.0.1:9/v1", "--base-url", "http://127.0.0.1:10/v1"])
    assert result.exit_code == 2
    assert "error: --backend 'bogus' is not one of: transformers, vllm, openai" in result.output
