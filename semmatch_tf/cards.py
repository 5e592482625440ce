"""Model cards: what a run (and each export of it) is, what it was trained on, how well it did on
held-out queries, and where it stops being trustworthy, in Markdown a person reads.

Everything on a card is read from the files a run writes (``config.yaml``, ``labels.json``,
``report.json``, ``history.json``, and ``bi_encoder.json`` for two-tower runs), never typed in,
so a card cannot disagree with its run. :func:`write_run_card` writes ``MODEL_CARD.md`` in the run
directory; the export writes :func:`export_card` into ``assets.extra/MODEL_CARD.md`` of each
SavedModel version, where TF Serving ignores it and a person finds it beside the metadata.

Example:
    >>> import json, tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "config.yaml").write_text("data: {format: demo}\\nmodel: {family: bilstm, head: classification}\\n")
    >>> _ = (run / "report.json").write_text(json.dumps({"dataset": {"name": "demo/test", "pairs": 40},
    ...     "counts": {"pairs": 40, "queries": 9}, "classification": {"accuracy": 0.8, "macro": {"f1": 0.7}}}))
    >>> card = run_model_card(run)
    >>> card.splitlines()[0], "0.8000" in card
    ('# Model card: a bilstm cross-encoder', True)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from semmatch_tf.atomic import atomic_write_text
from semmatch_tf.evaluation.bootstrap import format_gain
from semmatch_tf.evaluation.report import format_report

CARD = "MODEL_CARD.md"


def write_run_card(run_dir: str | Path, splits: dict[str, int] | None = None) -> Path:
    """Write ``RUN_DIR/MODEL_CARD.md`` (atomically) from the run's files; ``splits`` are the
    pair counts of the train / validation / test splits, which only the trainer knows."""
    run_dir = Path(run_dir)
    path = run_dir / CARD
    atomic_write_text(path, run_model_card(run_dir, splits))
    return path


def run_model_card(run_dir: str | Path, splits: dict[str, int] | None = None) -> str:
    """The Markdown card of a finished run directory."""
    run_dir = Path(run_dir)
    config = _read_yaml(run_dir / "config.yaml")
    report = _read_json(run_dir / "report.json")
    history = _read_json(run_dir / "history.json")
    two_tower = _read_json(run_dir / "bi_encoder.json")
    model = config.get("model", {})
    kind = "bi-encoder" if two_tower else "cross-encoder"
    sections = [f"# Model card: a {model.get('family', 'unknown')} {kind}",
                _what_it_is(config, kind, _read_json(run_dir / "labels.json")),
                _training_data(config, report, splits),
                _training(config, history),
                _evaluation(report),
                _against_baseline(report.get("baseline")),
                _limits(config, report, kind),
                _how_to_use(run_dir, kind)]
    return "\n\n".join(section for section in sections if section) + "\n"


def card_of_run(run_dir: str | Path | None) -> str | None:
    """A run's own card (written by the trainer, it knows the split sizes), else one made from its
    files, else None when ``run_dir`` is not a run directory."""
    if run_dir is None or not (Path(run_dir) / "config.yaml").is_file():
        return None
    written = Path(run_dir) / CARD
    return written.read_text(encoding="utf-8") if written.is_file() else run_model_card(run_dir)


def export_card(run_card: str | None, metadata: dict) -> str:
    """The card of one SavedModel version: its run's card (when it came from a run) followed by
    what this export is (name, version, signatures) and how to serve it."""
    signatures = metadata.get("signatures", {})
    lines = ["## This export",
             f"SavedModel `{metadata.get('model_name')}` version {metadata.get('version')} "
             f"({metadata.get('kind', 'model')}), written {metadata.get('created')} by TensorFlow "
             f"{metadata.get('versions', {}).get('tensorflow', '?')}. Raw strings in, no client-side "
             "tokenisation; the graph holds the tokenizer and its vocabulary.", "",
             "| signature | inputs | outputs |", "|---|---|---|"]
    for name, signature in sorted(signatures.items()):
        inputs = ", ".join(f"`{k}`" for k in sorted(signature.get("inputs", {})))
        outputs = ", ".join(f"`{k}`" for k in sorted(signature.get("outputs", {})))
        lines.append(f"| `{name}` | {inputs} | {outputs} |")
    lines += ["", "Check it before serving: `semmatch-tf check-export <this version directory>`; every "
              "fact above is in `assets.extra/semmatch_metadata.json`."]
    head = run_card.rstrip() if run_card else f"# Model card: {metadata.get('model_name')}\n\nNot exported from a " \
        "training run (a pretrained encoder or an ensemble): no training data or held-out metrics are recorded here."
    return head + "\n\n" + "\n".join(lines) + "\n"


def _what_it_is(config: dict, kind: str, labels: dict) -> str:
    model, text = config.get("model", {}), config.get("text", {})
    family = model.get("family", "?")
    if family.startswith("bert"):
        bert = model.get("bert", {})
        body = (f"keras-hub BERT backbone ({bert.get('source', '?')}"
                + (f": `{bert.get('path')}`" if bert.get("path") else f", size {bert.get('size', '?')}")
                + f"), sequence length {bert.get('sequence_length', '?')}, {bert.get('pooling', 'cls')} pooling")
    else:
        body = (f"embedding {model.get('embedding_dim', '?')} → BiLSTM {model.get('lstm_units', '?')} units, "
                f"its own WordPiece vocabulary (≤ {text.get('vocab_size', '?')} pieces) learned from the training text"
                + ("; the head also reads match features of the raw pair (coverage, typos, numbers, BM25, product "
                   "types)" if model.get("match_features") else ""))
    if kind == "cross-encoder":
        names = labels.get("names") or []
        head = model.get("head", "?")
        purpose = (f"It reads a (query, product) pair and returns a {head} output"
                   + (f" over the grades {', '.join(map(str, names))}" if names else "")
                   + " and one relevance score (the predicted grade) that ranks products for a query."
                   + (f" Its label is the grade's class between the cuts {[round(c, 4) for c in labels['cuts']]}, "
                      "tuned for macro-F1 on the validation split (`training.class_cuts`)." if labels.get("cuts") else ""))
    else:
        purpose = ("It embeds queries and products separately into one space; a product's cosine to the query "
                   "ranks it, so a catalogue is embedded once and searched by nearest neighbours.")
    return (f"**What it is.** A {kind}: {body}. {purpose}\n\n**Intended use.** Judging and ranking the "
            "products of a shop's catalogue for search queries like those it was trained on: re-ranking "
            "candidates from a first stage, or retrieving them (bi-encoder). Not a general-purpose text "
            "similarity model, and not a judge of anything but query–product relevance.")


def _training_data(config: dict, report: dict, splits: dict[str, int] | None) -> str:
    data = config.get("data", {})
    source = f" from `{data['path']}`" if data.get("path") else " (the embedded catalogue)"
    lines = ["## Training data",
             f"Format `{data.get('format', '?')}`{source}"
             + (f", the first {data['limit']} pairs" if data.get("limit") else "")
             + f"; split by query (no query in two splits), fractions {data.get('split', '?')}, seed "
             f"{data.get('seed', '?')}" + (f", capped at {data['subsample']}" if data.get("subsample") else "") + "."]
    if data.get("extra_train"):
        lines.append("The training split also holds the graded pairs of " + ", ".join(f"`{p}`" for p in data["extra_train"])
                     + " (`data.extra_train`: e.g. a teacher's grades from `semmatch-tf teacher-label`).")
    if splits:
        lines.append("Pairs: " + ", ".join(f"{name} {count:,}" for name, count in splits.items()) + ".")
    evaluated = report.get("dataset", {})
    languages = sorted(report.get("by_language", {}))
    if evaluated:
        lines.append(f"Held-out evaluation on `{evaluated.get('name')}`: {evaluated.get('pairs', 0):,} pairs, "
                     f"{report.get('counts', {}).get('queries', 0):,} queries"
                     + (f", languages {', '.join(languages)}" if languages else "") + ".")
    return "\n".join(lines)


def _training(config: dict, history: dict) -> str:
    training = config.get("training", {})
    keys = ("epochs", "batch_size", "optimizer", "learning_rate", "schedule", "weight_decay", "precision",
            "early_stopping_patience", "monitor", "seed")
    settings = ", ".join(f"{key} {training[key]}" for key in keys if training.get(key) is not None)
    lines = ["## Training", settings + "."]
    for extra in ("adversarial", "augmentation"):
        section = training.get(extra) or {}
        if section.get("method") not in (None, "none") or section.get("copies"):
            lines.append(f"{extra}: {section}.")
    monitor = training.get("monitor", "val_loss")
    values = history.get(monitor) or history.get(monitor.removeprefix("val_")) or []
    finite = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if finite:
        lower = "loss" in monitor or "rmse" in monitor
        value, epoch = (min if lower else max)(finite, key=lambda pair: pair[0])
        lines.append(f"{len(values)} epochs run; the best {monitor} was {value:.4f} at epoch {epoch + 1}.")
    return "\n".join(lines)


def _evaluation(report: dict) -> str:
    if not report:
        return "## Evaluation\nNo report.json: the run did not finish its evaluation."
    lines = ["## Evaluation (held-out queries)", "```", format_report(report), "```"]
    ranking = report.get("ranking", {})
    if ranking.get("unrankable"):
        lines.append(f"Ranking metrics average the {ranking.get('queries', 0):,} queries with two or more "
                     f"differently graded products; {ranking['unrankable']:,} queries with nothing to rank are "
                     "left out.")
    retrieval = report.get("retrieval")
    if retrieval:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(retrieval.items()) if isinstance(v, float))
        lines.append(f"Retrieval over {retrieval.get('catalogue_size', '?'):,} products: {shown}.")
    return "\n".join(lines)


def _against_baseline(baseline: dict | None) -> str:
    """The run against the strongest cheap baseline on the same pairs (``report["baseline"]``)."""
    if not baseline:
        return ""
    verdict = ("**It beats the baseline** (the whole interval is above 0)." if baseline["beats"] else
               "**It does not beat the baseline** (the interval reaches 0 or below): serve the baseline, or the two "
               "together (`semmatch-tf ensemble --model RUN --baseline`), until a model does.")
    lines = ["## Against the strongest cheap baseline",
             f"`{baseline['model']}` ({baseline['about']}; chosen: {baseline.get('chosen', {})}), scored on the same "
             "held-out pairs.", "- " + format_gain(baseline)]
    if "accuracy" in baseline:
        lines.append("- " + format_gain(baseline["accuracy"]))
    return "\n".join(lines + [verdict])


def _limits(config: dict, report: dict, kind: str) -> str:
    text, model = config.get("text", {}), config.get("model", {})
    languages = sorted(report.get("by_language", {}))
    lengths = (f"{model.get('bert', {}).get('sequence_length')} tokens per pair" if str(model.get("family", "")).startswith("bert")
               else f"{text.get('query_length', '?')} query and {text.get('product_length', '?')} product tokens")
    bullets = ["Measured only on held-out queries of its own data; another catalogue, shop or domain is unmeasured "
               "until it is evaluated there (`semmatch-tf evaluate`).",
               f"Languages measured: {', '.join(languages) if languages else 'none'}; any other language is unmeasured.",
               f"Text beyond {lengths} is cut: long titles are judged by their beginning.",
               *([] if report.get("baseline") else [
                   "These metrics have no baseline beside them (`training.compare_baseline` was off, or it is a "
                   "bi-encoder). Compare against the strongest cheap baseline on the same split (char n-gram TF-IDF "
                   "with ridge or logistic regression; BM25 for ranking: `benchmarks/RESULTS.md`) before trusting "
                   "the model over it."]),
               "Scores are relevance estimates, not calibrated probabilities of a purchase or a click."]
    if kind == "cross-encoder" and model.get("family") == "bilstm":
        bullets.append("Its vocabulary comes from the training text: words never seen there are split into "
                       "known pieces or become [UNK].")
    return "## Limits\n" + "\n".join(f"- {b}" for b in bullets)


def _how_to_use(run_dir: Path, kind: str) -> str:
    if kind == "cross-encoder":
        code = (f'from semmatch_tf import CrossEncoder\nmodel = CrossEncoder.load("{run_dir}")\n'
                'model.predict([("cordless drill", "DEWALT 20V MAX Cordless Drill")])')
        cli = f"semmatch-tf predict --model {run_dir} --input pairs.tsv --output scores.csv   # query<TAB>product lines"
    else:
        code = (f'from semmatch_tf import BiEncoder\nmodel = BiEncoder.load("{run_dir}")\n'
                'model.encode(["cordless drill"])')
        cli = f"semmatch-tf index --model {run_dir} --catalogue products.csv --output index/"
    return f"## How to use\n```python\n{code}\n```\n```\n{cli}\n```"


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_yaml(path: Path) -> dict:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}
