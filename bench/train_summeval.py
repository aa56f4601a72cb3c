"""The founding paper's experiment on SummEval coherence: zero-shot vs hard vs soft fine-tuned judges.

SummEval (``../shared/data/summeval``): 100 articles x 16 summaries, expert
coherence scores. The articles are split at random (``--seed``) into
``--train-articles`` (80) for training and ``--test-articles`` (20) for
testing. Three judges, all SmolLM2-135M with the same prompt and answer tokens
as ``pycomp rank``:

* ``zero``: the base model, zero-shot;
* ``hard``: LoRA fine-tuned with ``--objective hard`` (t = 1[s_i > s_j], ties 0.5);
* ``soft``: LoRA fine-tuned with ``--objective soft --gamma 5`` (the paper's method).

Each judge scores the test summaries with PoE-BT, within articles, from
(a) a random design with 4 comparisons per summary and (b) all pairs (120 per
article), every pair judged in both orders; the figure is the Spearman
correlation with the expert scores per article, averaged over the test
articles (the SummEval protocol), as ``pycomp rank`` computes it, with its
standard error across articles (std with ddof=1 / sqrt(n)); the per-article
values are kept in the JSON.

Everything is resumable and written as it goes: the work folder holds the
items, the adapters (Trainer checkpoints every ``--save-steps``), and one
``pycomp rank`` output folder per (judge, design) whose ``judgements.jsonl``
is appended batch by batch; the all-pairs run starts from the 4-per-item
run's judgements. After every stage ``bench/results/train_summeval.json`` and
``.md`` are rewritten with what is finished (figures, timings, the exact
settings). Rerun the same command to continue after a kill.

Stages run in this order (the paper's method and its baseline first, the costly all-pairs scoring last):
``train/soft, soft/k4, zero/k4, train/hard, hard/k4, zero/all, soft/all, hard/all``.

On a 2-core shared CPU the full experiment does not fit in a working
session; ``--context-tokens`` (default 0: coherence is judged on the
summary alone, the article is not shown), ``--train-per-item``,
``--max-steps`` and ``--max-summary-tokens`` size it. Measure first with
``--measure`` (one training step and one judging batch on real prompts).

Usage::

    python bench/train_summeval.py --measure
    python bench/train_summeval.py --report-only    # rewrite the .md (and per-article figures) from the .json
    nohup python bench/train_summeval.py --max-steps 150 > bench/results/train_summeval.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

DATA = ROOT.parent / "shared" / "data" / "summeval" / "summeval.jsonl"
STAGES = ("train/soft", "soft/k4", "zero/k4", "train/hard", "hard/k4", "zero/all", "soft/all", "hard/all")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--work", default=str(HERE / "results" / "train_summeval_work"),
                    help="Work folder (items, adapters, judgements).")
    ap.add_argument("--results", default=str(HERE / "results" / "train_summeval"),
                    help="Results prefix: writes PREFIX.json and PREFIX.md.")
    ap.add_argument("--attribute-field", default="coherence")
    ap.add_argument("--train-articles", type=int, default=80)
    ap.add_argument("--test-articles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context-tokens", type=int, default=0,
                    help="Show the first N tokens of the article (0: no article).")
    ap.add_argument("--max-summary-tokens", type=int, default=0, help="Truncate summaries (0: never).")
    ap.add_argument("--train-per-item", type=float, default=2.0, help="Training pairs per summary.")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--gamma", type=float, default=5.0)
    ap.add_argument("--save-steps", type=int, default=10)
    ap.add_argument("--judge-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box).")
    ap.add_argument("--all-pairs-articles", type=int, default=0,
                    help="Score all pairs on only the first N test articles (0: every test article); "
                         "the 4-per-summary figure is then also given on those N articles.")
    ap.add_argument("--stages", default=",".join(STAGES), help="Comma list, subset of: " + ",".join(STAGES))
    ap.add_argument("--measure", action="store_true", help="Time one training step and one judging batch, then exit.")
    ap.add_argument("--report-only", action="store_true",
                    help="Rewrite PREFIX.md (and the per-article figures in PREFIX.json, from the rank outputs "
                         "still in the work folder) from PREFIX.json; loads no model, runs no stage.")
    return ap.parse_args(argv)


def prepare_items(args, tokenizer) -> dict:
    """Write train.jsonl / test.jsonl into the work folder (articles split by seed); return facts."""
    import numpy as np
    import pandas as pd

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    frame = pd.read_json(args.data, lines=True)
    articles = np.array(sorted(frame["article_id"].unique()))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(articles))
    test = set(articles[order[: args.test_articles]].tolist())
    train = set(articles[order[args.test_articles: args.test_articles + args.train_articles]].tolist())

    def cut(text: str, n: int) -> str:
        if n <= 0:
            return text
        ids = tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= n else tokenizer.decode(ids[:n]).rstrip() + " ..."

    frame = frame.copy()
    if args.max_summary_tokens > 0:
        frame["summary"] = [cut(s, args.max_summary_tokens) for s in frame["summary"]]
    if args.context_tokens > 0:
        firsts = {a: cut(t, args.context_tokens) for a, t in zip(frame["article_id"], frame["article"])}
        frame["article"] = [firsts[a] for a in frame["article_id"]]
    frame["id"] = [f"{a}/{s}" for a, s in zip(frame["article_id"], frame["summary_id"])]
    cols = ["id", "article_id", "summary_id", "summary", args.attribute_field] + (["article"] if args.context_tokens > 0 else [])
    frame[frame["article_id"].isin(train)][cols].to_json(work / "train.jsonl", orient="records", lines=True)
    frame[frame["article_id"].isin(test)][cols].to_json(work / "test.jsonl", orient="records", lines=True)
    subset = sorted(test)[: args.all_pairs_articles] if args.all_pairs_articles > 0 else sorted(test)
    frame[frame["article_id"].isin(subset)][cols].to_json(work / "test_all_pairs.jsonl", orient="records", lines=True)
    return {"train_articles": sorted(train), "test_articles": sorted(test),
            "n_train_items": int(frame["article_id"].isin(train).sum()),
            "n_test_items": int(frame["article_id"].isin(test).sum()),
            "all_pairs_articles": [int(a) if isinstance(a, (int, np.integer)) else a for a in subset]}


def item_fields(args) -> dict:
    out = dict(text_field="summary", gold_field=args.attribute_field, group_field="article_id",
               id_field="id", noun="summary", attribute=f"more {args.attribute_field}")
    if args.context_tokens > 0:
        out.update(context_field="article", context_noun="Article")
    return out


def train_config(args, objective: str):
    from pycomp.train import JudgeTrainingConfig

    f = item_fields(args)
    f.pop("id_field")
    return JudgeTrainingConfig(
        output_dir=str(Path(args.work) / f"adapter_{objective}"), objective=objective, gamma=args.gamma,
        per_item=args.train_per_item, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=args.warmup_steps, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r, save_steps=args.save_steps,
        save_total_limit=1, logging_steps=5, seed=args.seed, use_cpu=not _cuda(), disable_tqdm=True,
        id_field="id", **f,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def rank_config(args, adapter, design: str):
    from pycomp.pipeline import RankConfig

    return RankConfig(**item_fields(args), adapter=adapter, per_item=4, all_pairs=design == "all",
                      seed=args.seed, batch_size=args.judge_batch, plots=False, curve=design == "all",
                      progress=False)


def gold_table(args):
    """SummEval's gold scores keyed as the items are: ``id`` (article/summary), ``article_id``, the attribute."""
    import pandas as pd

    frame = pd.read_json(args.data, lines=True)
    frame["id"] = [f"{a}/{s}" for a, s in zip(frame["article_id"], frame["summary_id"])]
    return frame[["id", "article_id", args.attribute_field]]


