"""Check an export the way TF Serving will see it: in a fresh process, without semmatch_tf.

:func:`check_export` runs :data:`CHILD_SCRIPT` with ``sys.executable -I`` (isolated: no script dir
or cwd on ``sys.path``, no PYTHON* variables). The child imports only TensorFlow and, after noting
which graph ops core TF lacks, TF Text; it loads the SavedModel, runs every signature on the sample
requests of the metadata and on every warm-up record, and prints the outputs as JSON. The parent
compares them with Keras outputs: recomputed from a run directory / matcher when given, else the
ones recorded at export time. From the shell: ``semmatch-tf check-export BASE/NAME/VERSION
[--model RUN_DIR]`` or ``python -m semmatch_tf.export.check BASE/NAME/VERSION [--model RUN_DIR]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from semmatch_tf.export.savedmodel import EXTRA_DIR, METADATA_FILE
from semmatch_tf.export.warmup import WARMUP_FILE, read_warmup

RESULT_MARKER = "@@SEMMATCH_CHECK_RESULT@@"

#: The child: standalone (imports tensorflow and tensorflow_text only). argv: version dir, a JSON
#: file with ``[[signature, {input: [texts]}], ...]``.
CHILD_SCRIPT = r'''
import json, sys
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

version_dir, requests_path = sys.argv[1], sys.argv[2]
proto = saved_model_pb2.SavedModel.FromString(open(version_dir + "/saved_model.pb", "rb").read())
ops = set()
for graph in proto.meta_graphs:
    ops.update(node.op for node in graph.graph_def.node)
    for function in graph.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
missing_in_core = sorted(op for op in ops if op_def_registry.get(op) is None)

import tensorflow_text
still_missing = sorted(op for op in ops if op_def_registry.get(op) is None)
loaded = tf.saved_model.load(version_dir)

def plain(value):
    array = value.numpy()
    if array.dtype == object:
        return [plain_item(v) for v in array.tolist()]
    return array.astype("float64").tolist()

def plain_item(v):
    return [plain_item(x) for x in v] if isinstance(v, list) else v.decode("utf-8")

signatures = {}
for name, fn in loaded.signatures.items():
    inputs = {k: {"dtype": s.dtype.name, "shape": s.shape.as_list()} for k, s in fn.structured_input_signature[1].items()}
    outputs = {k: {"dtype": s.dtype.name, "shape": s.shape.as_list()} for k, s in fn.structured_outputs.items()}
    signatures[name] = {"inputs": inputs, "outputs": outputs}

results = []
for name, inputs in json.load(open(requests_path, encoding="utf-8")):
    fn = loaded.signatures[name]
    outputs = fn(**{k: tf.constant(v, tf.string) for k, v in inputs.items()})
    results.append({k: plain(v) for k, v in outputs.items()})

report = {"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
          "ops_missing_in_core_tf": missing_in_core, "ops_unregistered_after_tf_text": still_missing,
          "signatures": signatures, "results": results,
          "semmatch_modules": sorted(m for m in sys.modules if m.split(".")[0] == "semmatch_tf"),
          "top_level_modules": sorted({m.split(".")[0] for m in sys.modules if not m.startswith("_")})}
print("@@SEMMATCH_CHECK_RESULT@@" + json.dumps(report))
'''


def run_child(version_dir: str | Path, requests: list[tuple[str, dict[str, list[str]]]],
              timeout: float = 600) -> dict:
    """Run :data:`CHILD_SCRIPT` on ``requests`` in a fresh interpreter; its JSON report."""
    version_dir = Path(version_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="semmatch-check-") as scratch:
        script, payload = Path(scratch) / "check_child.py", Path(scratch) / "requests.json"
        script.write_text(CHILD_SCRIPT, encoding="utf-8")
        payload.write_text(json.dumps(requests, ensure_ascii=False), encoding="utf-8")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        completed = subprocess.run([sys.executable, "-I", str(script), str(version_dir), str(payload)],
                                   cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise RuntimeError(f"the check process failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")


def _compare(expected: dict, ambiguous: dict, got: dict, tolerance: float) -> tuple[float, list[str]]:
    """Max abs difference over float outputs and a list of problems (shape, strings, missing keys)."""
    worst, problems = 0.0, []
    for key, want in expected.items():
        if key not in got:
            problems.append(f"output {key!r} missing")
            continue
        want_array, got_array = np.asarray(want, dtype=object), np.asarray(got[key], dtype=object)
        if want_array.shape != got_array.shape:
            problems.append(f"{key}: shape {got_array.shape}, expected {want_array.shape}")
            continue
        if want_array.size and isinstance(want_array.flat[0], str):
            tie = np.asarray(ambiguous.get(key, np.zeros(want_array.shape, bool)), bool).reshape(want_array.shape)
            wrong = (want_array != got_array) & ~tie
            if wrong.any():
                problems.append(f"{key}: {int(wrong.sum())} of {wrong.size} differ")
        elif want_array.size:
            diff = float(np.max(np.abs(want_array.astype(np.float64) - got_array.astype(np.float64))))
            worst = max(worst, diff)
            if not diff < tolerance:
                problems.append(f"{key}: max abs diff {diff:.3g} >= {tolerance}")
    return worst, problems


def _references(metadata: dict, matcher) -> dict:
    """Expected outputs per signature: recomputed with ``matcher`` if given, else recorded ones."""
    if matcher is None:
        return metadata["samples"]
    if metadata.get("kind") != "cross_encoder":
        raise ValueError("a matcher can only be compared with a cross-encoder export")
    from semmatch_tf.export.signatures import cross_encoder_reference, reference_records

    return {signature: reference_records(lambda inputs: cross_encoder_reference(matcher, inputs),
                                         [record["inputs"] for record in records])
            for signature, records in metadata["samples"].items()}


def _signature_problems(metadata: dict, child: dict) -> list[str]:
    problems = []
    for name, spec in metadata["signatures"].items():
        found = child["signatures"].get(name)
        if found is None:
            problems.append(f"signature {name!r} missing from the loaded model")
            continue
        for side in ("inputs", "outputs"):
            if sorted(found[side]) != sorted(spec[side]):
                problems.append(f"{name}: {side} {sorted(found[side])}, metadata says {sorted(spec[side])}")
    return problems


def read_metadata(version_dir: Path) -> dict:
    """``assets.extra/semmatch_metadata.json`` of a version directory; a missing or unreadable one
    is a one-line error naming the directory (FileNotFoundError / ValueError)."""
    path = version_dir / EXTRA_DIR / METADATA_FILE
    if not version_dir.is_dir():
        raise FileNotFoundError(f"{version_dir}: no such export version directory")
    if not path.is_file():
        raise FileNotFoundError(f"{version_dir}: not a semmatch export ({EXTRA_DIR}/{METADATA_FILE} is missing)")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{version_dir}: {EXTRA_DIR}/{METADATA_FILE} is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or "samples" not in metadata or "signatures" not in metadata:
        raise ValueError(f"{version_dir}: {EXTRA_DIR}/{METADATA_FILE} is not semmatch export metadata")
    return metadata


def check_export(version_dir: str | Path, *, run_dir: str | Path | None = None, matcher=None,
                 tolerance: float = 1e-5, timeout: float = 600) -> dict:
    """Reload an export in a fresh process without semmatch_tf and compare with Keras.

    Args:
        version_dir: the version directory :func:`semmatch_tf.export_model` or
            :func:`semmatch_tf.export_bi_encoder` wrote.
        run_dir: the cross-encoder run it came from, to recompute the expected outputs.
        matcher: an in-memory cross-encoder instead of ``run_dir``; without either, the outputs
            recorded at export are expected.
        tolerance: the largest absolute difference allowed between an output and its expectation.
        timeout: seconds the check process may take.

    Returns:
        A JSON-ready report; ``report["ok"]`` is True when every signature loaded, every sample
        and warm-up request ran, outputs match within ``tolerance``, the custom ops equal the
        metadata's list, and the child never imported semmatch_tf; ``report["problems"]`` says
        what failed.

    Examples:
        >>> import tempfile
        >>> from semmatch_tf import CrossEncoder
        >>> version = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1").export(tempfile.mkdtemp())
        >>> check_export(version, run_dir="tests/fixtures/runs/bilstm_v0_1")["ok"]
        True
    """
    version_dir = Path(version_dir)
    metadata = read_metadata(version_dir)
    if matcher is None and run_dir is not None:
        from semmatch_tf.runs import load_run

        matcher = load_run(run_dir)
    references = _references(metadata, matcher)
    samples = [(name, record) for name, records in references.items() for record in records]
    warmup = read_warmup(version_dir / EXTRA_DIR / WARMUP_FILE)
    try:
        child = run_child(version_dir, [(name, r["inputs"]) for name, r in samples] + warmup, timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as error:  # failed to load or to run
        return {"ok": False, "version_dir": str(version_dir), "kind": metadata.get("kind"),
                "problems": [f"check process: {error}"]}

    problems = _signature_problems(metadata, child)
    worst: dict[str, float] = {}
    for (name, record), got in zip(samples, child["results"]):
        diff, found = _compare(record["expected"], record.get("ambiguous", {}), got, tolerance)
        worst[name] = max(worst.get(name, 0.0), diff)
        problems += [f"{name} (batch {len(next(iter(record['inputs'].values())))}): {p}" for p in found]
    for (name, inputs), got in zip(warmup, child["results"][len(samples):]):
        batch = len(next(iter(inputs.values())))
        if any(len(value) != batch for value in got.values()):
            problems.append(f"warm-up request for {name}: output batch differs from {batch}")
    if child["semmatch_modules"]:
        problems.append(f"the check process imported {child['semmatch_modules']}")
    if child["ops_unregistered_after_tf_text"]:
        problems.append(f"ops unknown even with TF Text: {child['ops_unregistered_after_tf_text']}")
    if sorted(child["ops_missing_in_core_tf"]) != sorted(metadata["custom_ops"]):
        problems.append(f"custom ops {child['ops_missing_in_core_tf']} != metadata {metadata['custom_ops']}")
    return {
        "ok": not problems, "version_dir": str(version_dir), "kind": metadata.get("kind"),
        "compared_with": "keras matcher" if matcher is not None else "outputs recorded at export",
        "signatures": sorted(child["signatures"]), "max_abs_diff": worst, "tolerance": tolerance,
        "requests_run": len(child["results"]), "warmup_requests": len(warmup),
        "custom_ops": child["ops_missing_in_core_tf"], "minimum_tf_serving": metadata["tf_serving"]["minimum"],
        "child_versions": {"tensorflow": child["tensorflow"], "tensorflow_text": child["tensorflow_text"]},
        "child_imported_semmatch_tf": bool(child["semmatch_modules"]),
        "child_imported": [m for m in ("tensorflow", "tensorflow_text", "keras", "semmatch_tf")
                           if m in child["top_level_modules"]],
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m semmatch_tf.export.check VERSION_DIR [--model RUN_DIR]``: print the report."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--model", type=Path, help="run directory to compare against")
    args = parser.parse_args(argv)
    report = check_export(args.directory, run_dir=args.model)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
