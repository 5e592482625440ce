"""SavedModel export for TF Serving: raw strings in, scores / labels / embeddings out.

Layout written (TF Serving's)::

    BASE_DIR/NAME/VERSION/
        saved_model.pb, variables/, fingerprint.pb
        assets.extra/tf_serving_warmup_requests   PredictionLog records replayed at load
        assets.extra/semmatch_metadata.json       labels, head, vocabulary hash, versions, custom ops,
                                                  minimum TF Serving, sample inputs + Keras outputs
        assets.extra/MODEL_CARD.md                the run's model card + this export's signatures
        assets.extra/vocabulary.txt               the WordPiece vocabulary (for clients, debugging)

A version is written into a hidden, non-numeric sibling (``NAME/.tmp-VERSION-HOST-PID-TOKEN``) that
TF Serving ignores, then renamed into place: TF Serving never sees a half-written version. A crash
leaves only hidden directories, which the next export removes once their writer is dead.

The signatures come from :mod:`semmatch_tf.export.signatures` as ``Signature`` objects (string-vector
inputs, a traced function, an in-process Keras reference), so the cross-encoder and the bi-encoder
share the writing, the warm-up, the metadata and :func:`semmatch_tf.export.check.check_export`.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from semmatch_tf.cards import CARD, card_of_run, export_card
from semmatch_tf.export import compat
from semmatch_tf.export.signatures import (Signature, _string_specs, as_bi_encoder, bi_encoder_signatures,
                                           cross_encoder_signatures, reference_records)
from semmatch_tf.export.warmup import WARMUP_FILE, write_warmup
from semmatch_tf.export.versions import (EXTRA_DIR, FORCE_HINT, METADATA_FILE, _host, check_model_name,  # noqa: F401
                                          clean_stale, existing_versions, next_version, publish_version)

FORMAT_VERSION = 1


def _write_archive(archive, directory: Path) -> None:
    """Write the SavedModel (a separate function so tests can interrupt it)."""
    archive.write_out(str(directory), verbose=False)


# -- writing -------------------------------------------------------------------------------------
def _ensure_built(tracked: list, signatures: list[Signature]) -> None:
    """ExportArchive only tracks built layers; fresh ones (a new preprocessor) are built by running
    every signature once, eagerly, on its first sample."""
    if all(layer.built for layer in tracked if isinstance(layer, keras.layers.Layer)):
        return
    for signature in signatures:
        signature.fn(*(tf.constant(signature.samples[0][name], tf.string) for name in signature.inputs))


def _store_variables_once(archive) -> None:
    """Make ``track()``'s variable collections hold the ``tf.Variable`` inside each Keras variable.

    The endpoints capture those ``tf.Variable`` objects while ``track()`` lists the Keras wrappers:
    two objects per weight, which TensorFlow's checkpoint cannot see are one, so every weight was
    written twice (keras-team/keras#23553, open in Keras 3.15: a multilingual-e5-small export took
    897 MiB for 118M float32 parameters) and loaded twice by TF Serving. With the same objects on
    both sides the checkpoint stores each weight once; the collections keep their names and order.
    """
    trackable = archive._tf_trackable
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        setattr(trackable, collection, [getattr(v, "_value", v) for v in getattr(trackable, collection)])


def _signature_defs(directory: Path) -> dict:
    """Input/output names, dtypes and shapes of every signature, read from the saved proto."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((directory / "saved_model.pb").read_bytes())

    def describe(infos) -> dict:
        return {key: {"dtype": tf.dtypes.as_dtype(info.dtype).name,
                      "shape": [None if d.size < 0 else d.size for d in info.tensor_shape.dim]}
                for key, info in sorted(infos.items())}

    return {name: {"inputs": describe(sig.inputs), "outputs": describe(sig.outputs)}
            for name, sig in sorted(proto.meta_graphs[0].signature_def.items())
            if not name.startswith("__")}


def _samples(signatures: list[Signature], aliases: dict[str, str]) -> dict:
    """Sample requests with the Keras reference outputs, per signature (aliases included)."""
    samples = {signature.name: reference_records(signature.reference, signature.samples)
               for signature in signatures}
    for alias, target in aliases.items():
        samples[alias] = samples[target]
    return samples


def _versions() -> dict[str, str]:
    import tensorflow_text

    import semmatch_tf

    return {"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
            "keras": keras.__version__, "semmatch_tf": semmatch_tf.__version__}


def _graph_facts(directory: Path) -> dict:
    """Custom ops of the written graph and the TF Serving release they need."""
    return compat.serving_requirements(compat.graph_op_names(directory))


def _write_version(directory: Path, *, model_name: str, version: int, kind: str,
                   signatures: list[Signature], tracked: list, metadata: dict,
                   vocabulary: list[str] | None, run_dir: Path | None = None) -> None:
    """Write the SavedModel, warm-up records, metadata and model card into ``directory`` (a
    temporary one); the card starts with ``run_dir``'s card when the model came from a run."""
    _ensure_built(tracked, signatures)
    archive = keras.export.ExportArchive()
    for resource in tracked:
        archive.track(resource)
    _store_variables_once(archive)
    for signature in signatures:
        archive.add_endpoint(signature.name, signature.fn, input_signature=_string_specs(signature.inputs))
    aliases = {} if any(s.name == "serving_default" for s in signatures) else \
        {"serving_default": signatures[0].name}
    samples = _samples(signatures, aliases)
    _write_archive(archive, directory)

    extra = directory / EXTRA_DIR
    extra.mkdir(exist_ok=True)
    requests = [(s.name, inputs) for s in signatures for inputs in s.samples]
    write_warmup(extra / WARMUP_FILE, model_name, requests)
    if vocabulary is not None:
        (extra / "vocabulary.txt").write_text("".join(f"{t}\n" for t in vocabulary), encoding="utf-8")
    metadata = {
        "format": "semmatch-savedmodel", "format_version": FORMAT_VERSION, "kind": kind,
        "model_name": model_name, "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **metadata,
        "signatures": _signature_defs(directory), "signature_aliases": aliases,
        "versions": _versions(), **_graph_facts(directory),
        "warmup_requests": len(requests), "samples": samples,
    }
    (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False, default=str),
                                       encoding="utf-8")
    (extra / CARD).write_text(export_card(card_of_run(run_dir), metadata), encoding="utf-8")


