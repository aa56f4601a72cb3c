"""Zero-shot SmolLM2-135M on SummEval: 4 comparisons per item vs all pairs.

Protocol (the comparative-assessment literature's): summaries are compared only
with summaries of the same article (16 per article, 120 unordered pairs, 240
prompts with both orders); the article is the prompt's context; the quality is
the Spearman correlation between predicted scores and the human score,
computed per article and averaged over articles.

Every within-article pair of the first ``--articles`` articles is judged once
(resumable: the judgements file is appended to as batches finish and a rerun
skips what is done), article by article. Because a judgement depends only on
its prompt, any design is a subset of those judgements, so one run gives

* ``all pairs``      : 15 comparisons per summary;
* ``random k=4``     : the balanced random design with 4 comparisons per summary
  (32 of the 120 pairs of an article), averaged over ``--seeds`` designs;
* ``greedy k=4``     : the information-greedy design (deterministic);
* ``k = 1..15`` curve: random k-per-item designs.

Scores come from ``pycomp.solve`` (PoE-BT, alpha = 1) on the combined
both-order probabilities. Results are rewritten after every article into
``<out>/summeval_<attribute>.json`` and ``.md``, so a long run can be stopped
at any time (``--max-minutes`` stops it cleanly between articles).

Example (what the README figures come from)::

    nohup python bench/summeval_zero_shot.py --articles 100 --max-minutes 100 &

Reading the data: ``../shared/data/summeval/summeval.jsonl`` (never copied into the repo).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Passive OpenMP waiting: spinning threads make torch several times slower on a busy CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from utils import git_commit, machine_info, markdown_table  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "summeval" / "summeval.jsonl"
ATTRIBUTE_PHRASE = {
    "coherence": "more coherent",
    "fluency": "more fluent",
    "consistency": "more consistent with the article",
    "relevance": "more relevant to the article",
}


def load_summeval(path: Path) -> pd.DataFrame:
    frame = pd.read_json(path, lines=True)
    frame["uid"] = frame["article_id"].astype(str) + "/" + frame["summary_id"].astype(str)
    return frame


def evaluate(frame: pd.DataFrame, comps: pd.DataFrame, attribute: str, seeds: int) -> dict:
    """Per-article Spearman for all pairs, random/greedy k=4 designs and the k curve."""
    from pycomp import metrics as M
    from pycomp import plan as P
    from pycomp.pipeline import solve_scores

    n = len(frame)
    gold = frame[attribute].to_numpy(float)
    groups = frame["article_id"].astype(str).to_numpy()
    key = {(int(i), int(j)): r for r, (i, j) in enumerate(zip(comps["i"], comps["j"]))}

    def score(pair_rows) -> dict:
        sub = comps.iloc[pair_rows]
        sol = solve_scores(n, sub, "bt", 1.0, return_se=False)
        sp = M.grouped_correlation(sol.scores, gold, groups, "spearman")
        pe = M.grouped_correlation(sol.scores, gold, groups, "pearson")
        acc = M.pairwise_accuracy(sol.scores, gold, groups)["accuracy"]
        return {"spearman_per_article": sp["mean"], "pearson_per_article": pe["mean"],
                "pairwise_accuracy": acc, "n_articles": sp["n_groups"], "n_pairs": int(len(pair_rows)),
                "per_item": 2.0 * len(pair_rows) / n}

    def rows_for(pairs) -> np.ndarray:
        return np.array([key[(int(a), int(b))] for a, b in pairs], dtype=np.int64)

    results = {"all_pairs": score(np.arange(len(comps)))}
    runs = [score(rows_for(P.random_pairs(n, 4, groups=groups, seed=s))) for s in range(seeds)]
    results["random_k4"] = {
        "spearman_per_article": float(np.mean([r["spearman_per_article"] for r in runs])),
        "spearman_per_article_std_over_seeds": float(np.std([r["spearman_per_article"] for r in runs])),
        "pearson_per_article": float(np.mean([r["pearson_per_article"] for r in runs])),
        "pairwise_accuracy": float(np.mean([r["pairwise_accuracy"] for r in runs])),
        "n_pairs": runs[0]["n_pairs"], "per_item": runs[0]["per_item"], "seeds": seeds,
    }
    results["greedy_k4"] = score(rows_for(P.greedy_pairs(n, 4, groups=groups)))
    curve = []
    for k in range(1, 16):
        if k == 15:
            curve.append({"k": k, **{kk: results["all_pairs"][kk] for kk in ("spearman_per_article", "per_item")}})
            continue
        vals = [score(rows_for(P.random_pairs(n, k, groups=groups, seed=s)))["spearman_per_article"]
                for s in range(seeds)]
        curve.append({"k": k, "spearman_per_article": float(np.mean(vals)), "per_item": float(k)})
    results["curve"] = curve
    # The judge on its own: agreement of the combined p with the human ordering.
    results["judge_accuracy"] = M.comparison_accuracy(comps["i"], comps["j"], comps["p"], gold)["accuracy"]
    return results


def write_report(out: Path, attribute: str, state: dict) -> None:
    path = out / f"summeval_{attribute}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=float) + "\n")
    tmp.replace(path)
    res = state.get("results")
    lines = [
        f"# SummEval {attribute}, zero-shot {state['model']} (pycomp {state['pycomp']})",
        "",
        f"Articles judged: {state['articles_done']} of {state['articles_requested']} requested "
        f"(the first {state['articles_done']} article ids in file order), {state['summaries']} summaries, "
        f"{state['prompts_total']} prompts (every within-article pair, both orders).",
        f"Judging wall time {state['judge_seconds'] / 60:.1f} min in total on {state['machine'].get('n_cpus')} CPU "
        f"cores (load average at start {state['machine'].get('loadavg_1m')}); the last run judged "
        f"{state['prompts_judged_this_run']} prompts in {state['judge_seconds_this_run'] / 60:.1f} min, "
        f"{state['prompts_per_second']:.2f} prompts/s, batch size {state['batch_size']}.",
        "",
    ]
    if res:
        rows = [
            {"design": "all pairs", "k": "15", **res["all_pairs"]},
            {"design": f"random, k=4 (mean of {res['random_k4']['seeds']} designs)", "k": "4", **res["random_k4"]},
            {"design": "greedy (PoE information), k=4", "k": "4", **res["greedy_k4"]},
        ]
        for r in rows:
            for f in ("spearman_per_article", "pearson_per_article", "pairwise_accuracy"):
                r[f] = f"{r[f]:.3f}"
            r["n_pairs"] = str(r["n_pairs"])
        lines.append(markdown_table(rows, [("design", "design"), ("comparisons per summary", "k"),
                                           ("pairs judged", "n_pairs"),
                                           ("Spearman (per article, mean)", "spearman_per_article"),
                                           ("Pearson (per article, mean)", "pearson_per_article"),
                                           ("pairwise accuracy", "pairwise_accuracy")]))
        lines += ["", f"Judge alone (combined p vs human order, all pairs): accuracy {res['judge_accuracy']:.3f}; "
                      f"position bias {state['judge']['position_bias']:+.3f}, order consistency "
                      f"{state['judge']['order_consistency']:.2f}, answer-token mass "
                      f"{state['judge']['answer_mass_mean']:.3f}.", "",
                  "Spearman (per article, mean) against comparisons per summary (random designs):", ""]
        lines.append(markdown_table(
            [{"k": str(c["k"]), "rho": f"{c['spearman_per_article']:.3f}"} for c in res["curve"]],
            [("k", "k"), ("Spearman", "rho")]))
    lines += ["", f"Command: `{state['command']}`", ""]
    (out / f"summeval_{attribute}.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--attribute", default="coherence", choices=sorted(ATTRIBUTE_PHRASE))
    ap.add_argument("--articles", type=int, default=100, help="Judge the first N articles (file order).")
    ap.add_argument("--max-minutes", type=float, default=None, help="Stop between articles after this long.")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=10, help="Random designs averaged for k < 15.")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    import pycomp
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import PromptSettings, judge_pairs, judge_summary
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.plan import all_pairs

    args.out.mkdir(parents=True, exist_ok=True)
    data = load_summeval(args.data)
    article_ids = list(dict.fromkeys(data["article_id"]))[: args.articles]
    log = args.out / f"summeval_{args.attribute}_judgements.jsonl"
    backend = TransformersBackend.load(args.model, device="auto")
    template = PairTemplate()
    settings = PromptSettings(attribute=ATTRIBUTE_PHRASE[args.attribute], noun="summary", context_noun="Article")
    state = {
        "attribute": args.attribute, "model": args.model, "pycomp": pycomp.__version__,
        "commit": git_commit(REPO), "machine": machine_info(), "device": str(backend.device),
        "batch_size": args.batch_size, "articles_requested": len(article_ids), "articles_done": 0,
        "summaries": 0, "prompts_total": 0, "judge_seconds": 0.0, "prompts_per_second": 0.0,
        "prompts_judged_this_run": 0, "judge_seconds_this_run": 0.0,
        "command": "python bench/summeval_zero_shot.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results_file": log.name,
    }
    prev = args.out / f"summeval_{args.attribute}.json"
    if prev.exists():  # resumed run: keep the judging time already recorded
        old = json.loads(prev.read_text())
        state["judge_seconds"] = float(old.get("judge_seconds", 0.0))
        state["previous_runs"] = old.get("previous_runs", []) + [
            {k: old.get(k) for k in ("command", "articles_done", "prompts_judged_this_run", "judge_seconds_this_run")}]
    start = time.perf_counter()
    frames, comps = [], []
    offset = 0
    for number, article in enumerate(article_ids, start=1):
        if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
            print(f"stopping after {number - 1} articles (--max-minutes {args.max_minutes})", flush=True)
            break
        items = data[data["article_id"] == article].reset_index(drop=True)
        pairs = all_pairs(len(items))
        result = judge_pairs(backend, template, items["summary"].tolist(), pairs, out=log, ids=items["uid"].tolist(),
                             contexts=items["article"].tolist(), settings=settings, batch_size=args.batch_size,
                             progress=False)
        s = result.summary
        state["judge_seconds"] += s["seconds"]
        state["judge_seconds_this_run"] += s["seconds"]
        state["prompts_judged_this_run"] += s["n_judged"]
        c = result.comparisons.copy()
        c["i"] += offset
        c["j"] += offset
        offset += len(items)
        frames.append(items)
        comps.append(c)
        frame = pd.concat(frames, ignore_index=True)
        allc = pd.concat(comps, ignore_index=True)
        state["articles_done"] = number
        state["summaries"] = len(frame)
        state["prompts_total"] = 2 * len(allc)
        if state["judge_seconds_this_run"]:  # throughput of the judging done by this process
            state["prompts_per_second"] = state["prompts_judged_this_run"] / state["judge_seconds_this_run"]
        state["judge"] = judge_summary(allc["p_ab"], allc["p_ba"], allc["mass_ab"], allc["mass_ba"])
        state["results"] = evaluate(frame, allc, args.attribute, args.seeds)
        write_report(args.out, args.attribute, state)
        r = state["results"]
        print(f"[{time.strftime('%H:%M:%S')}] article {number}/{len(article_ids)} ({s['n_judged']} judged, "
              f"{s['n_reused']} reused, {s['seconds']:.0f} s): Spearman per article all pairs "
              f"{r['all_pairs']['spearman_per_article']:.3f}, random k=4 {r['random_k4']['spearman_per_article']:.3f}, "
              f"greedy k=4 {r['greedy_k4']['spearman_per_article']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
