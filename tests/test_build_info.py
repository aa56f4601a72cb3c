"""build_info / cuda_available describe this build consistently."""
import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest

import pycomp


def test_build_info_keys_and_types():
    info = pycomp.build_info()
    assert isinstance(info, dict)
    for key in ("version", "openmp", "cuda_compiled", "cuda_device_count", "cuda_unavailable_reason"):
        assert key in info, key
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["cuda_compiled"], bool)
    assert isinstance(info["cuda_device_count"], int) and info["cuda_device_count"] >= 0
    assert isinstance(info["cuda_unavailable_reason"], str)


def test_version_is_consistent():
    info = pycomp.build_info()
    assert info["version"] == pycomp.__version__ == importlib.metadata.version("pycomp")


def test_cuda_available_agrees_with_build_info():
    info = pycomp.build_info()
    avail = pycomp.cuda_available()
    assert isinstance(avail, bool)
    assert avail == (info["cuda_compiled"] and info["cuda_solvers"] and info["cuda_device_count"] > 0)
    # a reason is given exactly when CUDA cannot be used
    assert (info["cuda_unavailable_reason"] == "") == avail


def test_cuda_available_means_solve_on_cuda_works():
    """cuda_available() is True exactly when solve(device="cuda") runs (it was True with no solver)."""
    args = ([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.4])
    if pycomp.cuda_available():
        assert pycomp.solve(*args, device="cuda").device == "cuda"
    else:
        with pytest.raises(RuntimeError, match="device='cuda' was requested but the CUDA backend cannot be used: .+"):
            pycomp.solve(*args, device="cuda")


def test_solver_api_needs_numpy_only():
    """`import pycomp` and pycomp.solve run with pandas (and typer) unimportable."""
    script = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pandas", "typer", "scipy", "torch"):
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())
        import pycomp
        sol = pycomp.solve([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.4], return_se=True)
        bt = pycomp.BradleyTerry().fit([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.4])
        assert sol.converged and abs(bt.scores_ - sol.scores).max() < 1e-12
        print("ok", sorted(m for m in ("pandas", "typer", "scipy", "torch") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok []"


def test_build_info_returns_a_copy():
    info = pycomp.build_info()
    info["version"] = "mutated"
    assert pycomp.build_info()["version"] == pycomp.__version__


def test_solution_reports_cpu_device_without_cuda():
    sol = pycomp.solve([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.4], device="cpu")
    assert sol.device == "cpu"
    if not pycomp.cuda_available():
        assert pycomp.solve([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.4], device="auto").device == "cpu"


def test_import_loads_no_openmp_runtime_and_sets_no_environment():
    """`import pycomp` neither sets OMP_*/GOMP_* variables nor loads libgomp; the first solve does."""
    script = textwrap.dedent("""
        import os, sys
        before = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}
        def gomp_loaded():
            with open("/proc/self/maps") as maps:
                return "libgomp" in maps.read()
        import pycomp
        after = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}
        loaded_on_import = gomp_loaded()
        pycomp.solve([0, 1], [1, 0], [0.6, 0.3])
        print(before == after, loaded_on_import, gomp_loaded(), pycomp.__version__ == pycomp.build_info()["version"])
    """)
    # LD_PRELOAD: an engine started earlier in the session (vLLM's CPU platform) may preload its libgomp
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_")) and k != "LD_PRELOAD"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "False", "True", "True"]


def test_the_command_line_waits_passively_unless_the_user_chose(tmp_path):
    """A `pycomp` command sets OMP_WAIT_POLICY=PASSIVE before the OpenMP runtime loads."""
    inp = tmp_path / "c.csv"
    inp.write_text("a,b,p\nx,y,0.7\ny,z,0.6\n")
    script = textwrap.dedent(f"""
        import sys
        from pycomp.cli import main
        sys.argv = ["pycomp", "solve", {str(inp)!r}, "--out", {str(tmp_path / "s.csv")!r}]
        try:
            main()
        except SystemExit:
            pass
        import os
        print(os.environ.get("OMP_WAIT_POLICY"))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env["OMP_DISPLAY_ENV"] = "TRUE"  # libgomp prints the settings it read when it loads
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "PASSIVE"
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in proc.stderr, proc.stderr[-2000:]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.stdout.strip().splitlines()[-1] == "ACTIVE"
