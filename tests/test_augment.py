"""Augmentation keeps labels by construction: every copy carries its pair's label, grade and ids,
keeps the product's words and the query words the product shares; each edit does what it says."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from conftest import real_file
from semmatch_tf.augment import (CooccurrenceNeighbours, augment_pairs, drop_words, keyboard_typo, reorder_fields,
                                 swap_words)
from semmatch_tf.augment.pairs import label_columns_equal
from semmatch_tf.training.config import AugmentationConfig, ConfigError, RunConfig

EVERYTHING = AugmentationConfig(copies=2, swap=0.3, drop=0.3, typo=0.3, neighbour=0.3, reorder=0.5)


def _words(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.lower()))


def _check_preserved(original, augmented) -> float:
    """Assert the invariants; returns the share of copies whose query changed."""
    assert len(augmented) == len(original) * 3
    assert label_columns_equal(original, augmented)
    n, changed = len(original), 0
    base = original.frame
    for copy in (1, 2):
        part = augmented.frame.iloc[copy * n:(copy + 1) * n].reset_index(drop=True)
        for query, product, new_query, new_product in zip(base["query"], base["product"], part["query"], part["product"]):
            assert _words(new_product) == _words(product)  # fields reordered at most
            shared = set(query.lower().split()) & set(product.lower().split())
            assert shared <= set(new_query.lower().split())  # the match evidence is kept
            assert new_query.strip()
            changed += new_query != query
    return changed / (2 * n)


def test_augmented_demo_pairs_keep_labels_grades_ids_and_the_shared_words():
    from semmatch_tf.data.demo import load_demo

    demo = load_demo().head(600)
    augmented = augment_pairs(demo, EVERYTHING, seed=4)
    assert _check_preserved(demo, augmented) > 0.3  # and it does change a good share of queries
    assert augmented.frame.equals(augment_pairs(demo, EVERYTHING, seed=4).frame)  # deterministic in the seed
    assert augment_pairs(demo, AugmentationConfig(copies=0)) is demo


def test_augmented_home_depot_pairs_keep_their_labels():
    from semmatch_tf.data.loaders import load_dataset

    pairs = load_dataset("home_depot", real_file("home-depot-search-relevance/train.csv"), limit=800)
    augmented = augment_pairs(pairs, EVERYTHING, seed=1)
    assert _check_preserved(pairs, augmented) > 0.3
    assert (augmented.frame["grade"].to_numpy()[1600:] == pairs.frame["grade"].to_numpy()).all()


def test_each_edit_does_what_it_says():
    rng = random.Random(0)
    for _ in range(50):
        text = "cordless hammer drill kit 18v"
        assert sorted(swap_words(text, 0.5, rng).split()) == sorted(text.split())
        dropped = drop_words(text, 0.9, rng, keep=frozenset({"drill"}))
        assert "drill" in dropped.split() and set(dropped.split()) <= set(text.split())
        typo = keyboard_typo("hammer", 1.0, rng)
        assert typo != "hammer" and typo[0] == "h" and abs(len(typo) - 6) <= 1
        assert _words(reorder_fields("Drill, 18V, Cordless", 1.0, rng)) == _words("Drill, 18V, Cordless")
    assert drop_words("drill", 1.0, rng) == "drill"  # never empties a query
    titles = ["gas grill cover", "grill cover black", "gas grill", "drill bit set", "cordless drill"] * 3
    neighbours = CooccurrenceNeighbours.fit(titles, min_count=2)
    assert neighbours.of("bit") == ["set", "drill"] and neighbours.of("unknown") == []


def test_the_config_switch_is_validated():
    assert RunConfig.from_dict({"training": {"augmentation": {"copies": 2, "neighbour": 0.2}}}).training.augmentation.copies == 2
    with pytest.raises(ConfigError, match="training.augmentation.swap"):
        RunConfig.from_dict({"training": {"augmentation": {"copies": 1, "swap": 1.5}}})
    with pytest.raises(ConfigError, match="cross-encoders only"):
        RunConfig.from_dict({"model": {"family": "bilstm_bi_encoder"}, "training": {"augmentation": {"copies": 1}}})