def article_spearman(rank_dir: Path, gold, articles, gold_field: str) -> dict:
    """Spearman of a rank run's scores with gold in each of ``articles``, with their mean and standard error.

    Parameters
    ----------
    rank_dir : Path
        A ``pycomp rank`` output folder (its ``scores.csv``: id, score).
    gold : pandas.DataFrame
        ``id``, ``article_id`` and the gold field (:func:`gold_table`).
    articles : iterable
        The articles to report.
    gold_field : str

    Returns
    -------
    dict
        ``per_article`` ({article: rho}) and the :func:`spearman_stats` of those values.
    """
    import pandas as pd
    from scipy.stats import spearmanr

    scores = pd.read_csv(rank_dir / "scores.csv", dtype={"id": str})
    both = scores[["id", "score"]].merge(gold[["id", "article_id", gold_field]], on="id")
    wanted = set(articles)
    per = {str(a): float(spearmanr(g["score"], g[gold_field]).statistic)
           for a, g in both.groupby("article_id") if a in wanted}
    missing = sorted(str(a) for a in wanted - set(per))
    if missing:
        raise ValueError(f"{rank_dir / 'scores.csv'} has no scores for article(s) {', '.join(missing)}")
    return {"per_article": per, **spearman_stats(per.values())}


def spearman_stats(values) -> dict:
    """Mean of per-article correlations and its standard error across articles.

    Articles whose correlation is undefined (NaN: constant scores) are left
    out, as ``pycomp rank``'s per-group mean does. The standard error is
    ``std(ddof=1) / sqrt(n)`` (None with fewer than 2 articles).

    Returns
    -------
    dict
        ``mean``, ``se``, ``n`` (articles used) and ``n_undefined``.
    """
    import numpy as np

    v = np.asarray(list(values), dtype=float)
    ok = v[np.isfinite(v)]
    n = int(ok.size)
    return {"mean": float(ok.mean()) if n else None,
            "se": float(ok.std(ddof=1) / np.sqrt(n)) if n >= 2 else None,
            "n": n, "n_undefined": int(v.size - n)}


