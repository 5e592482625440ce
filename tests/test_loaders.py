"""Every loader on real slices (exact values from SOURCE.md), WANDS/ESCI on schema fixtures, bad input."""

from __future__ import annotations

import http.server
import threading

import numpy as np
import pandas as pd
import pytest

from conftest import real_file
from semmatch_tf.data import DataFormatError, load_dataset, split_by_query
from semmatch_tf.data.download import download, sha256_of
from semmatch_tf.data.language import detect_language
from semmatch_tf.data.schema import COLUMNS


@pytest.mark.parametrize("fmt, relative, rows, first", [
    ("home_depot", "home-depot-search-relevance/train.csv", 59233,
     {"query": "angle bracket", "product": "Simpson Strong-Tie 12-Gauge Angle", "grade": 3.0, "label": 2,
      "product_id": "100001"}),
    ("qbqtc", "qbqtc/dev.json", 20000, {"query": "小孩咳嗽感冒", "label": 1, "grade": 1.0}),
    ("lcqmc", "lcqmc/dev.txt", 8802, {"query": "开初婚未育证明怎么弄？", "product": "初婚未育情况证明怎么开？", "label": 1}),
    ("lcqmc", "lcqmc/test.txt", 12500, {"query": "谁有狂三这张高清的", "product": "这张高清图，谁有", "label": 0}),
    ("bq_corpus", "bq-corpus/dev.csv", 10000, {"label": 0}),
    ("atec", "atec/atec_nlp_sim_train.csv", 39346, {"query": "怎么更改花呗手机号码", "label": 1}),
    ("jsts", "jglue-jsts/valid-v1.3.json", 1457, {"label": 0, "grade": 0.0,
                                                  "query": "レンガの建物の前を、乳母車を押した女性が歩いています。"}),
])
def test_real_files_load_completely(fmt, relative, rows, first):
    dataset = load_dataset(fmt, str(real_file(relative)))
    assert len(dataset) == rows and tuple(dataset.frame.columns) == COLUMNS
    row = dataset.frame.iloc[0]
    for key, value in first.items():
        assert row[key] == value, key
    frame = dataset.frame
    assert frame["query"].str.len().min() > 0 and frame["product"].str.len().min() > 0
    assert not frame["query"].str.contains("\ufeff").any() and not frame["product"].str.contains("\r").any()


def test_home_depot_keeps_grade_and_nearest_class_ties_going_up():
    dataset = load_dataset("home_depot", str(real_file("home-depot-search-relevance/train.csv")), limit=2)
    assert dataset.frame["grade"].tolist() == [3.0, 2.5]
    assert dataset.frame["label"].tolist() == [2, 2]  # 2.5 sits between partial and exact: goes up
    assert dataset.frame["query_id"].nunique() == 2 and dataset.labels.names == ("irrelevant", "partial", "exact")


def test_label_distributions_match_source_md():
    qbqtc = load_dataset("qbqtc", str(real_file("qbqtc/dev.json")))
    assert np.bincount(qbqtc.frame["label"]).tolist() == [4894, 12592, 2514]
    atec = load_dataset("atec", str(real_file("atec/atec_nlp_sim_train.csv")))
    assert np.bincount(atec.frame["label"]).tolist() == [30797, 8549]


def write_wands(folder):
    (folder / "product.csv").write_text(
        "product_id\tproduct_name\tproduct_class\tcategory hierarchy\tproduct_description\tproduct_features\t"
        "rating_count\taverage_rating\treview_count\n"
        "0\tsolid wood platform bed\tBeds\tFurniture / Bedroom\ta bed\tcolor:brown\t15\t4.5\t15\n"
        "1\tall-clad 7 qt slow cooker\tSlow Cookers\tKitchen\tcooker\tcolor:silver\t100\t2.0\t98\n", encoding="utf-8")
    (folder / "query.csv").write_text("query_id\tquery\tquery_class\n0\tsalon chair\tMassage Chairs\n"
                                      "1\twood bed\tBeds\n", encoding="utf-8")
    (folder / "label.csv").write_text("id\tquery_id\tproduct_id\tlabel\n0\t1\t0\tExact\n1\t1\t1\tIrrelevant\n"
                                      "2\t0\t0\tPartial\n", encoding="utf-8")


