"""A server killed in the middle of a run, then restarted: the rerun judges only what the first run had not logged.

The real ``vllm serve`` process group is SIGKILLed after the first batches are in
the judgements file; the run fails with an error naming the URL and the model;
the server is started again on the same port and the same command resumes.
Requests are counted by a pass-through proxy in front of the server.
"""
import json
import threading
import time

import numpy as np
import pytest

from engine_cases import SERVED_NAME, review_prompts
from fault_proxy import FaultProxy

from pycomp.judge.http import EndpointError, RetryPolicy

pytestmark = pytest.mark.llm


def test_killed_server_then_rerun_resumes(openai_backend_factory, vllm_server, tf_backend, tmp_path):
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import PromptSettings, judge_pairs

    port = int(vllm_server.url.rsplit(":", 1)[1].split("/")[0])
    proxy = FaultProxy("127.0.0.1", port, lambda n: None)
    log = tmp_path / "judgements.jsonl"
    texts, pairs, _ = review_prompts(tf_backend, n_pairs=40)
    n_prompts = len({p for p in review_prompts(tf_backend, n_pairs=40)[2]})
    settings = PromptSettings("more positive", "review")
    policy = RetryPolicy(retries=2, backoff=0.2, max_backoff=0.5, timeout=30.0)
    try:
        first = openai_backend_factory(urls=[proxy.url], policy=policy, concurrency=2)
        failure = {}

        def run():
            try:
                judge_pairs(first, PairTemplate(), texts, pairs, out=log, settings=settings, batch_size=2,
                            progress=False)
            except EndpointError as exc:
                failure["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 5):
            time.sleep(0.02)
        vllm_server.kill()
        thread.join(120)
        assert "error" in failure, "the run finished before the server was killed"
        message = str(failure["error"])
        assert proxy.url in message and f"model '{SERVED_NAME}'" in message, message
        assert "the prompt comparing item" in message, message  # and which items it judged
        done = len(log.read_text().splitlines()) - 1
        assert 4 <= done < n_prompts

        vllm_server.start()
        restart_s = vllm_server.wait_ready()
        print(f"vllm serve restarted in {restart_s:.1f} s; {done} of {n_prompts} prompts were logged before the kill")
        sent_before = len(proxy.forwarded)
        second = openai_backend_factory(urls=[proxy.url], policy=policy, concurrency=2)
        res = judge_pairs(second, PairTemplate(), texts, pairs, out=log, settings=settings, batch_size=2,
                          progress=False)
    finally:
        proxy.close()
    assert res.summary["n_from_log"] == done and res.summary["n_judged"] == n_prompts - done
    assert len(proxy.forwarded) - sent_before == n_prompts - done  # only the prompts never logged
    records = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    assert len(records) == n_prompts == len({r["key"] for r in records})
    assert np.all(np.isfinite(res.comparisons["p"]))
