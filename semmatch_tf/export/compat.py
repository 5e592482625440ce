"""Which non-core ops an exported graph uses, and which TF Serving release can run them.

TF Serving links a fixed TF Text into ``tensorflow_model_server``; an op the linked TF Text lacks
makes the model fail to load ("Op type not registered"). So the minimum TF Serving release of an
export is decided by the newest TF Text op in its graph. The op list is read from the saved graph
(never hard-coded); only the release tables below are knowledge written down by hand.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

#: TF Serving release -> the TF Text release linked into its model server (TF Serving pins TF Text
#: in its Bazel workspace). The 2.12-2.19 rows (TF Text 2.12.1) and 2.20 are as stated in the export
#: issue, not re-checked here; the 2.21 row is an assumption (the pin has followed TF Text's
#: releases) and does not change the minimum. Releases before 2.12 are not considered.
TF_SERVING_TF_TEXT: dict[str, str] = {
    "2.12": "2.12.1", "2.13": "2.12.1", "2.14": "2.12.1", "2.15": "2.12.1", "2.16": "2.12.1",
    "2.17": "2.12.1", "2.18": "2.12.1", "2.19": "2.12.1", "2.20": "2.20.0", "2.21": "2.21.0",
}

#: TF Text op -> first TF Text release that has it (as op name and with the attributes we use).
#: The release numbers are from memory of TF Text's history, with this uncertainty:
#:   NormalizeUTF8, CaseFoldUTF8: in the first public release (1.0, 2019) - confident.
#:   RegexSplitWithOffsets: added with BertTokenizer's BasicTokenizer, 2.0 or 2.1 - fairly confident
#:     it predates 2.2; the table says 2.2 to stay on the safe side.
#:   FastWordpieceTokenizeWithOffsets / FastWordpieceDetokenize: 2.5-2.7 (2021, the "Fast WordPiece"
#:     paper); the table says 2.7 to stay on the safe side.
#: What IS verified: the tensorflow-text 2.12.1 wheel (the one TF Serving 2.12-2.19 links) registers
#: all five ops with the same inputs, outputs and attributes as 2.21.1 (checked on its .so files).
#: Since the TF Serving table starts at 2.12, only "<= 2.12.1" matters for the minimum.
#: See also CORE_OPS_VERIFIED_TF_2_12 for the core side.
#:   SentencepieceOp / SentencepieceTokenizeOp (SentencePiece checkpoints such as multilingual-e5):
#:     verified present in the 2.12.1 wheel's _sentencepiece_tokenizer.so.
#:   TFText>RoundRobinTrim (keras-hub's MultiSegmentPacker packing a pair): verified ABSENT from
#:     2.12.1 (its RoundRobinTrimmer is pure Python there) and present in 2.16.1, 2.20.0 and 2.21.1
#:     (checked on the wheels' op libraries; 2.13-2.15 were not checked), so the table says 2.16.1.
TF_TEXT_OP_SINCE: dict[str, str] = {
    "NormalizeUTF8": "1.0.0",
    "CaseFoldUTF8": "1.0.0",
    "RegexSplitWithOffsets": "2.2.0",
    "FastWordpieceTokenizeWithOffsets": "2.7.0",
    "FastWordpieceDetokenize": "2.7.0",
    "NormalizeUTF8WithOffsetsMap": "2.5.0",
    "WhitespaceTokenizeWithOffsetsV2": "2.7.0",
    "SentencepieceOp": "2.0.0",
    "SentencepieceTokenizeOp": "2.0.0",
    "WordpieceTokenizeWithOffsets": "1.0.0",
    "TFText>RoundRobinTrim": "2.16.1",
}


#: Core TF ops of graphs written by this exporter (TF 2.21 / Keras 3.15: BiLSTM cross-encoder with
#: both heads; bi-encoders with search - the test towers and models.bi_encoder's BiLSTM towers,
#: shared and separate) that were loaded and run under TF 2.12.1 with the TF Text 2.12.1 op
#: libraries - through the TF1 session loader that tensorflow_model_server uses and through
#: tf.saved_model.load - giving the Keras outputs within 2.1e-7. TF 2.12 logs "NodeDef
#: mentions attribute debug_name which is not in the op definition" for VarHandleOp and ignores it.
#: A core op outside this set (a new model family) is reported as unverified in the metadata.
#: Any and GreaterEqual (the BiLSTM's exact-match flags) were added after the same check: the demo
#: export with them loaded and ran under TF 2.12.1 + TF Text 2.12.1 with the TF 2.21 outputs.
#: EnsureShape (every signature checks its inputs are vectors: a loaded signature called with a
#: [B, k] tensor would otherwise flatten it) was added after the same check on a BiLSTM
#: cross-encoder and a bi-encoder with search: within 1.8e-7 of Keras, and a rank-2 input refused.
CORE_OPS_VERIFIED_TF_2_12: frozenset[str] = frozenset("""
    Abs AddV2 All Any ArgMax ArgMin Assert AssignVariableOp BiasAdd Cast ConcatV2 Const DisableCopyOnRead
    EnsureShape Equal ExpandDims Fill GatherV2 Greater GreaterEqual Identity If Less LessEqual LogicalAnd MatMul Max Maximum
    MergeV2Checkpoints Minimum Mul NoOp NotEqual Pack Placeholder RaggedGather RaggedRange
    RaggedTensorToTensor Range ReadVariableOp RealDiv Relu Reshape RestoreV2 ReverseV2 Rsqrt SaveV2
    Select SelectV2 Shape ShardedFilename Sigmoid Softmax Split Square Squeeze StatefulPartitionedCall
    StaticRegexFullMatch StaticRegexReplace StridedSlice StringJoin Sub Sum Tanh TensorListFromTensor
    TensorListGetItem TensorListReserve TensorListSetItem TensorListStack Tile TopKV2 Transpose
    VarHandleOp VarIsInitializedOp While ZerosLike