def test_wands_schema_fixture(tmp_path):
    write_wands(tmp_path)
    dataset = load_dataset("wands", str(tmp_path))
    assert dataset.frame["query"].tolist() == ["wood bed", "wood bed", "salon chair"]
    assert dataset.frame["product"].tolist()[:2] == ["solid wood platform bed", "all-clad 7 qt slow cooker"]
    assert dataset.frame["label"].tolist() == [2, 0, 1] and dataset.frame["grade"].tolist() == [2.0, 0.0, 1.0]
    richer = load_dataset("wands", str(tmp_path), product_fields=("product_name", "product_class"))
    assert richer.frame["product"][0] == "solid wood platform bed | Beds"


def write_esci(folder):
    pd.DataFrame({
        "example_id": [0, 1, 2, 3, 4], "query": ["usb cable", "usb cable", "zapatos", "充電器", "usb cable"],
        "query_id": [1, 1, 2, 3, 1], "product_id": ["A", "B", "C", "D", "E"],
        "product_locale": ["us", "us", "es", "jp", "us"], "esci_label": ["E", "C", "S", "I", "E"],
        "small_version": [1, 1, 1, 1, 0], "large_version": [1] * 5, "split": ["train"] * 4 + ["test"],
    }).to_parquet(folder / "shopping_queries_dataset_examples.parquet")
    pd.DataFrame({
        "product_id": ["A", "B", "C", "D", "E"], "product_locale": ["us", "us", "es", "jp", "us"],
        "product_title": ["Anker USB-C cable", "USB hub", "Zapatillas rojas", "ケーブル", "Cable"],
        "product_description": [None] * 5, "product_bullet_point": [None] * 5, "product_brand": [None] * 5,
        "product_color": [None] * 5,
    }).to_parquet(folder / "shopping_queries_dataset_products.parquet")


def test_esci_schema_fixture_locales_and_gains(tmp_path):
    write_esci(tmp_path)
    dataset = load_dataset("esci", str(tmp_path))
    assert dataset.frame["product"].tolist() == ["Anker USB-C cable", "USB hub", "Zapatillas rojas", "ケーブル"]
    assert dataset.frame["label"].tolist() == [3, 1, 2, 0]
    assert dataset.frame["grade"].tolist() == [1.0, 0.01, 0.1, 0.0]
    assert dataset.frame["language"].tolist() == ["en", "en", "es", "ja"]
    assert len(load_dataset("esci", str(tmp_path), locales=("jp",))) == 1
    assert load_dataset("esci", str(tmp_path), split="test", small_version=False).frame["product"].tolist() == ["Cable"]


def test_generic_with_names_grades_and_detected_language(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("q\tp\tl\nred shoes\tNike red\tgood\n苹果\t红富士\tbad\nzapatos rojos para niño\tzapatos\tgood\n",
                    encoding="utf-8")
    dataset = load_dataset("generic", str(path), query="q", product="p", label="l", names=["bad", "good"])
    assert dataset.frame["label"].tolist() == [1, 0, 1]
    assert dataset.frame["language"].tolist() == ["en", "zh", "es"]
    graded = tmp_path / "graded.csv"
    graded.write_text("query,product,score\na,b,4.5\nc,d,1\n", encoding="utf-8")
    dataset = load_dataset("generic", str(graded), label="score", grade_range=[0, 5], language="en")
    assert dataset.frame["grade"].tolist() == [4.5, 1.0] and dataset.frame["label"].tolist() == [5, 1]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"query": "a", "product": "b", "label": 1}\n', encoding="utf-8")
    assert len(load_dataset("generic", str(jsonl), grade_range=[0, 1])) == 1


def test_language_detection():
    assert [detect_language(t) for t in ("ガンダム 模型", "苹果手机", "노트북", "zapatos de mujer", "red shoes")] == \
        ["ja", "zh", "ko", "es", "en"]


