"""device="cuda": the Thrust solvers built by nvcc, on a GPU, against the CPU backend.

The same source runs on the CPU in every test run as device="thrust"
(tests/test_solve_thrust.py checks it against the NumPy reference); here the CUDA build
must give the CPU backend's optimum to 1e-6 on every test graph, take torch CUDA tensors
in place, validate them on the GPU with the CPU backend's messages, and turn an
out-of-memory into a MemoryError naming the step, with the device memory freed.
"""
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import pycomp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference as R  # noqa: E402
from test_solve_thrust import BAD_INPUTS, CASES, _error_of  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not pycomp.cuda_available(), reason="pycomp's CUDA solvers cannot run here")]

ATOL = 1e-6
METHODS = ["newton", "mm", "newman"]


def _case(name):
    return CASES[name](np.random.default_rng(7))


def _solve(c, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        return pycomp.solve(**c.kwargs(), **kw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("name", sorted(CASES))
def test_bt_matches_cpu(name, alpha, method):
    c = _case(name)
    if alpha == 0 and not R.bt_mle_exists(c):
        pytest.skip("no MLE with alpha = 0")
    if name == "skewed_5_items" and method != "newton":
        pytest.skip("MM and Newman need more than 10^4 sweeps here, on the CPU backend too")
    ref = R.bt_solve(c, alpha)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha), 1e-12)
    if name == "skewed_5_items":
        tol = 1e-7  # see tests/test_solve_thrust.py
    kw = dict(alpha=alpha, method=method, tol=tol, max_iter=200_000)
    gpu = _solve(c, device="cuda", **kw)
    cpu = _solve(c, device="cpu", **kw)
    assert gpu.device == "cuda" and gpu.converged
    R.assert_close(gpu.scores, cpu.scores, atol=ATOL, what="cuda vs cpu")
    R.assert_close(gpu.scores, ref, atol=ATOL, what="cuda vs reference")
    np.testing.assert_array_equal(gpu.labels, cpu.labels)
    assert gpu.objective == pytest.approx(R.bt_objective(gpu.scores, c, alpha), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gaussian_matches_cpu(name, alpha):
    c = _case(name)
    kw = dict(model="gaussian", alpha=alpha, beta=0.5, tol=1e-7 if name == "skewed_5_items" else 1e-11,
              max_iter=200_000)
    gpu = _solve(c, device="cuda", **kw)
    cpu = _solve(c, device="cpu", **kw)
    R.assert_close(gpu.scores, cpu.scores, atol=ATOL, what="cuda vs cpu")


@pytest.mark.parametrize("se_method", ["exact", "local"])
def test_standard_errors_match_cpu(se_method):
    c = _case("mixed_ties")
    kw = dict(alpha=0.7, tol=1e-11, return_se=True, se_method=se_method)
    R.assert_close(_solve(c, device="cuda", **kw).se, _solve(c, device="cpu", **kw).se, atol=1e-8, rtol=1e-7)


def test_large_graph_matches_cpu():
    c = R.random_comparisons(np.random.default_rng(3), 100_003, 1_000_003, "mixed", weighted=True)
    gpu = _solve(c, device="cuda", alpha=1.0, tol=1e-9)
    cpu = _solve(c, device="cpu", alpha=1.0, tol=1e-9)
    R.assert_close(gpu.scores, cpu.scores, atol=ATOL)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_numpy_input_gives_the_cpu_error(name):
    kw = BAD_INPUTS[name]
    assert _error_of(lambda: pycomp.solve(**kw, device="cuda")) == _error_of(lambda: pycomp.solve(**kw, device="cpu"))


# --------------------------------------------------------------------------- #
# torch CUDA tensors, used in place
# --------------------------------------------------------------------------- #
try:
    import torch
except ImportError:  # the tests above need numpy only
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


@needs_torch
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_torch_cuda_tensors_solve_like_numpy(index_dtype):
    c = _case("mixed_ties")
    dt = getattr(torch, index_dtype)
    args = [torch.as_tensor(c.i, dtype=dt, device="cuda"), torch.as_tensor(c.j, dtype=dt, device="cuda"),
            torch.as_tensor(c.p, device="cuda")]
    w = torch.as_tensor(c.w, device="cuda")
    sol = pycomp.solve(*args, weights=w, n_items=c.n_items, alpha=0.3, tol=1e-11, device="auto")
    assert sol.device == "cuda"
    cpu = pycomp.solve(**c.kwargs(), alpha=0.3, tol=1e-11, device="cpu")
    R.assert_close(sol.scores, cpu.scores, atol=ATOL)
    se = pycomp.solve(*args, weights=w, n_items=c.n_items, alpha=0.3, tol=1e-11, device="cuda", return_se=True).se
    R.assert_close(se, pycomp.solve(**c.kwargs(), alpha=0.3, tol=1e-11, return_se=True).se, atol=1e-8, rtol=1e-7)


@needs_torch
def test_torch_float32_probabilities_are_converted():
    c = _case("soft")
    sol = pycomp.solve(torch.as_tensor(c.i, device="cuda"), torch.as_tensor(c.j, device="cuda"),
                       torch.as_tensor(c.p, dtype=torch.float32, device="cuda"), device="cuda")
    cpu = pycomp.solve(c.i, c.j, c.p.astype(np.float32), device="cpu")
    R.assert_close(sol.scores, cpu.scores, atol=ATOL)


@needs_torch
@pytest.mark.parametrize("name", ["index_out_of_range", "negative_index", "j_out_of_range", "self_comparison",
                                  "p_nan", "p_above_one", "negative_weight", "infinite_weight"])
def test_torch_cuda_tensors_are_validated_on_the_gpu_with_the_cpu_messages(name):
    kw = dict(BAD_INPUTS[name])
    on_gpu = {k: torch.as_tensor(np.asarray(kw[k]), device="cuda") for k in ("i", "j", "p", "weights") if k in kw}
    rest = {k: v for k, v in kw.items() if k not in on_gpu}
    assert _error_of(lambda: pycomp.solve(**on_gpu, **rest, device="cuda")) == _error_of(
        lambda: pycomp.solve(**kw, device="cpu")
    )


@needs_torch
def test_cuda_tensors_with_device_cpu_are_refused():
    i = torch.tensor([0, 1], device="cuda")
    with pytest.raises(ValueError, match="CUDA arrays"):
        pycomp.solve(i, torch.tensor([1, 0], device="cuda"), device="cpu")


@needs_torch
def test_out_of_memory_names_the_step_and_frees_the_device():
    free_before = torch.cuda.mem_get_info()[0]
    # n_items near 2^31: the solver's per-item arrays need far more than the GPU holds
    with pytest.raises(MemoryError, match=r"ran out of memory in step '.*' \(n_items = 2147483647"):
        pycomp.solve([0, 1], [1, 0], n_items=2**31 - 1, device="cuda")
    assert torch.cuda.mem_get_info()[0] >= free_before - (64 << 20)
    c = _case("soft")  # and the device still works
    R.assert_close(pycomp.solve(**c.kwargs(), device="cuda").scores, pycomp.solve(**c.kwargs()).scores, atol=ATOL)
