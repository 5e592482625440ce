"""The in-graph normaliser, word splitter, vocabulary learner and WordPiece tokenizer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.text import (SPECIAL_TOKENS, WordPieceTokenizer, learn_vocabulary, load_vocabulary,
                              normalize, save_vocabulary, split_words, vocabulary_hash)
from semmatch_tf.text.preprocessor import PairPreprocessor

CORPUS = [
    "Apple iPhone 15 Pro Max case", "Apple USB-C charger 20W", "fresh Fuji apples 1kg",
    "苹果手机壳 透明", "新鲜苹果 红富士", "ガンダムのプラモデル", "りんごジュース 1L",
    "zapatos rojos para niño", "Kopfhörer kabellos", "Café molido 500g",
] * 3


def words(texts: list[str]) -> list[list[str]]:
    return [[w.decode() for w in row] for row in split_words(tf.constant(texts)).to_list()]


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    return learn_vocabulary(CORPUS, vocab_size=300, min_frequency=1)


def test_normalize_folds_width_case_and_latin_accents_but_keeps_dakuten():
    out = [s.decode() for s in normalize(tf.constant(["ＡＢＣ Café NIÑO", "ガンダム ﾌﾟﾗﾓﾃﾞﾙ", "a\u200bb\ufeffc"])).numpy()]
    assert out[0] == "abc cafe nino"
    # Half-width katakana are widened by NFKC; the voicing marks (ガ, ダ, プ, デ) survive.
    assert out[1] == "ガンダム プラモデル"
    assert out[2] == "a b c"  # zero-width space and BOM become separators, not glue


def test_normalize_can_keep_case_and_accents():
    out = normalize(tf.constant(["Café"]), lowercase=False, strip_accents=False).numpy()[0].decode()
    assert out == "Café"


def test_split_words_per_character_for_cjk_and_words_for_latin():
    assert words(["iPhone 15 苹果手机", "ガンダムのプラモデル", "한국어", "zapatos-rojos, niño!"]) == [
        ["iphone", "15", "苹", "果", "手", "机"],
        ["ガ", "ン", "ダ", "ム", "の", "プ", "ラ", "モ", "デ", "ル"],
        ["한", "국", "어"],
        ["zapatos", "-", "rojos", ",", "nino", "!"],
    ]


def test_prolonged_sound_mark_is_its_own_piece():
    assert words(["コーヒー"]) == [["コ", "ー", "ヒ", "ー"]]


def test_learned_vocabulary_starts_with_specials_and_covers_every_character(vocabulary):
    assert tuple(vocabulary[:5]) == SPECIAL_TOKENS
    assert len(vocabulary) == len(set(vocabulary)) <= 300
    for char in "苹果ガンダムりん":
        assert char in vocabulary, char


def test_tokenizer_ids_padding_and_start_token(vocabulary):
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=8)
    ids = tokenizer(tf.constant(["apple case", "", "苹果 ガンダム xyzzyq"])).numpy()
    assert ids.shape == (3, 8) and ids.dtype == np.int32
    cls = vocabulary.index("[CLS]")
    assert (ids[:, 0] == cls).all()
    assert ids[0, 1] == vocabulary.index("apple") and ids[0, 2] == vocabulary.index("case")
    assert (ids[1, 1:] == 0).all(), "an empty string is [CLS] then padding"
    row = [vocabulary[i] for i in ids[2] if i]
    assert row[1:7] == ["苹", "果", "ガ", "ン", "ダ", "ム"]
    assert "[UNK]" in row or any(t.startswith("##") for t in row), "an unseen word becomes pieces or [UNK]"


def test_tokenizer_truncates_long_text(vocabulary):
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=5)
    ids = tokenizer(tf.constant(["apple " * 100])).numpy()
    assert ids.shape == (1, 5) and (ids[0, 1:] == vocabulary.index("apple")).all()


def test_detokenize_round_trip(vocabulary):
    tokenizer = WordPieceTokenizer(vocabulary, start_token=False)
    text = tokenizer.detokenize(tokenizer(tf.constant(["Apple iPhone case"]))).numpy()[0].decode()
    assert text == "apple iphone case"


def test_tokenizer_rejects_vocabulary_without_special_tokens():
    with pytest.raises(ValueError, match="must start with"):
        WordPieceTokenizer(["a", "b"])


def test_vocabulary_file_round_trip_and_hash(vocabulary, tmp_path):
    path = save_vocabulary(vocabulary, tmp_path / "vocab.txt")
    assert load_vocabulary(path) == vocabulary
    assert vocabulary_hash(vocabulary) == vocabulary_hash(load_vocabulary(path))
    assert vocabulary_hash(vocabulary) != vocabulary_hash(vocabulary[:-1])
    assert WordPieceTokenizer(path).vocabulary == vocabulary


def test_keras_round_trip_keeps_vocabulary_as_asset(vocabulary, tmp_path):
    preprocessor = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=6, product_length=10)
    inputs = {"query": keras.Input(shape=(), dtype="string", name="query"),
              "product": keras.Input(shape=(), dtype="string", name="product")}
    model = keras.Model(inputs, preprocessor(inputs))
    model.save(tmp_path / "pre.keras")
    restored = keras.saving.load_model(tmp_path / "pre.keras")
    batch = {"query": tf.constant(["apple", "苹果"]), "product": tf.constant(["Apple USB-C charger", "新鲜苹果"])}
    before, after = model(batch), restored(batch)
    assert after["query"].shape == (2, 6) and after["product"].shape == (2, 10)
    for side in ("query", "product"):
        np.testing.assert_array_equal(before[side].numpy(), after[side].numpy())


def test_tokenizer_works_inside_tf_data(vocabulary):
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=4)
    data = tf.data.Dataset.from_tensor_slices(["apple case", "苹果"]).batch(2).map(tokenizer)
    batch = next(iter(data)).numpy()
    assert batch.shape == (2, 4) and batch[1, 1] == vocabulary.index("苹")


def test_vocabulary_file_round_trips_tokens_that_splitlines_would_cut(tmp_path):
    """multilingual-e5's SentencePiece vocabulary has the piece U+0085 (NEL): a resumed run compares
    the saved vocabulary with the checkpoint's, so the file must give back every token."""
    from semmatch_tf.text.vocabulary import load_vocabulary, save_vocabulary

    tokens = ["<s>", "\x85", "a\u2028b", "\x0c", "▁de", "##x"]
    assert load_vocabulary(save_vocabulary(tokens, tmp_path / "vocabulary.txt")) == tokens
    (tmp_path / "crlf.txt").write_bytes(b"[PAD]\r\n[UNK]\r\nshoe\r\n")
    assert load_vocabulary(tmp_path / "crlf.txt") == ["[PAD]", "[UNK]", "shoe"]