@pytest.mark.parametrize("content, fmt, options, row, field, message", [
    ("query,product,label\na,b,1\n", "generic", {"label": "grade"}, None, "grade", "missing column"),
    ("query,product,label\na,b,1\nc,d,7\n", "generic", {"grade_range": [0, 5]}, 2, "label", "not a number in"),
    ("query,product,label\na,b,good\nc,,bad\n", "generic", {"names": ["bad", "good"]}, 2, "product", "empty text"),
    ("query,product,label\na,b,great\n", "generic", {"names": ["bad", "good"]}, 1, "label", "unknown label 'great'"),
    ('{"query": "a", "title": "b", "label": "1"}\n{"query": "c", "title": "d", "label": "3"}\n', "qbqtc", {}, 2,
     "label", "unknown label '3'"),
    ('{"query": "a", "title": "b", "label": "1"}\n{"query": "c", "title": \n', "qbqtc", {}, 2, None, "malformed JSON"),
    ("s1\ts2\t1\nx\t \t0\n", "lcqmc", {}, 2, "sentence2", "empty text"),
])
def test_bad_input_names_file_row_and_field(tmp_path, content, fmt, options, row, field, message):
    path = tmp_path / ("bad.jsonl" if content.startswith("{") else "bad.csv")
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        load_dataset(fmt, str(path), **options)
    assert error.value.path == str(path) and error.value.row == row and error.value.field == field
    assert message in str(error.value) and str(path) in str(error.value)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes("a\tb\t1\n".encode() + b"c\t\xff\xfe\t0\n")
    with pytest.raises(DataFormatError, match="not valid utf-8") as error:
        load_dataset("lcqmc", str(path))
    assert error.value.row == 2


def test_wands_unknown_product_id_names_row(tmp_path):
    write_wands(tmp_path)
    (tmp_path / "label.csv").write_text("id\tquery_id\tproduct_id\tlabel\n0\t1\t0\tExact\n1\t1\t9\tExact\n")
    with pytest.raises(DataFormatError, match="product_id '9' has no entry") as error:
        load_dataset("wands", str(tmp_path))
    assert error.value.row == 2


def test_split_by_query_is_disjoint_deterministic_and_near_fractions():
    dataset = load_dataset("home_depot", str(real_file("home-depot-search-relevance/train.csv")), limit=5000)
    train, validation, test = split_by_query(dataset, (0.8, 0.1, 0.1), seed=1)
    ids = [set(part.frame["query_id"]) for part in (train, validation, test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(train) + len(validation) + len(test) == 5000
    assert abs(len(train) / 5000 - 0.8) < 0.01 and abs(len(test) / 5000 - 0.1) < 0.01
    again = split_by_query(dataset, (0.8, 0.1, 0.1), seed=1)
    assert again[2].frame.equals(test.frame)
    other = split_by_query(dataset, (0.8, 0.1, 0.1), seed=2)
    assert not other[2].frame.equals(test.frame)
    empty = split_by_query(dataset, (0.9, 0.1, 0.0), seed=1)[2]
    assert len(empty) == 0


def test_subsample_keeps_whole_queries_up_to_the_cap():
    from semmatch_tf.data.splits import subsample_queries

    dataset = load_dataset("home_depot", str(real_file("home-depot-search-relevance/train.csv")), limit=3000)
    small = subsample_queries(dataset, 1000, seed=3)
    assert 900 <= len(small) <= 1000
    kept = set(small.frame["query_id"])
    whole = dataset.frame[dataset.frame["query_id"].isin(kept)]
    assert len(whole) == len(small), "every kept query keeps all its judged products"
    assert subsample_queries(dataset, 1000, seed=3).frame.equals(small.frame)
    assert subsample_queries(dataset, 10_000) is dataset


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []

    def do_GET(self):  # noqa: N802
        self.requests.append(self.path)
        if self.path not in self.files:
            self.send_error(500, "boom")
            return
        body = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Handler.files = {"/data.txt": b"hello semmatch\n"}
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_caches_and_cleans_up(server, tmp_path):
    import hashlib

    good = hashlib.sha256(b"hello semmatch\n").hexdigest()
    path = download(f"{server}/data.txt", good, tmp_path)
    assert path.read_bytes() == b"hello semmatch\n" and sha256_of(path) == good
    assert download(f"{server}/data.txt", good, tmp_path) == path
    assert _Handler.requests == ["/data.txt"], "a verified cached file is not fetched again"
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{server}/data.txt", "0" * 64, tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == [], "a bad download leaves nothing behind"
    with pytest.raises(OSError, match="/missing.bin"):
        download(f"{server}/missing.bin", None, tmp_path / "third")
    assert list((tmp_path / "third").iterdir()) == []


def test_case_variants_of_a_query_share_one_id_and_one_split():
    """One text identity (schema.text_key) for query ids and the batch packer: "Red Dress" and
    "red  dress" are one query, so the query split cannot put them on both sides."""
    from semmatch_tf.data.loaders import _query_ids
    from semmatch_tf.data.schema import text_key

    ids = _query_ids(["Red Dress", "red  dress", "RED DRESS ", "blue dress", "Straße", "STRASSE"])
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert ids[4] == ids[5]  # case folding, not lower(): ß folds to ss
    assert text_key("  Red \t Dress ") == "red dress"
