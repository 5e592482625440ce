"""``semmatch-tf teacher-label``: a teacher's calibrated grades on pairs nobody judged, for a
student run to read through ``data.extra_train`` (:mod:`semmatch_tf.training.distill`)."""

from __future__ import annotations

from pathlib import Path

from semmatch_tf.cli.inputs import _check_data_files, _parse_assignments


def parse_pairs_source(text: str) -> tuple[str, str]:
    """``FORMAT:PATH`` (e.g. ``atec:$SEMMATCH_DATA_DIR/atec/atec_nlp_sim_train.csv``)."""
    from semmatch_tf.data.loaders import FORMATS

    fmt, sep, path = text.partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise ValueError(f"--pairs expects FORMAT:PATH with FORMAT one of {list(FORMATS)}, got {text!r}")
    return fmt, path


def cmd_teacher_label(args) -> int:
    from semmatch_tf.training.config_files import load_config

    config = load_config(args.config, _parse_assignments(args.set, "--set"))
    _check_data_files(config, extra=False)
    from semmatch_tf.weights import KNOWN_WEIGHTS

    if not Path(args.teacher).is_dir() and args.teacher not in KNOWN_WEIGHTS:
        raise ValueError(f"--teacher {args.teacher}: not a run or checkpoint directory, nor one of {sorted(KNOWN_WEIGHTS)}")
    sources = [parse_pairs_source(text) for text in args.pairs]
    if args.mine < 0:
        raise ValueError(f"--mine must be >= 0, got {args.mine}")
    if not str(args.output).endswith(".jsonl"):
        raise ValueError(f"--output {args.output}: write a .jsonl file (what data.extra_train reads)")
    from semmatch_tf.data.loaders import load_dataset
    from semmatch_tf.evaluation.report import evaluate_predictions
    from semmatch_tf.training.config import resolve_data_path
    from semmatch_tf.training.distill import save_graded_pairs, teacher_calibration, teacher_labelled, teacher_scorer
    from semmatch_tf.training.trainer import load_splits

    train, validation, test = load_splits(config.data, extra=False)
    unlabelled = [load_dataset(fmt, resolve_data_path(path)) for fmt, path in sources]
    score = teacher_scorer(args.teacher, args.length)
    calibration = teacher_calibration(score, train)
    held = validation.frame
    report = evaluate_predictions(validation, scores=calibration.predict(
        score(held["query"].tolist(), held["product"].tolist()))) if len(validation) else None
    exclude = {text for split in (validation, test) for side in ("query", "product") for text in split.frame[side]}
    pairs = teacher_labelled(score, calibration, train, unlabelled, mine=args.mine, mine_pool=args.mine_pool,
                             exclude=exclude)
    save_graded_pairs(pairs, args.output)
    print(f"{len(pairs)} teacher-graded pairs written to {args.output} (teacher {args.teacher}, calibrated on "
          f"{len(train)} training pairs; no validation or test text included)")
    if report is not None:
        classes, grades = report["classification"], report["regression"]
        print(f"the teacher on the {len(validation)} validation pairs: accuracy {classes['accuracy']:.4f}, "
              f"macro-F1 {classes['macro']['f1']:.4f}, RMSE {grades['rmse']:.4f}")
    print(f"train the student with: --set 'data.extra_train=[\"{args.output}\"]'")
    return 0
