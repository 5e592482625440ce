"""Metrics against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame
from semmatch_tf.evaluation import (classification_report, confusion_matrix, evaluate_predictions,
                                    format_report, paired_bootstrap, per_query_ranking, per_query_retrieval,
                                    ranking_metrics, retrieval_metrics, save_report, spearman)
from semmatch_tf.evaluation.plots import plot_confusion_matrix, plot_metric_bars, plot_training_curves


def test_ndcg_on_the_textbook_example():
    # Ranked gains 3,2,3,0,1,2 (linear). DCG@6 = 3 + 2/log2(3) + 3/2 + 0 + 1/log2(6) + 2/log2(7) = 6.8611.
    # Ideal order of the judged items 3,3,2,2,1,0: 3 + 3/log2(3) + 2/2 + 2/log2(5) + 1/log2(6) = 7.1410.
    table = per_query_ranking(["q"] * 6, [6, 5, 4, 3, 2, 1], [3, 2, 3, 0, 1, 2], ks=(6,), gain="linear")
    assert table["ndcg@6"][0] == pytest.approx(6.8611 / 7.1410, abs=1e-4)
    # Relevant (grade >= 1) at ranks 1,2,3,5,6: AP = (1/1 + 2/2 + 3/3 + 4/5 + 5/6) / 5 = 0.92667.
    assert table["map"][0] == pytest.approx(0.926667, abs=1e-6)
    assert table["mrr"][0] == 1.0 and table["recall@6"][0] == 1.0


def test_perfect_and_reversed_rankings():
    grades = [2, 1, 0]
    assert ranking_metrics(["q"] * 3, [3, 2, 1], grades, ks=(3,))["ndcg@3"] == pytest.approx(1.0)
    # Exponential gains 3,1,0. Reversed: 0 + 1/log2(3) + 3/2 = 2.1309; ideal 3 + 1/log2(3) = 3.6309.
    assert ranking_metrics(["q"] * 3, [1, 2, 3], grades, ks=(3,))["ndcg@3"] == pytest.approx(2.1309 / 3.6309, abs=1e-4)


def test_mrr_map_recall_over_several_queries_and_unrankable():
    query = ["a", "a", "a", "b", "b", "c", "c"]
    score = [0.9, 0.8, 0.7, 0.9, 0.1, 0.5, 0.4]
    grade = [0, 1, 0, 0, 2, 0, 0]  # c judges both items irrelevant: nothing to rank
    summary = ranking_metrics(query, score, grade, ks=(1, 2))
    assert summary["queries"] == 2 and summary["unrankable"] == 1 and summary["skipped"] == 0
    assert summary["mrr"] == pytest.approx((1 / 2 + 1 / 2) / 2)   # first hits at rank 2 for a and b
    assert summary["recall@1"] == pytest.approx(0.0)
    assert summary["recall@2"] == pytest.approx(1.0)
    assert summary["map"] == pytest.approx(0.5)


def test_queries_with_nothing_to_rank_stay_out_of_the_means():
    # d: one judged item, e: two items with one grade -- any order "ranks" them perfectly.
    query = ["a", "a", "d", "e", "e"]
    score = [0.1, 0.9, 0.5, 0.3, 0.2]
    grade = [2, 0, 2, 1, 1]
    summary = ranking_metrics(query, score, grade, ks=(1,))
    assert summary["queries"] == 1 and summary["unrankable"] == 2
    assert summary["ndcg@1"] == 0.0 and summary["mrr"] == pytest.approx(0.5), "a alone: ranked the wrong way"
    one_pair_each = ranking_metrics(["p", "q", "r"], [0.9, 0.1, 0.5], [1, 0, 1], ks=(10,))
    assert one_pair_each == {"queries": 0, "unrankable": 3, "skipped": 0}, "LCQMC-like: no metric, not 1.0"


def test_ties_keep_input_order():
    first = per_query_ranking(["q", "q"], [1.0, 1.0], [2, 0], ks=(1,))
    second = per_query_ranking(["q", "q"], [1.0, 1.0], [0, 2], ks=(1,))
    assert first["ndcg@1"][0] == 1.0 and second["ndcg@1"][0] == 0.0


def test_retrieval_metrics_count_unjudged_as_zero_and_ideal_from_all_judged():
    # Retrieved x (unjudged), y (2); judged y=2, w=1 (w not retrieved). Exponential gains 3 and 1.
    # DCG@3 = 3/log2(3) = 1.8928; IDCG = 3 + 1/log2(3) = 3.6309.
    result = retrieval_metrics({"a": ["x", "y", "z"]}, {"a": {"y": 2, "w": 1}, "b": {"v": 0}}, ks=(3,))
    assert result["queries"] == 1
    assert result["ndcg@3"] == pytest.approx(1.8928 / 3.6309, abs=1e-4)
    assert result["recall@3"] == 0.5 and result["mrr"] == 0.5 and result["map"] == 0.25

    per_query = per_query_retrieval({"a": ["x", "y", "z"]}, {"a": {"y": 2, "w": 1}, "b": {"v": 0}}, ks=(3,))
    assert per_query["query_id"].tolist() == ["a"], "a query with no positive judgement is left out"
    assert per_query["ndcg@3"].iloc[0] == result["ndcg@3"]


def test_paired_bootstrap_by_hand():
    queries = [f"q{i}" for i in range(8)]
    baseline = pd.DataFrame({"query_id": queries, "ndcg@10": [0.2, 0.5, 0.1, 0.9, 0.4, 0.3, 0.6, 0.0]})
    # the system gains 0.1 on every query: every resample's mean difference is 0.1 exactly
    better = baseline.assign(**{"ndcg@10": baseline["ndcg@10"] + 0.1}).iloc[::-1]  # order must not matter
    result = paired_bootstrap(better, baseline, "ndcg@10", samples=500)
    assert result["difference"] == pytest.approx(0.1) and result["queries"] == 8
    assert result["low"] == pytest.approx(0.1) and result["high"] == pytest.approx(0.1)
    assert result["p_not_better"] == 0.0
    # +1 on one query, -1 on another, 0 elsewhere: mean 0, symmetric interval, about half not better
    mixed = baseline.copy()
    mixed.loc[0, "ndcg@10"] += 1.0
    mixed.loc[1, "ndcg@10"] -= 1.0
    result = paired_bootstrap(mixed, baseline, "ndcg@10", samples=4000, seed=1)
    assert result["difference"] == pytest.approx(0.0, abs=1e-12)
    assert result["low"] < -0.1 and result["high"] > 0.1 and 0.4 < result["p_not_better"] < 0.85
    assert paired_bootstrap(mixed, baseline, "ndcg@10", samples=4000, seed=1) == result, "seeded: reproducible"
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(better.head(7), baseline, "ndcg@10")


def test_confusion_matrix_and_f1():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 0]
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    # Precision a=1/3, b=2/3, c=0 (never predicted); recall a=1/2, b=1, c=0.
    # F1 a = 2*(1/3*1/2)/(1/3+1/2) = 0.4, b = 0.8, c = 0 -> macro 0.4; micro = accuracy = 3/6.
    assert report["macro"]["f1"] == pytest.approx(0.4)
    assert report["micro"]["f1"] == pytest.approx(0.5) == report["accuracy"]
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_spearman_with_ties():
    # Ranks of x: 1, 2.5, 2.5, 4; of y: 1, 2, 3, 4. Pearson of ranks = 0.94868.
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(0.948683, abs=1e-6)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0


SCHEME = LabelScheme(("irrelevant", "partial", "exact"), (1.0, 2.0, 3.0), (1.0, 3.0))


def small_dataset() -> PairDataset:
    frame = build_frame(query=["q1", "q1", "q2", "q2"], product=["a", "b", "c", "d"], label=[2, 0, 1, 2],
                        grade=[3.0, 1.0, 2.0, 2.67], language=["en", "en", "zh", "zh"])
    return PairDataset(frame, SCHEME, "small")


def test_report_blocks_languages_and_expected_grade(tmp_path):
    probabilities = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]])
    report = evaluate_predictions(small_dataset(), probabilities=probabilities)
    assert report["classification"]["accuracy"] == pytest.approx(0.75)
    # Expected grades 3, 1, 2, 2.5 vs true 3, 1, 2, 2.67 -> RMSE = sqrt(0.17^2 / 4) = 0.085.
    assert report["regression"]["rmse"] == pytest.approx(math.sqrt(0.17**2 / 4), abs=1e-6)
    assert report["by_language"]["zh"]["counts"] == {"pairs": 2, "queries": 1}
    assert report["ranking"]["ndcg@10"] == pytest.approx(1.0)
    json.dumps(report)
    path = save_report(report, tmp_path / "report.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"], "no temporary files left"
    assert "zh" in format_report(report)


def test_report_from_grades_only():
    report = evaluate_predictions(small_dataset(), scores=np.array([2.9, 1.2, 2.4, 2.2]))
    # class_of_grade: 2.9->exact, 1.2->irrelevant, 2.4->partial, 2.2->partial: 3 of 4 right.
    assert report["classification"]["accuracy"] == pytest.approx(0.75)
    assert report["ranking"]["ndcg@10"] < 1.0  # q2 is ranked the wrong way round


def test_plots_write_pngs(tmp_path):
    paths = [plot_training_curves({"loss": [1.0, 0.5], "val_loss": [1.1, None]}, tmp_path / "c.png"),
             plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["no", "yes"], tmp_path / "m.png"),
             plot_metric_bars({"bm25": {"ndcg@10": 0.5}, "dense": {"ndcg@10": 0.6}}, "ndcg@10", tmp_path / "b.png")]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_every_figure_has_a_title_and_labelled_axes(tmp_path, monkeypatch):
    from semmatch_tf.evaluation import plots

    figures = []
    saving = plots._save
    monkeypatch.setattr(plots, "_save", lambda figure, path: (figures.append(figure), saving(figure, path))[1])
    rng = np.random.default_rng(0)
    judged = rng.integers(0, 3, 200).astype(float)
    predicted = judged + rng.normal(0, 0.6, 200)
    plots.plot_training_curves({"loss": [1.0, 0.5, 0.6], "val_loss": [1.1, 0.7, 0.9]}, tmp_path / "c.png",
                               best_epoch=1, monitor="val_loss")
    plots.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["no", "yes"], tmp_path / "m.png")
    plots.plot_metric_bars({"en": {"ndcg@10": 0.5}, "zh": {"ndcg@10": 0.6}}, "ndcg@10", tmp_path / "b.png",
                           by="language")
    plots.plot_relevance_curves(judged >= 1, predicted, tmp_path / "r.png",
                                probabilities=1 / (1 + np.exp(-(predicted - 1))))
    plots.plot_predicted_vs_true(judged, predicted, tmp_path / "p.png")
    assert len(figures) == 5
    for figure in figures:
        for axis in figure.axes:
            if axis.get_label() == "<colorbar>":
                continue
            assert axis.get_title() and axis.get_xlabel() and axis.get_ylabel(), (axis.get_title(), axis.get_xlabel())
    curves = figures[0].axes[0]
    assert any(line.get_linestyle() == "--" and list(line.get_xdata()) == [2, 2] for line in curves.lines), \
        "the kept epoch (0-based 1 = epoch 2) is marked"


@pytest.mark.slow  # ~40 s of numba compilation inside ranx; the definitions it checks change rarely
def test_retrieval_and_reranking_metrics_equal_ranx():
    """Our vectorised metrics against ranx (trec_eval-checked definitions): nDCG with exponential
    gains (ranx's ``ndcg_burges``), MRR, MAP and Recall@k on random runs with graded judgements."""
    ranx = pytest.importorskip("ranx", reason="a cross-check run by hand: pip install ranx==0.3.21, then "
                               "pytest -m slow tests/test_metrics.py (ranx pulls numba and ir-datasets)")
    rng = np.random.default_rng(4)
    qrels, ranked, scores = {}, {}, {}
    for q in range(40):
        judged = rng.choice(60, size=int(rng.integers(2, 12)), replace=False)
        qrels[f"q{q}"] = {f"d{d}": int(rng.integers(0, 4)) for d in judged}
        if not any(qrels[f"q{q}"].values()):
            qrels[f"q{q}"][f"d{judged[0]}"] = 2
        order = rng.permutation(60)[:25]
        ranked[f"q{q}"] = [f"d{d}" for d in order]
        scores[f"q{q}"] = {f"d{d}": float(25 - i) for i, d in enumerate(order)}
    ours = retrieval_metrics(ranked, qrels, ks=(10,), relevance_threshold=1)
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(scores), ["ndcg_burges@10", "mrr", "map", "recall@10"])
    assert ours["ndcg@10"] == pytest.approx(theirs["ndcg_burges@10"], abs=1e-9)
    assert ours["recall@10"] == pytest.approx(theirs["recall@10"], abs=1e-9)
    assert ours["mrr"] == pytest.approx(theirs["mrr"], abs=1e-9)
    assert ours["map"] == pytest.approx(theirs["map"], abs=1e-9)

    # Re-ranking: each query's judged items ordered by a score, ideal from the same items.
    query_ids, item_scores, grades, run = [], [], [], {}
    for q, judged in qrels.items():
        if len(set(judged.values())) < 2:
            continue  # unrankable: left out of our means (see ranking_metrics)
        values = rng.permutation(len(judged)).astype(float)
        run[q] = dict(zip(judged, values))
        query_ids += [q] * len(judged)
        item_scores += list(values)
        grades += list(judged.values())
    ours = ranking_metrics(query_ids, item_scores, grades, ks=(10,), relevance_threshold=1)
    kept = ranx.Qrels({q: qrels[q] for q in run})
    theirs = ranx.evaluate(kept, ranx.Run(run), ["ndcg_burges@10", "mrr", "map"])
    assert ours["queries"] == len(run)
    assert ours["ndcg@10"] == pytest.approx(theirs["ndcg_burges@10"], abs=1e-9)
    assert ours["mrr"] == pytest.approx(theirs["mrr"], abs=1e-9)
    assert ours["map"] == pytest.approx(theirs["map"], abs=1e-9)


