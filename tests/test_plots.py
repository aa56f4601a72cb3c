"""The plots of a ranking run: error bars, legends and axis labels with units, and the PNG files."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.container import ErrorbarContainer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from pycomp import plots  # noqa: E402


def _legend(ax):
    return sorted(t.get_text() for t in ax.get_legend().get_texts())


def _bars(container):
    """(x, low, high) of each drawn error bar of an ErrorbarContainer."""
    (collection,) = container.lines[2]
    return [(seg[0][0], seg[0][1], seg[1][1]) for seg in collection.get_segments() if len(seg)]


def test_predicted_vs_gold_has_one_standard_error_bars_a_legend_and_labelled_axes():
    gold = np.array([1.0, 2.0, 3.0, 4.0])
    scores = np.array([-0.5, 0.1, 0.2, 0.9])
    se = np.array([0.3, 0.2, np.nan, 0.4])
    fig = plots.predicted_vs_gold_figure(scores, gold, se=se, affine=(2.0, 2.5), gold_label="gold (stars)",
                                         score_axis=plots.score_label("bt"))
    (ax,) = fig.axes
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 1 and containers[0].has_yerr and not containers[0].has_xerr
    data = containers[0].lines[0]
    np.testing.assert_array_equal(data.get_xdata(), gold)
    np.testing.assert_array_equal(data.get_ydata(), scores)
    # score +- se for every finite se; none for the NaN
    expected = [(1.0, -0.8, -0.2), (2.0, -0.1, 0.3), (4.0, 0.5, 1.3)]
    np.testing.assert_allclose(_bars(containers[0]), expected)
    assert ax.get_xlabel() == "gold (stars)"
    assert ax.get_ylabel() == "predicted score (PoE-BT log-strength)"
    assert _legend(ax) == ["affine fit: gold = 2 × score + 2.5", "items ± 1 se"]
    (line,) = [x for x in ax.get_lines() if x.get_label().startswith("affine fit")]
    xs, ys = line.get_xdata(), line.get_ydata()
    np.testing.assert_allclose(2.0 * ys + 2.5, xs)  # the drawn line is gold = a * score + b
    plots._pyplot().close(fig)


def test_predicted_vs_gold_colours_groups_and_keeps_every_point():
    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "c"], [3, 4, 5])
    fig = plots.predicted_vs_gold_figure(rng.normal(size=12), rng.normal(size=12), se=np.full(12, 0.1),
                                         groups=groups)
    (ax,) = fig.axes
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert sorted(len(c.lines[0].get_xdata()) for c in containers) == [3, 4, 5]
    assert _legend(ax) == ["a ± 1 se", "b ± 1 se", "c ± 1 se"]
    assert ax.get_legend().get_title().get_text() == "group"
    assert ax.get_ylabel() == "predicted score"
    plots._pyplot().close(fig)


def _curve():
    rows = []
    for k, per_item, rhos in ((1, 0.9, [0.5, 0.6, 0.7]), (2, 1.9, [0.7, 0.8, 0.75]), (4, 4.0, [0.9])):
        for seed, rho in enumerate(rhos):
            rows.append({"k": k, "seed": seed, "per_item": per_item, "n_pairs": 10 * k, "spearman": rho})
    return pd.DataFrame(rows)


def test_budget_plot_legends_its_dots_and_mean_line():
    curve = _curve()
    fig = plots.spearman_vs_budget_figure(curve, ylabel="Spearman (per group, mean)")
    (ax,) = fig.axes
    (dots,) = ax.collections
    np.testing.assert_allclose(dots.get_offsets(), curve[["per_item", "spearman"]].to_numpy())
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0.9, 1.9, 4.0])
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.75, 0.9])
    assert _legend(ax) == ["mean over subsamples", "one random subsample of the judged pairs"]
    assert ax.get_xlabel() == "comparisons per item (mean over items)"
    assert ax.get_ylabel() == "Spearman (per group, mean)"
    plots._pyplot().close(fig)


def test_plots_are_written_as_png(tmp_path):
    import matplotlib.image as mpimg

    scatter = plots.predicted_vs_gold([0.1, 0.3, 0.2], [1, 3, 2], tmp_path / "sub" / "pvg.png", se=[0.1, 0.1, 0.1])
    curve = plots.spearman_vs_budget(_curve(), tmp_path / "curve.png")
    for path in (scatter, curve):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert mpimg.imread(path).shape[0] > 100


def test_evaluate_plots_draw_the_scores_standard_errors(tmp_path, monkeypatch):
    from pycomp.cli import app

    built = []
    real = plots.predicted_vs_gold_figure

    def keep(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(plots, "predicted_vs_gold_figure", keep)
    pd.DataFrame({"id": ["x", "y", "z"], "stars": [1, 2, 3]}).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"id": ["z", "x", "y"], "score": [0.4, -0.2, 0.1], "se": [0.3, 0.1, 0.2]}).to_csv(
        tmp_path / "scores.csv", index=False)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "scores.csv"), "--items", str(tmp_path / "items.csv"),
                                   "--id-field", "id", "--gold-field", "stars", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "plots" / "predicted_vs_gold.png").is_file()
    (container,) = [c for c in built[0].axes[0].containers if isinstance(c, ErrorbarContainer)]
    # matched by id: x (gold 1) -0.2 +- 0.1, y (gold 2) 0.1 +- 0.2, z (gold 3) 0.4 +- 0.3
    np.testing.assert_allclose(_bars(container), [(1, -0.3, -0.1), (2, -0.1, 0.3), (3, 0.1, 0.7)])