def add_article_stats(stage: str, r: dict, gold, split: dict, gold_field: str) -> bool:
    """Fill a finished rank stage's per-article Spearman values from its ``scores.csv`` when it is there.

    The 4-per-summary stages get two sets: all test articles and the all-pairs
    subset. Returns False when the rank output is gone (nothing can be recomputed).
    """
    out = Path(r.get("out", ""))
    if not (out / "scores.csv").is_file():
        return False
    design = stage.split("/")[1]
    if design == "all":
        r["spearman_articles"] = article_spearman(out, gold, split["all_pairs_articles"], gold_field)
    else:
        r["spearman_articles"] = article_spearman(out, gold, split["test_articles"], gold_field)
        r["spearman_articles_subset"] = article_spearman(out, gold, split["all_pairs_articles"], gold_field)
        r["spearman_per_article_subset"] = r["spearman_articles_subset"]["mean"]
    return True


def results_paths(args):
    prefix = Path(args.results)
    return prefix.with_suffix(".json"), prefix.with_suffix(".md")


def load_results(args) -> dict:
    path, _ = results_paths(args)
    if path.is_file():
        return json.loads(path.read_text())
    return {"stages": {}}


def write_results(args, res: dict) -> None:
    from pycomp.pipeline import write_json

    path, md = results_paths(args)
    write_json(res, path)
    md.write_text(markdown(res) + "\n")


