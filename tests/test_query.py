"""Query understanding (semmatch_tf/query): spelling, units, attributes, senses, and the search path.

The Home Depot tests learn from the real catalogue (skipped when the data is absent) and check
corrections, normalisations and extractions on its real strings and on the hand-checked fixtures
of tests/fixtures/query/ (held-out test queries; see the README there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import real_file
from semmatch_tf import cli
from semmatch_tf.query import (AttributeExtractor, Gazetteer, QueryConfig, QueryUnderstanding, SpellingConfig,
                               SpellingCorrector, agreement, diversify, find_senses, normalize_units,
                               normalize_units_graph)
from semmatch_tf.query.attributes import key
from semmatch_tf.retrieval.search import build_index, format_understanding, load_searcher, search_index

FIXTURES = Path(__file__).parent / "fixtures" / "query"


def read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


# -- units --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Everbilt 1-1/2 in. x 12 ft. Hose", "everbilt 1-1/2 in x 12 ft hose"),
    ("kitchen countertop 6'", "kitchen countertop 6 ft"),
    ('12" tile', "12 in tile"),
    ("30inch flourescent tubes", "30 in flourescent tubes"),
    ("double oven 7cu. ft.", "double oven 7 cuft"),
    ("2x6x10 pretreated lumber", "2 x 6 x 10 pretreated lumber"),
    ("3'x3' corner bracket", "3 ft x 3 ft corner bracket"),
    ("medicine cabinet mirror18x20", "medicine cabinet mirror 18 x 20"),
    ("Dyna-Glo 50,000 - 80K LP Convection Heater", "dyna-glo 50000 - 80k lp convection heater"),
    ("Milwaukee M18 18-Volt Lithium-Ion", "milwaukee m18 18 volt lithium-ion"),
    ("40 gallon water heater", "40 gal water heater"),
    ("G-Floor (40 sq. ft. / case)", "g-floor (40 sqft / case)"),
    ("80's style peb2060smss", "80's style peb2060smss"),  # a decade and a model number are kept
    ("苹果 20W充电头", "苹果 20 watt充电头"),
])
def test_units_are_written_one_way(text, expected):
    assert normalize_units(text) == expected


def test_graph_normaliser_equals_python_on_real_strings():
    texts = [r["query"] for r in read_jsonl("spelling_home_depot.jsonl") + read_jsonl("attributes_home_depot.jsonl")]
    texts += ["Simpson Strong-Tie 12-Gauge Angle", "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat",
              "Husky 25 ft. x 1 in. Tape", "Ｆｕｌｌ-width ４ｆｔ", "ドリルビット 10mm", "café 5 Gal."]
    import tensorflow as tf

    graph = tf.function(normalize_units_graph, input_signature=[tf.TensorSpec([None], tf.string)])
    assert [b.decode("utf-8") for b in graph(tf.constant(texts)).numpy()] == [normalize_units(t) for t in texts]


def test_titles_and_queries_meet_after_normalisation():
    assert set(normalize_units("4 foot level").split()) <= set(normalize_units("Empire 48 in. 4 ft. Level").split())
    assert "12 in" in normalize_units('Rubbermaid 12" D Single Track Bracket')


# -- the corrector ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_corrector() -> SpellingCorrector:
    counts = {"cedar": 40, "fence": 90, "toilet": 60, "deck": 30, "over": 50, "seat": 70, "porcelain": 25, "tile": 80,
              "kitchen": 90, "faucet": 60, "pudding": 12, "behr": 30}
    return SpellingCorrector(counts, protected={"hdx"})


@pytest.mark.parametrize("query, expected", [
    ("ceadar fence", "cedar fence"), ("toliet seat", "toilet seat"), ("TOLIET SEAT", "TOILET SEAT"),
    ("porcelian tile", "porcelain tile"), ("kitchenfaucet", "kitchen faucet"), ("deckover", "deck over"),
    ("toliet 2x4 peb2060smss", "toilet 2x4 peb2060smss"),  # tokens with digits stay whole
    ("hdx fence", "hdx fence"),  # protected (brand) words stay
    ("foam padding", "foam padding"),  # an English word is not a typo of the catalogue's "pudding"
    ("seats", "seats"),  # an inflection of a catalogue word stays
    ("tile", "tile"), ("abc", "abc"),  # short words are never corrected
    ("苹果手机壳", "苹果手机壳"), ("ドリルビット", "ドリルビット"),  # CJK passes through unchanged
])
def test_corrector(small_corrector, query, expected):
    assert small_corrector.correct(query) == expected


@pytest.mark.parametrize("typed, likely, unlikely", [
    ("lense", "lens", "dense"),          # a dropped final e, not a wrong first letter
    ("toliet", "toilet", "toile"),       # neighbours swapped
    ("perrenial", "perennial", "perineal"),  # a doubled letter, not two substitutions
    ("dtop", "stop", "atop"),            # the key next to s
    ("venner", "veneer", "vender"),      # a vowel for a vowel
])
def test_the_error_model_knows_how_people_mistype(typed, likely, unlikely):
    from semmatch_tf.query.error_model import edit_probability

    assert edit_probability(typed, likely) > 2 * edit_probability(typed, unlikely) > 0
    assert edit_probability(typed, typed) == 1.0 and edit_probability("abc", "abcdef") == 0.0


def test_corrector_weighs_a_word_with_its_plurals_and_its_typing_odds():
    corrector = SpellingCorrector({"conditioner": 200, "conditioners": 5, "lens": 52, "sense": 24, "dense": 2},
                                  config=SpellingConfig(min_confidence=0.85))
    assert corrector.correct("portable air condtioners") == "portable air conditioners"
    (lens,) = corrector.corrections("lense")
    assert lens.replacement == "lens" and lens.confidence >= 0.85  # sense is used half as often but far less likely


def test_corrector_reports_confidence_and_kind(small_corrector):
    (edit,), (split,) = small_corrector.corrections("ceadar"), small_corrector.corrections("kitchenfaucet")
    assert (edit.replacement, edit.kind, edit.distance) == ("cedar", "edit", 1) and 0.6 <= edit.confidence <= 1
    assert (split.replacement, split.kind) == ("kitchen faucet", "split")


@pytest.mark.parametrize("word, stem, suffix, replacement, regular", [
    ("thermostats", "thermostat", "s", "", True), ("boxs", "box", "s", "", False), ("boxes", "box", "es", "", True),
    ("driveing", "drive", "ing", "", False), ("driving", "driv", "ing", "e", True), ("seeing", "see", "ing", "", True),
    ("roter", "rot", "er", "", False), ("opener", "open", "er", "", True), ("charming", "charm", "ing", "", True),
])
def test_regular_inflections(word, stem, suffix, replacement, regular):
    from semmatch_tf.query.morphology import regular_inflection

    assert word == stem + suffix and regular_inflection(stem, suffix, replacement) is regular


def test_a_replacement_agrees_in_number_with_the_typed_word():
    from semmatch_tf.query.morphology import agree_in_number

    assert agree_in_number("curtiins", "curtain") == "curtains" and agree_in_number("curtian", "curtain") == "curtain"
    assert agree_in_number("batterys", "battery") == "batteries" and agree_in_number("boxs", "box") == "boxes"
    assert agree_in_number("glas", "glass") == "glass"  # a word ending in s is not a plural


def test_real_words_are_weighed_against_their_own_english_frequency():
    counts = {"cedar": 200, "mulch": 80, "spray": 300, "paint": 400, "shower": 500, "head": 300}
    corrector = SpellingCorrector(counts, bigrams={"cedar mulch", "spray paint", "shower head"})
    assert corrector.correct("ceder mulch") == "cedar mulch"  # 200 times rarer in English than "cedar"
    assert corrector.correct("pray paint") == "pray paint"  # as common as "spray": the typist may mean it
    kept = SpellingCorrector(counts, config=SpellingConfig(correct_real_words=False))
    assert kept.correct("ceder mulch") == "ceder mulch"


def test_spelling_config_is_validated():
    with pytest.raises(ValueError, match="max_edit_distance"):
        SpellingConfig(max_edit_distance=3)
    with pytest.raises(ValueError, match="min_confidence"):
        SpellingConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="unknown key"):
        QueryConfig.from_dict({"spelling": {}, "boost": 1})


# -- attributes and senses -----------------------------------------------------------------------------------
def test_gazetteer_learns_brands_from_title_prefixes_and_types_from_endings():
    titles = ["Simpson Strong-Tie 12-Gauge Angle", "Simpson Strong-Tie Joist Hanger", "Simpson Strong-Tie 2x4 Angle",
              "BEHR Premium Deck Stain", "BEHR 1-gal. Paint", "BEHR Premium Plus Paint", "White Vinyl Angle"]
    gazetteer = Gazetteer.learn(titles, min_type_titles=2)
    assert sorted(gazetteer.brands.values()) == ["BEHR", "Simpson Strong-Tie"]  # "White" is a colour
    found = AttributeExtractor(gazetteer).extract("simpson strong tie 12 gauge angle white 4-pack")
    assert found == {"brand": "Simpson Strong-Tie", "type": "angle", "colour": ["white"], "material": [],
                     "size": ["12 gauge"], "quantity": 4}


def test_agreement_features():
    features = agreement({"brand": "BEHR", "colour": ["white"], "size": ["5 gal"], "type": "paint"},
                         {"brand": "Glidden", "colour": ["white"], "size": ["1 gal"], "type": "interior paint"})
    assert (features["brand_contradict"], features["colour_agree"], features["size_contradict"],
            features["type_agree"], features["material_agree"]) == (1, 1, 1, 1, 0)


def test_senses_and_diversification():
    categories = ["phones"] * 8 + ["groceries"] * 4
    senses = find_senses(categories, depth=12)
    assert [s["sense"] for s in senses] == ["phones", "groceries"] and abs(sum(s["share"] for s in senses) - 1) < 1e-3
    order = diversify(categories, senses, k=5)
    assert sorted(order) == list(range(12)) and {categories[i] for i in order[:5]} == {"phones", "groceries"}
    assert find_senses(["phones"] * 10) == [{"sense": "phones", "share": 1.0, "examples": []}]


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_understanding() -> QueryUnderstanding:
    from semmatch_tf.data import load_demo_catalogue

    return QueryUnderstanding.build(load_demo_catalogue(), ["scented candle", "toilet seat"])


@pytest.mark.parametrize("query, message", [("", "empty"), ("   ", "empty"), ("a" * 10_000, "10000 characters"),
                                            (None, "expected a string")])
def test_bad_queries_get_one_clear_error(demo_understanding, query, message):
    with pytest.raises(ValueError, match=message):
        demo_understanding.analyse(query)


def test_unknown_script_and_cjk_pass_through_with_a_note(demo_understanding):
    for query in ("ᚠᚢᚦ ᚨᚱ", "苹果手机壳", "ドリルビット", "🙂🙂"):
        found = demo_understanding.understand(query)
        assert found["corrected"] == query and found["did_you_mean"] is None and found["notes"]
    assert "Latin script only" in demo_understanding.understand("苹果")["notes"][0]


def test_understanding_round_trips_and_refuses_a_corrupt_file(demo_understanding, tmp_path):
    demo_understanding.save(tmp_path / "q")
    loaded = QueryUnderstanding.load(tmp_path / "q")
    for query in ("scented candel 200g", "apple iphone charger", "jaguar"):
        assert loaded.understand(query) == demo_understanding.understand(query)
    (tmp_path / "q" / "query_understanding.json").write_text('{"format_version": 1, "config": {}}')
    with pytest.raises(ValueError, match="query_understanding.json: not a readable"):
        QueryUnderstanding.load(tmp_path / "q")
    with pytest.raises(FileNotFoundError, match="missing"):
        QueryUnderstanding.load(tmp_path / "nowhere")


# -- the search path, the API and the CLI on the demo catalogue ------------------------------------------------
@pytest.fixture(scope="module")
def demo_index(tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("query") / "index"
    meta = build_index(None, "demo", index, query_understanding=True, training_queries=["scented candle"], progress=False)
    assert meta["query_understanding"] == "query" and meta["bm25_unit_normalised"] is True
    return index


def test_searcher_understand_contract_and_sense_diversification(demo_index):
    searcher = load_searcher(demo_index, mode="bm25")
    found = searcher.understand("jaguar")
    json.dumps(found)  # JSON-able, as the search page needs
    assert {"original", "corrected", "did_you_mean", "attributes", "senses"} <= set(found)
    assert found["ambiguous"] and {s["sense"] for s in found["senses"]} == {"toys", "automotive"}
    top = searcher.search("jaguar", k=4)
    categories = searcher._categories
    assert {categories[p] for p in top["product_id"]} == {"toys", "automotive"}  # both senses in the top 4
    plain = load_searcher(demo_index, mode="bm25", understand=False).search("jaguar", k=4)
    assert [categories[p] for p in plain["product_id"]].count("automotive") <= 1


def test_search_corrects_normalises_and_boosts(demo_index):
    searcher = load_searcher(demo_index, mode="bm25")
    results = searcher.search("scented candel 200 grams", k=3)
    info = results.attrs["query_understanding"]
    assert info["did_you_mean"] == "scented candle 200 grams" and info["search_text"] == "scented candle 200 g"
    assert info["attributes"]["size"] == ["200 g"] and "attribute_boost" in results.columns
    assert all("200g" in t for t in results["title"][:2]) and all("Scented Candle" in t for t in results["title"])
    raw = load_searcher(demo_index, mode="bm25", understand=False).search("scented candel", k=3)
    assert raw.attrs["query_understanding"]["did_you_mean"] is None


def test_cli_search_prints_did_you_mean_and_senses(demo_index, capsys):
    assert cli.main(["search", "scented candel", "--index", str(demo_index), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("did you mean: scented candle\nattributes: type=scented candle") and "Scented Candle" in out
    assert cli.main(["search", "jaguar", "--index", str(demo_index), "-k", "3"]) == 0
    assert "senses: toys" in capsys.readouterr().out
    assert cli.main(["search", "x" * 10_000, "--index", str(demo_index)]) == 2
    assert capsys.readouterr().err.strip().endswith("10000 characters, more than 2000")
    assert cli.main(["index", "--catalogue", "demo", "--output", "unused", "--training-queries", "q.txt"]) == 2
    assert "needs --query-understanding" in capsys.readouterr().err


def test_format_understanding_is_empty_without_findings():
    assert format_understanding(None) == ""
    assert format_understanding({"did_you_mean": None, "attributes": {"brand": None}, "senses": [], "notes": []}) == ""


# -- real Home Depot strings ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home_depot_understanding() -> tuple[QueryUnderstanding, pd.DataFrame]:
    from semmatch_tf.data import load_dataset, split_by_query

    pairs = load_dataset("home_depot", real_file("home-depot-search-relevance/train.csv"))
    train, _, _ = split_by_query(pairs, (0.8, 0.1, 0.1), seed=13)
    frame = pairs.frame.drop_duplicates("product_id")
    catalogue = pd.DataFrame({"product_id": frame["product_id"].astype(str), "title": frame["product"].astype(str)})
    return QueryUnderstanding.build(catalogue, train.frame.drop_duplicates("query_id")["query"].tolist()), catalogue


@pytest.mark.parametrize("query, expected", [
    ("portable air condtioners", "portable air conditioners"), ("tub floorong kit", "tub flooring kit"),
    ("12 x 12 porcelian floor and wall tile", "12 x 12 porcelain floor and wall tile"),
    ("modern bathroomvanity", "modern bathroom vanity"), ("celing fans hampton bay", "ceiling fans hampton bay"),
    ("schilage electronic deadbolts locks", "schlage electronic deadbolts locks"),
    ("microwave countertop ge peb2060smss", "microwave countertop ge peb2060smss"),
    ("dewalt xr", "dewalt xr"), ("behr deckover", "behr deckover"), ("furnace thermostats", "furnace thermostats"),
    # English words the titles never write, one likely edit from a catalogue word far more common in English too
    ("ceder mulch", "cedar mulch"), ("12 inch sower head", "12 inch shower head"),
    ("pray paint", "pray paint"),  # "pray" is about as common in English as "spray": kept
    ("boxs", "boxes"), ("driveing bits", "driving bits"),  # misspelt inflections are not inflections
    ("shutter screwws", "shutter screws"), ("martha stewart curtiins", "martha stewart curtains"),  # number kept
    ("4 ftawning frame", "4 ft awning frame"),  # a unit split off after a number needs no title to write it
    ("millimeter threaded rod", "millimeter threaded rod"),  # a unit word, not "multimeter"
    ("stnless washer hose", "stainless washer hose"), ("atanderd", "standard"),  # two edits
])
def test_home_depot_corrections(home_depot_understanding, query, expected):
    qu, _ = home_depot_understanding
    assert qu.analyse(query).corrected == expected


def test_home_depot_corrector_on_the_hand_labelled_sample(home_depot_understanding):
    qu, _ = home_depot_understanding
    changed = good_changes = misspelled = fixed = correct = correct_changed = 0
    for row in read_jsonl("spelling_home_depot.jsonl"):
        if row["intended"] is None:
            continue
        output, accepted = key(qu.analyse(row["query"]).corrected), {key(row["intended"]), *map(key, row["also_accepted"])}
        was_changed, is_misspelled = output != key(row["query"]), key(row["intended"]) != key(row["query"])
        changed += was_changed
        good_changes += was_changed and output in accepted
        misspelled += is_misspelled
        fixed += is_misspelled and output in accepted
        correct += not is_misspelled
        correct_changed += was_changed and not is_misspelled
    assert misspelled == 89 and correct == 165
    # Measured (benchmarks/run_query.py; rules and threshold chosen on the dev sample, 0.946 / 0.714 there):
    # precision 0.919 at recall 0.629, no correctly spelled query changed: the goal is 0.9 at 0.6.
    assert good_changes / changed >= 0.9 and fixed / misspelled >= 0.6 and correct_changed / correct < 0.02


def test_home_depot_titles_and_attribute_sample(home_depot_understanding):
    qu, catalogue = home_depot_understanding
    title = catalogue.loc[catalogue["product_id"] == "100001", "title"].item()
    assert title == "Simpson Strong-Tie 12-Gauge Angle"
    assert qu.title_attributes(title) | {} == {"brand": "Simpson Strong-Tie", "type": "angle", "colour": [],
                                               "material": [], "size": ["12 gauge"], "quantity": None}
    deck = catalogue.loc[catalogue["title"].str.startswith("BEHR Premium Textured DeckOver 1-gal. #SC-141"), "title"].iloc[0]
    assert qu.normalise_title(deck).startswith("behr premium textured deckover 1 gal #sc-141")
    assert qu.title_attributes(deck)["brand"] == "BEHR" and qu.title_attributes(deck)["size"] == ["1 gal"]
    rows = read_jsonl("attributes_home_depot.jsonl")
    assert sum(len(v) if isinstance(v, list) else 1 for r in rows for v in r["attributes"].values()) >= 200
    hits = predicted = gold = 0
    for row in rows:
        found = qu.extractor.extract(qu.analyse(row["query"]).corrected)
        for name in ("brand", "colour", "material", "size"):
            p = {key(str(v)) for v in (found[name] if isinstance(found[name], list) else [found[name]]) if v}
            g = {key(str(v)) for v in (row["attributes"].get(name) if isinstance(row["attributes"].get(name), list)
                                       else [row["attributes"].get(name)]) if v}
            hits, predicted, gold = hits + len(p & g), predicted + len(p), gold + len(g)
    assert hits / predicted >= 0.8 and hits / gold >= 0.6


@pytest.mark.slow
def test_home_depot_bm25_gains_from_query_understanding(home_depot_understanding):
    """The search path on the real catalogue: the same BM25 Searcher with and without understanding
    (~2 min: two BM25 indexes of 45,818 titles, 944 held-out queries each way)."""
    from semmatch_tf.data import load_dataset, split_by_query
    from semmatch_tf.evaluation.ranking import paired_bootstrap, per_query_retrieval
    from semmatch_tf.retrieval import BM25Index, Searcher

    qu, catalogue = home_depot_understanding
    _, _, test = split_by_query(load_dataset("home_depot", real_file("home-depot-search-relevance/train.csv")),
                                (0.8, 0.1, 0.1), seed=13)
    qrels: dict = {}
    for qid, pid, grade in zip(test.frame["query_id"], test.frame["product_id"], test.frame["grade"]):
        qrels.setdefault(str(qid), {})[str(pid)] = float(grade) - 1.0
    queries = test.frame.drop_duplicates("query_id")
    raw = Searcher(bm25=BM25Index.build(catalogue), mode="bm25")
    normalised = catalogue.assign(title=[qu.normalise_title(t) for t in catalogue["title"]], original_title=catalogue["title"])
    understood = Searcher(bm25=BM25Index.build(normalised), mode="bm25", understander=qu)
    tables = []
    for searcher in (understood, raw):
        results = searcher.search_many(queries["query"].tolist(), k=100)
        ranked = {str(q): r["product_id"].tolist() for q, r in zip(queries["query_id"], results)}
        tables.append(per_query_retrieval(ranked, qrels))
    gain = paired_bootstrap(*tables, "ndcg@10", samples=2000, seed=0)
    assert gain["low"] > 0 and 0.015 < gain["difference"] < 0.04  # run_query.py measured +0.026


def test_pair_preprocessor_normalises_units_in_the_graph_and_saves_the_choice(tmp_path):
    """``text.normalize_units``: the ways of writing one size give one id sequence inside the
    preprocessor (hence in tf.data and in the export), and the setting survives a save."""
    import keras
    import tensorflow as tf

    from semmatch_tf.text import WordPieceTokenizer, learn_vocabulary
    from semmatch_tf.text.preprocessor import PairPreprocessor
    from semmatch_tf.text.units import normalize_units

    titles = ['Everbilt 12 in. Zinc Shelf Bracket', 'Husky 25 ft. x 1 in. Tape Measure', 'DEWALT 20-Volt MAX Drill']
    vocabulary = learn_vocabulary([normalize_units(t) for t in titles], vocab_size=200, min_frequency=1)
    plain = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=8, product_length=8)
    units = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=8, product_length=8, normalize_units=True)
    variants = ['12" shelf bracket', "12 in. shelf bracket", "12-inch shelf bracket", "12 inches shelf bracket"]
    batch = {"query": tf.constant(variants), "product": tf.constant(titles[:1] * 4)}
    ids = units(batch)["query"].numpy()
    assert (ids == ids[0]).all() and ids[0].tolist() == units({"query": tf.constant(["12 in shelf bracket"]),
                                                               "product": tf.constant([""])})["query"].numpy()[0].tolist()
    assert len({tuple(row) for row in plain(batch)["query"].numpy()}) > 1  # without it they differ
    from semmatch_tf.runs import preprocessor_model

    preprocessor_model(units).save(tmp_path / "preprocessor.keras")
    wrapper = keras.saving.load_model(tmp_path / "preprocessor.keras")
    restored = next(layer for layer in wrapper.layers if isinstance(layer, PairPreprocessor))
    assert restored.normalize_units and restored.facts()["normalize_units"]
    assert (restored(batch)["query"].numpy() == ids).all()


def test_normalize_units_is_refused_for_families_that_do_not_apply_it():
    import pytest

    from semmatch_tf.training.config import RunConfig

    assert RunConfig.from_dict({"text": {"normalize_units": True}}).text.normalize_units
    with pytest.raises(ValueError, match="text.normalize_units: is implemented for the bilstm family only"):
        RunConfig.from_dict({"text": {"normalize_units": True}, "model": {"family": "bilstm_bi_encoder"}})
