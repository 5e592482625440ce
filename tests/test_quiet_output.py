"""What a person reads: every command's default stderr holds no TensorFlow C++ log lines, no
library warnings or debug lines, only what the command itself says (a progress bar, "written to").

Each command runs as users run it, in its own process, with ``TF_CPP_MIN_LOG_LEVEL`` unset (the
CLI chooses), so TensorFlow's start-up and first-device lines would show if they were not silenced.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

RUNS = REPO / "tests" / "fixtures" / "runs"
CROSS, BI, PAIRS = RUNS / "bilstm_v0_1", RUNS / "bilstm_bi_encoder_v0_1", RUNS / "pairs.tsv"
# absl / TensorFlow C++ lines ("E0000 00:00:17962766 ... cuda_platform.cc:52] ..."), Python warnings,
# library loggers, Keras' advice and tf.function's retracing warning.
NOISE = re.compile(r"^[IWEF]\d{4} |Warning:|WARNING|DEBUG|retracing|oneDNN|cuInit|absl::", re.MULTILINE)


def semmatch(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *map(str, args)], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def assert_quiet(done: subprocess.CompletedProcess, allowed: str = "") -> None:
    noise = [line for line in done.stderr.splitlines() if NOISE.search(line)]
    assert not noise, "\n".join(noise)
    rest = [line for line in done.stderr.splitlines() if line.strip() and not re.search(allowed or "$^", line)]
    assert not rest, "unexpected stderr:\n" + "\n".join(rest)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quiet")


def test_scoring_commands_print_only_their_results(work):
    done = semmatch("predict", "--model", CROSS, "--input", PAIRS, cwd=work)
    assert_quiet(done)
    assert len(done.stdout.splitlines()) == len(PAIRS.read_text(encoding="utf-8").splitlines())
    assert_quiet(semmatch("predict", "--model", BI, "--input", PAIRS, "--output", "scores.csv", cwd=work),
                 allowed=r"^\d+ predictions written to scores\.csv$")
    done = semmatch("embed", "--model", BI, cwd=work, stdin="apple charger\n苹果手机壳\n")
    assert_quiet(done)
    assert len(done.stdout.splitlines()) == 2
    done = semmatch("explain", "--model", CROSS, "apple charger", "Apple USB-C 20W Power Adapter", cwd=work)
    assert_quiet(done)
    assert "apple" in done.stdout


def test_evaluate_export_and_check_export_are_quiet(work):
    done = semmatch("evaluate", "--model", CROSS, "--dataset", "demo", cwd=work)
    assert_quiet(done)
    assert "accuracy" in done.stdout
    assert_quiet(semmatch("export", "--model", CROSS, "--output", "serving", cwd=work))
    version = next((work / "serving").glob("*/[0-9]*"))
    done = semmatch("check-export", version, cwd=work)
    assert_quiet(done)


def test_index_and_search_are_quiet(work):
    assert_quiet(semmatch("index", "--model", BI, "--catalogue", "demo", "--output", "index", "--no-progress", cwd=work))
    done = semmatch("search", "--index", "index", "apple charger", cwd=work)
    assert_quiet(done)
    assert done.stdout.strip()


def test_training_says_only_what_it_does(work):
    done = semmatch("train", "--config", REPO / "semmatch_tf" / "configs" / "demo_bilstm.yaml", "--output", "run",
                    "--set", "training.epochs=1", "--set", "data.limit=400", cwd=work)
    assert_quiet(done)
    assert "run written to run" in done.stdout