def markdown(res: dict) -> str:
    st = res.get("stages", {})
    lines = ["# SummEval coherence: zero-shot vs hard vs soft fine-tuned SmolLM2-135M", ""]
    s = res.get("settings", {})
    if s:
        lines.append(f"Split: {s.get('train_articles')} training articles / {s.get('test_articles')} test articles "
                     f"(seed {s.get('seed')}); article shown: "
                     f"{'first ' + str(s['context_tokens']) + ' tokens' if s.get('context_tokens') else 'no'}; "
                     f"training: {s.get('max_steps')} steps x batch {s.get('batch_size')}, "
                     f"{s.get('train_per_item')} pairs per summary (both orders), LoRA r={s.get('lora_r')}, "
                     f"lr {s.get('lr')}, gamma {s.get('gamma')}; device {res.get('device')}, "
                     f"{s.get('threads')} torch thread(s).")
        lines.append("")
    lines.append("Spearman per test article, averaged (PoE-BT scores vs expert coherence), "
                 "± its standard error across articles (std with ddof=1 / sqrt(n)); n = articles:")
    lines.append("")
    n_all = len(res.get("split", {}).get("all_pairs_articles", [])) or s.get("test_articles")
    lines.append(f"| judge | 4 comparisons / summary ({s.get('test_articles')} articles) "
                 f"| 4 comparisons / summary ({n_all} articles) | all pairs, 120 / article ({n_all} articles) "
                 f"| judge pair accuracy (all pairs) | position bias (all pairs) |")
    lines.append("|---|---|---|---|---|---|")
    missing = []
    for judge in ("zero", "hard", "soft"):
        k4, al = st.get(f"{judge}/k4"), st.get(f"{judge}/all")
        acc = f"{al['judge_accuracy']:.3f}" if al and al.get("judge_accuracy") is not None else (
            f"{k4['judge_accuracy']:.3f} (k4)" if k4 and k4.get("judge_accuracy") is not None else "")
        bias = f"{al['position_bias']:+.3f}" if al and al.get("position_bias") is not None else ""
        cells = []
        for name, r, key, mean_key in ((f"{judge}/k4", k4, "spearman_articles", "spearman_per_article"),
                                       (f"{judge}/k4", k4, "spearman_articles_subset", "spearman_per_article_subset"),
                                       (f"{judge}/all", al, "spearman_articles", "spearman_per_article")):
            cells.append(_spearman_cell(r, key, mean_key))
            if r and r.get(mean_key) is not None and key not in r and name not in missing:
                missing.append(name)
        lines.append(f"| {judge} | {' | '.join(cells)} | {acc} | {bias} |")
    lines.append("")
    if missing:
        lines.append(f"No standard error for {', '.join(missing)}: those stages ran before per-article values "
                     "were stored, and their rank outputs (scores.csv) are no longer in the work folder.")
        lines.append("")
    lines.append("| stage | status | seconds | details |")
    lines.append("|---|---|---|---|")
    for name in STAGES:
        r = st.get(name)
        if not r:
            lines.append(f"| {name} | not run | | |")
            continue
        if name.startswith("train/"):
            det = (f"{r.get('global_step')} steps, train loss {r.get('train_loss', float('nan')):.4f}, "
                   f"{r.get('examples_per_second') or 0:.2f} examples/s")
        else:
            det = (f"{r.get('n_prompts')} prompts, {r.get('prompts_per_second') or 0:.2f} prompts/s, "
                   f"position bias {r.get('position_bias', 0):+.3f}")
        lines.append(f"| {name} | {r.get('status', 'done')} | {r.get('seconds', 0):.0f} | {det} |")
    return "\n".join(lines)


def backfill_article_stats(args, res: dict) -> list:
    """Per-article figures for finished rank stages that lack them; returns the stages that could not get them."""
    if "split" not in res:
        return [name for name in res.get("stages", {}) if not name.startswith("train/")]
    gold, lost = None, []
    for name, r in res.get("stages", {}).items():
        if name.startswith("train/") or r.get("status") != "done" or "spearman_articles" in r:
            continue
        if gold is None:
            gold = gold_table(args)
        if not add_article_stats(name, r, gold, res["split"], args.attribute_field):
            lost.append(name)
    return lost


