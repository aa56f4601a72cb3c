"""``pycomp train`` on the command line: help and clear errors for bad input (no model is loaded)."""
import json

import pytest

typer_testing = pytest.importorskip("typer.testing")
pytest.importorskip("transformers")

from pycomp.cli import app  # noqa: E402

runner = typer_testing.CliRunner()


def _items(tmp_path, rows):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(args):
    result = runner.invoke(app, args)
    return result.exit_code, (result.output or "") + (getattr(result, "stderr", "") or "")


GOOD = [{"text": f"text {k}", "score": float(k % 3), "group": f"g{k // 3}"} for k in range(6)]


def test_help_lists_the_options():
    code, out = _run(["train", "--help"])
    assert code == 0
    for flag in ("--objective", "--gamma", "--per-item", "--max-steps", "--epochs", "--lora-r", "--out"):
        assert flag in out


@pytest.mark.parametrize("rows, extra, message", [
    ([{"text": f"t{k}", "score": 2.0, "group": "g"} for k in range(4)], [], "constant"),
    ([{"text": "a", "score": 1.0, "group": "g1"}, {"text": "b", "score": 2.0, "group": "g1"},
      {"text": "c", "score": 3.0, "group": "g2"}], [], "group 'g2'"),
    ([{"text": "a", "score": 1.0, "group": "g"}, {"text": "b", "score": None, "group": "g"}], [],
     "row 2: gold field 'score'"),
    (GOOD, ["--gamma", "0"], "gamma=0"),
    (GOOD, ["--gamma", "-2"], "gamma=-2"),
    (GOOD, ["--objective", "dpo"], "objective='dpo'"),
    (GOOD, ["--max-steps", "3", "--epochs", "1"], "not both"),
])
def test_bad_input_is_a_clear_error(tmp_path, rows, extra, message):
    path = _items(tmp_path, rows)
    code, out = _run(["train", path, "--gold-field", "score", "--group-field", "group",
                      "--out", str(tmp_path / "ad"), "--device", "cpu", *extra])
    assert code == 2, out
    assert message in out, out


def test_ids_need_only_be_unique_within_their_group(tmp_path):
    """Ids that repeat across groups (SummEval's S0 in every article) are read; within a group they must not."""
    from pycomp.train import JudgeTrainingConfig
    from pycomp.train.trainer import _load_items

    rows = [{"id": f"S{k % 3}", "text": f"text {k}", "score": float(k % 3), "group": f"A{k // 3}"} for k in range(6)]
    config = JudgeTrainingConfig(output_dir=str(tmp_path / "ad"), gold_field="score", group_field="group",
                                 id_field="id")
    items, _ = _load_items(_items(tmp_path, rows), config)
    assert items.ids == ["S0", "S1", "S2"] * 2 and list(items.groups) == ["A0"] * 3 + ["A1"] * 3
    rows[2]["id"] = "S0"
    code, out = _run(["train", _items(tmp_path, rows), "--gold-field", "score", "--group-field", "group",
                      "--id-field", "id", "--out", str(tmp_path / "ad"), "--device", "cpu"])
    assert code == 2, out
    assert ("duplicate id 'S0' in field 'id' within group 'A0' (field 'group'): rows 1 and 3; "
            "ids must be unique within a group") in " ".join(out.split()), out


def test_missing_gold_field_names_the_fields(tmp_path):
    code, out = _run(["train", _items(tmp_path, GOOD), "--gold-field", "stars", "--out", str(tmp_path / "ad")])
    assert code == 2 and "'stars'" in out and "--gold-field" in out, out


def test_qlora_without_cuda_is_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out = _run(["train", _items(tmp_path, GOOD), "--gold-field", "score", "--group-field", "group",
                      "--quantization", "4bit", "--out", str(tmp_path / "ad")])
    assert code == 2, out
    assert "needs a CUDA GPU" in out and "--quantization none" in out, out


def test_no_bitsandbytes_kernel_notice(tmp_path):
    """transformers' Trainer imports peft, which imports bitsandbytes: its CPU kernel notice is not printed."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYCOMP_VERBOSE", None)
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pycomp.cli", "train", str(missing), "--gold-field", "score",
                           "--out", str(tmp_path / "adapter")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr == f"error: '{missing}' does not exist\n", proc.stdout + proc.stderr