def test_label_cuts_default_to_the_nearest_class_grade_and_tuned_cuts_name_rare_classes():
    from semmatch_tf.evaluation import macro_f1, tune_class_cuts

    scheme = LabelScheme(("no", "some", "yes"), (0.0, 1.0, 2.0), (0.0, 2.0))
    grades = np.array([0.0, 0.49, 0.5, 1.2, 1.5, 1.51, 2.0])
    assert scheme.class_of_grade(grades).tolist() == [0, 0, 1, 1, 2, 2, 2]  # halfway points; ties go up
    cut = scheme.with_cuts((0.8, 1.2))
    assert cut.class_of_grade(grades).tolist() == [0, 0, 0, 2, 2, 2, 2]
    assert LabelScheme.from_dict(cut.to_dict()) == cut and "cuts" not in scheme.to_dict()
    for bad in ((1.0,), (1.2, 0.8), (-0.5, 1.0)):
        with pytest.raises(ValueError, match="cuts"):
            scheme.with_cuts(bad)
    # a timid model: every prediction pulled two-thirds of the way to the mean grade 1.0
    rng = np.random.default_rng(0)
    gold = rng.choice(3, size=600, p=[0.25, 0.6, 0.15])
    predicted = 1.0 + (gold - 1.0) / 3 + rng.normal(0, 0.1, size=600)
    nearest = macro_f1(gold, scheme.class_of_grade(predicted), 3)
    cuts = tune_class_cuts(predicted[:300], gold[:300], scheme.boundaries, scheme.grade_range)
    held_out = macro_f1(gold[300:], scheme.with_cuts(cuts).class_of_grade(predicted[300:]), 3)
    assert nearest < 0.4 and held_out > 0.85  # cuts tuned on one half hold on the other
    assert 0.6 < cuts[0] < 1.0 < cuts[1] < 1.4