def export_model(matcher, base_dir: str | Path, *, name: str = "semmatch", version: int | None = None,
                 force: bool = False) -> Path:
    """Export a cross-encoder to ``BASE_DIR/NAME/VERSION``, a SavedModel for TF Serving.

    Signature ``serving_default(query: string [B], product: string [B])`` returns ``scores``
    (float32 [B], the predicted grade), ``probabilities`` (float32 [B, C]; [B, 1] unit grade for a
    regression head) and ``label`` (string [B]).

    Args:
        matcher: a loaded run (:class:`~semmatch_tf.runs.TrainedMatcher`, ``CrossEncoder.matcher``).
        base_dir: the model base path TF Serving watches.
        name: the model name (a folder under ``base_dir``).
        version: default: the highest existing one plus one.
        force: replace an existing ``version`` (the old directory is renamed away, the new one in:
            a TF Serving poll between the two renames finds the version missing, so prefer a new
            version number for a live server); without it an existing version is a FileExistsError.

    Returns:
        The version directory.

    Examples:
        >>> import tempfile
        >>> from semmatch_tf import load_run
        >>> version = export_model(load_run("tests/fixtures/runs/bilstm_v0_1"), tempfile.mkdtemp())
        >>> version.name, (version / "saved_model.pb").is_file()
        ('1', True)
    """
    metadata = {"head": matcher.head, "labels": matcher.labels.to_dict(), **matcher.preprocessor.facts(),
                "run_dir": str(matcher.run_dir) if matcher.run_dir else None}

    def write(directory: Path, number: int) -> None:
        _write_version(directory, model_name=name, version=number, kind="cross_encoder",
                       signatures=cross_encoder_signatures(matcher),
                       tracked=[matcher.model, matcher.preprocessor], metadata=metadata,
                       vocabulary=matcher.preprocessor.vocabulary, run_dir=getattr(matcher, "run_dir", None))

    return publish_version(base_dir, name, version, force, write)


def export_bi_encoder(encoder, base_dir: str | Path, *, name: str = "semmatch_bi",
                      version: int | None = None, force: bool = False,
                      catalogue: tuple[Sequence[str], Sequence[str]] | None = None, top_k: int = 10,
                      vocabulary: list[str] | None = None) -> Path:
    """Export a two-tower model to ``BASE_DIR/NAME/VERSION``, a SavedModel for TF Serving.

    Signatures ``embed_query`` / ``embed_product`` (``text`` -> ``embedding``) and, given a
    catalogue, ``search(query)`` over the frozen product embeddings (``product_ids``, ``scores``:
    top ``top_k`` by dot product). ``serving_default`` is an alias of ``embed_query``. Same
    layout, versioning and atomicity as :func:`export_model`.

    Args:
        encoder: a :class:`BiEncoderParts`, or any object :func:`as_bi_encoder` accepts, such as a
            ``TwoTowerEncoder`` (``BiEncoder.encoder``).
        base_dir, name, version, force: as :func:`export_model` takes them.
        catalogue: ``(product_ids, product_texts)`` to freeze into ``search``; None: no ``search``.
        top_k: how many products ``search`` returns.
        vocabulary: the tokens written to ``assets.extra/vocabulary.txt``; default: the query
            preprocessor's, when it has a WordPiece vocabulary.

    Returns:
        The version directory.

    Examples:
        >>> import tempfile
        >>> from semmatch_tf.runs import load_bi_encoder
        >>> encoder = load_bi_encoder("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
        >>> export_bi_encoder(encoder, tempfile.mkdtemp(), catalogue=(["p1"], ["Red dress"])).name
        '1'
    """
    if top_k < 1:
        raise ValueError(f"top_k must be positive, got {top_k}")
    run_dir = getattr(encoder, "run_dir", None)
    encoder = as_bi_encoder(encoder)
    if vocabulary is None and hasattr(encoder.query_preprocessor, "vocabulary_sha256"):
        vocabulary = encoder.query_preprocessor.vocabulary

    def write(directory: Path, number: int) -> None:
        signatures, extra = bi_encoder_signatures(encoder, catalogue, top_k)
        tracked = [encoder.query_encoder, encoder.product_encoder, encoder.query_preprocessor,
                   encoder.product_preprocessor, *extra]
        tracked = [t for i, t in enumerate(tracked) if isinstance(t, keras.layers.Layer)
                   and all(t is not u for u in tracked[:i])]
        facts = {**encoder.metadata, "top_k": min(top_k, len(catalogue[0])) if catalogue else None,
                 "catalogue_size": len(catalogue[0]) if catalogue else 0, "similarity": "dot"}
        _write_version(directory, model_name=name, version=number, kind="bi_encoder",
                       signatures=signatures, tracked=tracked, metadata=facts, vocabulary=vocabulary,
                       run_dir=run_dir)

    return publish_version(base_dir, name, version, force, write)