def report_only(args) -> None:
    """Rewrite the results files from the stored JSON (and rank outputs still on disk), without a model."""
    path, md = results_paths(args)
    if not path.is_file():
        raise SystemExit(f"--report-only: no results at {path}")
    res = json.loads(path.read_text())
    before = json.dumps(res, sort_keys=True)
    lost = backfill_article_stats(args, res)
    if json.dumps(res, sort_keys=True) != before:
        write_results(args, res)
    else:  # nothing new: leave the JSON byte for byte
        md.write_text(markdown(res) + "\n")
    print(md.read_text())
    if lost:
        print(f"no per-article values for {', '.join(lost)}: their rank outputs (scores.csv) are gone; "
              "rerun those stages to get standard errors", file=sys.stderr)


def _spearman_cell(r, key: str, mean_key: str) -> str:
    """``mean ± se (n=..)`` from a stage's per-article values, else the stored mean alone, else ``not run``."""
    if not r or r.get(mean_key) is None:
        return "not run"
    stats = r.get(key)
    if not stats:
        return f"{r[mean_key]:.3f}"
    se = f" ± {stats['se']:.3f}" if stats.get("se") is not None else ""
    return f"{stats['mean']:.3f}{se} (n={stats['n']})"


def measure(args) -> None:
    """One training step and one judging batch on real SummEval prompts."""
    import numpy as np
    import torch

    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.train import prepare_training
    from pycomp.train.model import load_base_model

    base = load_base_model(None, device="auto", quantization="auto")
    facts = prepare_items(args, base[1])
    cfg = train_config(args, "soft")
    cfg.output_dir = str(Path(args.work) / "measure")
    run = prepare_training(Path(args.work) / "train.jsonl", cfg, base=base)
    lens = [len(x["input_ids"]) for x in run.train_dataset]
    print(f"training examples {len(run.train_dataset)}, prompt tokens mean {np.mean(lens):.0f} max {max(lens)}")
    opt = torch.optim.AdamW([p for p in run.model.parameters() if p.requires_grad], lr=1e-4)
    run.model.train()
    for rep in range(3):
        batch = run.collator(run.train_dataset[rep * args.batch_size:(rep + 1) * args.batch_size])
        t = time.perf_counter()
        loss, _ = run.objective(run.model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        print(f"train step (batch {args.batch_size}): {time.perf_counter() - t:.2f} s")
    backend = TransformersBackend(run.model.merge_and_unload(), base[1], base[2])
    prompts = [run.tokenizer.decode(x["input_ids"]) for x in run.train_dataset[: args.judge_batch]]
    for rep in range(2):
        t = time.perf_counter()
        backend.label_logprobs(prompts)
        print(f"judge batch of {len(prompts)}: {time.perf_counter() - t:.2f} s")
    print(facts["n_train_items"], "train items,", facts["n_test_items"], "test items")


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from utils import machine_info

    if args.measure:
        measure(args)
        return
    if args.report_only:
        report_only(args)
        return

    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.pipeline import rank
    from pycomp.train import train_judge
    from pycomp.train.model import load_base_model

    res = load_results(args)
    device = "cuda" if _cuda() else "cpu"
    settings = {k: getattr(args, k) for k in ("train_articles", "test_articles", "seed", "context_tokens",
                                               "max_summary_tokens", "train_per_item", "max_steps",
                                               "batch_size", "lr", "warmup_steps", "lora_r", "gamma", "threads", "judge_batch")}
    if res.get("settings") and {k: v for k, v in res["settings"].items() if k != "threads"} != \
            {k: v for k, v in settings.items() if k != "threads"}:
        raise SystemExit(f"{results_paths(args)[0]} was written with other settings {res['settings']}; "
                         f"use another --results/--work or delete them")
    res["settings"] = settings
    res["device"] = device
    res.setdefault("machine", machine_info())
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    t_all = time.perf_counter()
    base = None

    def base_model():
        nonlocal base
        if base is None:
            base = load_base_model(None, device="auto", quantization="auto")
        return base

    facts = prepare_items(args, base_model()[1])
    res["split"] = {k: v for k, v in facts.items()}
    backfill_article_stats(args, res)
    write_results(args, res)
    work = Path(args.work)
    for stage in STAGES:
        if stage not in wanted or res["stages"].get(stage, {}).get("status") == "done":
            continue
        print(f"=== {stage} ===", flush=True)
        t = time.perf_counter()
        if stage.startswith("train/"):
            objective = stage.split("/")[1]
            cfg = train_config(args, objective)
            # a fresh base: LoRA adapters are injected into the model in place
            b = load_base_model(None, device="auto", quantization="auto")
            summary = train_judge(work / "train.jsonl", cfg, base=b, resume=True, echo=print)
            res["stages"][stage] = {
                "status": "done", "seconds": round(time.perf_counter() - t, 1),
                "global_step": summary["train"]["global_step"], "train_loss": summary["train"]["train_loss"],
                "examples_per_second": summary["train"]["examples_per_second"],
                "train_seconds": summary["train"]["seconds"], "n_train_examples": summary["data"]["n_train_examples"],
                "answer_tokens": summary["answer_tokens"], "adapter": cfg.output_dir,
                "resumed_from": summary["resumed_from"],
                "loss_log": [{"step": h.get("step"), "loss": h.get("loss"), "p_error": h.get("p_error"),
                              "pair_accuracy": h.get("pair_accuracy")} for h in summary["log"] if "loss" in h],
            }
        else:
            judge, design = stage.split("/")
            adapter = None if judge == "zero" else str(work / f"adapter_{judge}")
            if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
                print(f"skipping {stage}: no trained adapter at {adapter}", flush=True)
                continue
            out = work / f"rank_{judge}_{design}"
            if design == "all" and not (out / "judgements.jsonl").exists():
                k4 = work / f"rank_{judge}_k4" / "judgements.jsonl"
                if k4.is_file():  # the 4-per-item judgements are a subset of all pairs: reuse them
                    out.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(k4, out / "judgements.jsonl")
            backend = TransformersBackend.load(None, adapter=adapter, device="auto")
            items = work / ("test_all_pairs.jsonl" if design == "all" else "test.jsonl")
            run = rank(str(items), rank_config(args, adapter, design), out, backend=backend, echo=print)
            m, js = run["metrics"], run["judge"]["summary"]
            res["stages"][stage] = {
                "status": "done", "seconds": round(time.perf_counter() - t, 1),
                "spearman_per_article": m.get("spearman_per_group_mean"),
                "pearson_per_article": m.get("pearson_per_group_mean"),
                "spearman_overall": m.get("spearman"), "pairwise_accuracy": m.get("pairwise_accuracy"),
                "judge_accuracy": m.get("judge_accuracy"), "n_pairs": run["n_pairs"],
                "n_prompts": js.get("n_judged", 0) + js.get("n_reused", 0), "n_judged_now": js.get("n_judged"),
                "prompts_per_second": js.get("judgements_per_second"),
                "position_bias": js.get("position_bias"), "order_consistency": js.get("order_consistency"),
                "answer_mass_mean": js.get("answer_mass_mean"),
                "spearman_vs_comparisons": m.get("spearman_vs_comparisons"), "out": str(out),
            }
            del backend
            add_article_stats(stage, res["stages"][stage], gold_table(args), res["split"], args.attribute_field)
        res["total_seconds"] = round(res.get("total_seconds", 0) + time.perf_counter() - t, 1)
        write_results(args, res)
        print(json.dumps({stage: res["stages"][stage]}, default=str)[:600], flush=True)
    print(f"finished in {time.perf_counter() - t_all:.0f} s; results: {results_paths(args)[0]}", flush=True)


if __name__ == "__main__":
    main()
