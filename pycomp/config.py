"""The settings of a ranking run, shared by every stage (recorded in run.json)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

__all__ = ["PathLike", "RankConfig"]

PathLike = Union[str, os.PathLike]


@dataclass
class RankConfig:
    """Every setting of a ranking run (recorded in run.json).

    See ``pycomp rank --help`` for the meaning of each field.
    """

    text_field: str = "text"
    attribute: str = "better"
    noun: str = "text"
    context_field: Optional[str] = None
    context_noun: str = "Context"
    group_field: Optional[str] = None
    id_field: Optional[str] = None
    gold_field: Optional[str] = None
    model: Optional[str] = None
    adapter: Optional[str] = None
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    backend: str = "transformers"
    base_urls: Tuple[str, ...] = ()
    api: str = "auto"
    api_key_env: Optional[str] = None
    concurrency: int = 32
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    max_model_len: Optional[int] = None
    gpu_memory_utilization: Optional[float] = None
    template: Optional[str] = None
    system: Optional[str] = None
    labels: Tuple[str, str] = ("A", "B")
    per_item: Optional[float] = 4
    all_pairs: bool = False
    design: str = "random"
    budget: Optional[int] = None
    batch_pairs: Optional[int] = None
    stop_threshold: Optional[float] = None
    calibrate: bool = False
    seed: int = 0
    solver: str = "bt"
    alpha: float = 1.0
    dispersion: str = "auto"
    bootstrap: Optional[int] = None
    batch_size: int = 16
    fit_on: Optional[str] = None
    plots: bool = True
    curve: bool = True
    progress: bool = True
    cache: bool = True
    cache_dir: Optional[str] = None

    def design_name(self) -> str:
        """The pair design: ``"all"`` with ``all_pairs``, else ``design``."""
        return "all" if self.all_pairs else self.design