""".split())


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def graph_op_names(saved_model_dir: str | Path) -> list[str]:
    """Every op type in a SavedModel: the graph's nodes plus all functions of its library."""
    proto = saved_model_pb2.SavedModel.FromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    names: set[str] = set()
    for meta_graph in proto.meta_graphs:
        names.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            names.update(node.op for node in function.node_def)
    return sorted(names)


#: ``load_op_library`` names the module it returns after a hash of the library.
_OP_LIBRARY_MODULE = re.compile(r"^[0-9a-f]{40}$")


def tf_text_op_names() -> frozenset[str]:
    """Op types registered by TF Text's op libraries in this process.

    ``load_op_library`` returns one module per TF Text ``.so``, holding a generated wrapper per op
    (named as the op type). We find those modules among TF Text's module attributes.
    """
    import tensorflow_text  # noqa: F401  (registers the ops)

    names: set[str] = set()
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("tensorflow_text"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType) and getattr(value, "__file__", None) is None \
                    and _OP_LIBRARY_MODULE.match(value.__name__):
                names.update(attr for attr in dir(value)
                             if attr[:1].isupper() and op_def_registry.get(attr) is not None)
    return frozenset(names)


def custom_ops(op_names: list[str]) -> dict[str, str]:
    """Ops of a graph that core TensorFlow does not define, mapped to the library that does.

    Core ops all have a generated ``tf.raw_ops`` wrapper; ops loaded from plugin libraries do not.
    """
    text_ops = tf_text_op_names()
    result = {}
    for name in op_names:
        if hasattr(tf.raw_ops, name) or name.startswith("_"):
            continue
        result[name] = "tensorflow_text" if name in text_ops else "unknown"
    return result


def serving_requirements(op_names: list[str]) -> dict:
    """Everything the metadata says about running a graph in TF Serving, from its op names."""
    custom = custom_ops(op_names)
    serving = minimum_tf_serving(custom)
    unverified = sorted(op for op in op_names if op not in custom and op not in CORE_OPS_VERIFIED_TF_2_12)
    serving["unverified_core_ops"] = unverified
    if unverified and serving["minimum"] is not None:
        serving["caveat"] = (f"core ops {unverified} were not verified on TF 2.12; TF only guarantees "
                             f"that newer binaries read older graphs - if TF Serving {serving['minimum']} "
                             f"rejects one, use TF Serving {'.'.join(tf.__version__.split('.')[:2])}")
    serving["tf_serving_tf_text"] = dict(TF_SERVING_TF_TEXT)
    return {"custom_ops": sorted(custom), "custom_op_libraries": custom, "tf_serving": serving}


def minimum_tf_serving(custom: dict[str, str]) -> dict:
    """The oldest TF Serving release whose linked TF Text has every custom op of the graph.

    Returns ``{"minimum": "2.12" | None, "tf_text_needed": ..., "per_op": {...}, "reason": ...}``;
    ``minimum`` is None when an op's history is unknown (then only the exporting TF version is safe).
    """
    per_op = {name: TF_TEXT_OP_SINCE.get(name) for name in sorted(custom)}
    unknown = [name for name, since in per_op.items() if since is None]
    if unknown:
        return {"minimum": None, "tf_text_needed": None, "per_op": per_op,
                "reason": f"no release history recorded for {unknown}; use TF Serving {tf.__version__}"}
    needed = max(per_op.values(), key=_version_tuple, default="0")
    for serving, text in sorted(TF_SERVING_TF_TEXT.items(), key=lambda item: _version_tuple(item[0])):
        if _version_tuple(text) >= _version_tuple(needed):
            return {"minimum": serving, "tf_text_needed": needed, "per_op": per_op,
                    "reason": f"TF Serving {serving} links TF Text {text} >= {needed} (newest op needed)"}
    return {"minimum": None, "tf_text_needed": needed, "per_op": per_op,
            "reason": f"no known TF Serving release links TF Text >= {needed}"}
