"""Judge every within-article pair of a few SummEval articles once, in both orders, and store the answers.

The stored file (``bench/data/summeval_smollm2_pairs.csv``) is what
``bench/bench_budget.py --real`` replays: every design (random, greedy, active,
sorting) draws its comparisons from the same real judge answers, so the designs
differ only in which pairs they ask for.

One row per unordered pair of summaries of the same article, both orders::

    article_id, summary_a, summary_b, p_ab, p_ba, mass_ab, mass_ba

``p_ab`` is p(first label) with ``summary_a`` shown first, ``p_ba`` with
``summary_b`` shown first (pycomp's judgements, :func:`pycomp.judge.run.judge_pairs`,
the default template, attribute "more coherent", the article as context).
The human scores are not copied: the bench reads them from ``--data``.

Resumable: the raw judgements go to ``--log`` (pycomp's judgements JSONL) as
batches finish, and a rerun skips what is done. ``--max-minutes`` stops
between articles.

Example (what the stored file came from)::

    OMP_NUM_THREADS=1 python bench/judge_summeval_pairs.py --articles 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "summeval" / "summeval.jsonl"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--articles", type=int, default=3, help="Judge the first N articles (file order).")
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--log", type=Path, default=HERE / "results" / "summeval_pairs_judgements.jsonl")
    ap.add_argument("--out", type=Path, default=HERE / "data" / "summeval_smollm2_pairs.csv")
    args = ap.parse_args(argv)

    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import PromptSettings, judge_pairs
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.plan import all_pairs

    data = pd.read_json(args.data, lines=True)
    article_ids = list(dict.fromkeys(data["article_id"]))[: args.articles]
    backend = TransformersBackend.load("smollm2-135m", device="cpu")
    template = PairTemplate()
    settings = PromptSettings(attribute="more coherent", noun="summary", context_noun="Article")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for number, article in enumerate(article_ids, start=1):
        if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
            print(f"stopping after {number - 1} articles (--max-minutes)", flush=True)
            break
        items = data[data["article_id"] == article].reset_index(drop=True)
        ids = (items["article_id"].astype(str) + "/" + items["summary_id"].astype(str)).tolist()
        result = judge_pairs(backend, template, items["summary"].tolist(), all_pairs(len(items)), out=args.log,
                             ids=ids, contexts=items["article"].tolist(), settings=settings,
                             batch_size=args.batch_size, progress=False)
        c = result.comparisons
        rows.append(pd.DataFrame({
            "article_id": article,
            "summary_a": items["summary_id"].to_numpy()[c["i"].to_numpy()],
            "summary_b": items["summary_id"].to_numpy()[c["j"].to_numpy()],
            "p_ab": c["p_ab"].round(6), "p_ba": c["p_ba"].round(6),
            "mass_ab": c["mass_ab"].round(6), "mass_ba": c["mass_ba"].round(6),
        }))
        pd.concat(rows, ignore_index=True).to_csv(args.out, index=False)
        s = result.summary
        print(f"[{time.strftime('%H:%M:%S')}] article {number}/{len(article_ids)} {article}: {s['n_judged']} judged "
              f"in {s['seconds']:.0f} s, {s['n_reused']} reused", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
