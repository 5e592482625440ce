"""The README's shell blocks: every ``semmatch-tf`` line parses, and the runnable blocks run verbatim.

Two kinds of check, because the README has two kinds of command:

* every ``semmatch-tf`` command line in every ```bash block is parsed by the CLI's own argument
  parser, so a renamed command, a dropped flag or a misspelled choice in the README fails here;
* the blocks that need only this machine (the "Command line" block, the query-understanding block,
  the configs block) are run as written, in a fresh ``bash`` in a temporary directory that holds
  the checkout's ``configs/`` — as a reader in the checkout would run them. Docker, curl against a
  server, other hosts and cluster runners are not run (they are listed in ``NOT_RUN_HERE``).

The "Command line" block trains ``configs/home_depot_bilstm.yaml`` unchanged. By default it reads a
real slice of Home Depot (the first 2,000 judged pairs, through ``$SEMMATCH_DATA_DIR``, as the
config reads it) so it takes about a minute; ``pytest -m slow`` runs it on the whole file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, real_file
from semmatch_tf.cli.app import build_parser

#: The README's bash blocks run here as written.
RUN_HERE = {"Command line", "Query understanding: spelling, units, attributes, ambiguous queries", "Configuration"}

#: The README's bash blocks that are not run here, by the first line's start, and why.
NOT_RUN_HERE = {
    "bash scripts/demo.sh": "the whole set-up and demo (tests/test_demo.py and CI run its parts)",
    "docker run": "TF Serving in Docker (no Docker here); the exports are reloaded by check-export",
    "curl": "asks a running server (tests/test_serve.py asks the search page's API)",
    "# machine i of 2": "two hosts (tests/test_multi_worker.py runs two workers on 127.0.0.1)",
}


def bash_blocks() -> dict[str, str]:
    """Each ```bash block of the README, keyed by the heading it sits under (numbered if repeated)."""
    blocks: dict[str, str] = {}
    heading = "top"
    for part in re.split(r"(^#{2,3} .*$)", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.M):
        if re.match(r"^#{2,3} ", part):
            heading = part.lstrip("#").strip()
            continue
        for number, code in enumerate(re.findall(r"```bash\n(.*?)```", part, re.S)):
            blocks[heading if number == 0 else f"{heading} #{number + 1}"] = code
    return blocks


def block(heading: str) -> str:
    return bash_blocks()[heading]


def shell_commands(code: str) -> list[list[str]]:
    """A block's simple commands as word lists: continuations joined, a quote may span lines,
    comments dropped, and pipelines, ``&&``, ``||`` and ``;`` split."""
    commands, pending = [], ""
    for line in code.replace("\\\n", " ").splitlines():
        pending += line + "\n"
        lexer = shlex.shlex(pending, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # a quote still open: the command goes on on the next line
            continue
        pending, current = "", []
        for word in words:
            if word in {"|", "||", "&&", ";", "&"}:
                commands.append(current)
                current = []
            else:
                current.append(word)
        commands.append(current)
    return [words for words in commands if words]


def command_lines(code: str) -> list[list[str]]:
    """The ``semmatch-tf`` invocations of a block as argument lists (``... --runner`` placeholder
    lines are not commands)."""
    return [words[1:] for words in shell_commands(code) if Path(words[0]).name == "semmatch-tf"]


def test_readme_has_the_blocks_this_file_checks():
    blocks = bash_blocks()
    assert RUN_HERE <= set(blocks) and set(FLOWS_TESTED_ELSEWHERE) <= set(blocks)
    parsed = sum(len(command_lines(code)) for code in blocks.values())
    assert parsed >= 30, f"only {parsed} semmatch-tf commands found in the README"


@pytest.mark.parametrize("heading", sorted(bash_blocks()))
def test_every_readme_command_parses(heading):
    """Each semmatch-tf line is accepted by the real parser (argparse exits 2 on an unknown flag)."""
    parser = build_parser()
    for argv in command_lines(block(heading)):
        try:
            args = parser.parse_args(argv)
        except SystemExit as error:
            pytest.fail(f"README block {heading!r}: `semmatch-tf {shlex.join(argv)}` is refused by the "
                        f"CLI's parser (exit {error.code})")
        assert callable(args.handler)


#: The blocks with semmatch-tf commands that this file parses but does not run, and the tests that
#: run their flow (on tiny configs or real slices; the full-size trainings are benchmarks).
FLOWS_TESTED_ELSEWHERE = {
    "BERT matchers (keras-hub, offline)": ["test_bert.py::test_lora_trains_adapters_only_and_merges_exactly",
                                           "test_bert.py::test_mlm_pretraining_learns_and_writes_a_preset",
                                           "test_bert.py::test_preset_round_trip_is_exact"],
    "Multilingual: multilingual-e5-small, offline": ["test_multilingual.py::test_weights_command_and_unknown_names",
                                                     "test_multilingual.py::test_readme_cross_lingual_search_flow"],
    "Search a catalogue": ["test_tasks.py::test_bert_bi_encoder_run_indexes_and_searches_from_the_cli"],
    "See why: the search page and token attributions":
        ["test_serve.py::test_cli_serve_runs_a_real_server_and_refuses_bad_arguments"],
    "See why: the search page and token attributions #3": ["test_explain.py::test_cli_explain_json_colour_and_bad_input"],
    "Serving with TensorFlow Serving": ["test_export.py::test_second_export_gets_next_version_regression_head",
                                        "test_export.py::test_force_replaces_a_version"],
    "When one machine is not enough":
        ["test_multi_worker.py::test_two_bilstm_workers_hold_identical_weights_and_only_the_chief_writes"],
    "When one machine is not enough #2": ["test_beam.py::test_cli_embed_batch_then_search_and_bad_input_is_one_line"],
    "Robust training: adversarial steps, augmentation, ensembles":
        ["test_distill.py::test_readme_flow_teacher_label_then_train_on_its_pairs"],
    "Benchmarks": ["test_benchmarks_public.py::test_each_benchmark_runs_only_under_a_main_guard"],
}


def test_every_block_is_run_here_or_its_flow_is_tested_elsewhere():
    """A README block that no test runs, and that no test's flow covers, would be an untested promise."""
    for heading, code in bash_blocks().items():
        if heading in RUN_HERE:
            continue
        if not command_lines(code):
            first = code.strip().splitlines()[0]
            assert any(first.startswith(start) for start in NOT_RUN_HERE), f"{heading!r}: {first!r}"
            continue
        assert heading in FLOWS_TESTED_ELSEWHERE, f"README block {heading!r} is neither run nor covered"
        for test in FLOWS_TESTED_ELSEWHERE[heading]:
            module, name = test.split("::")
            assert f"\ndef {name}(" in (REPO / "tests" / module).read_text(encoding="utf-8"), test


def run_readme_block(code: str, cwd: Path, env: dict, timeout: int) -> subprocess.CompletedProcess:
    """Run a block verbatim in a fresh ``bash -e -o pipefail`` with this environment's
    ``semmatch-tf`` first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env, "PATH": path})


def a_checkout(tmp_path: Path) -> Path:
    """A directory like the checkout for these commands: the README runs them beside ``configs/``
    and ``.venv/`` (this test's own environment stands in for it)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


def home_depot_slice(tmp_path: Path, rows: int | None) -> Path:
    """A ``$SEMMATCH_DATA_DIR`` whose Home Depot ``train.csv`` is the real file's first ``rows`` pairs."""
    source = real_file("home-depot-search-relevance/train.csv")
    target = tmp_path / "data" / "home-depot-search-relevance" / "train.csv"
    target.parent.mkdir(parents=True)
    with source.open("rb") as lines, target.open("wb") as out:
        for number, line in enumerate(lines):
            if rows is not None and number > rows:
                break
            out.write(line)
    return target.parents[1]


def users_own_files(cwd: Path, train_csv: Path) -> None:
    """The two files the block says are the user's: more judgements, and pairs to score."""
    frame = pd.read_csv(train_csv, encoding="latin-1").tail(300)
    frame.to_csv(cwd / "other_judgements.csv", index=False)
    (cwd / "pairs.tsv").write_text("".join(f"{q}\t{p}\n" for q, p in zip(frame.search_term, frame.product_title)),
                                   encoding="utf-8")


def check_command_line_block(cwd: Path, done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert (cwd / "runs" / "hd" / "model.keras").is_file()
    scored = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{\"query\"")]
    assert len(scored) == 1 and scored[0]["query"] == "angle bracket"
    assert 1.0 <= scored[0]["score"] <= 3.0  # a Home Depot grade
    assert len(re.findall(r"\brmse\b", done.stdout)) >= 2  # two evaluate tables
    table = pd.read_parquet(cwd / "scores.parquet")
    assert len(table) == 300 and table["score"].between(1.0, 3.0).all()
    assert (cwd / "serving" / "hd" / "1" / "saved_model.pb").is_file()
    assert '"ok": true' in done.stdout and '"problems": []' in done.stdout  # check-export's verdict


def test_command_line_block_runs_verbatim_on_a_real_slice(tmp_path):
    cwd = a_checkout(tmp_path / "checkout")
    data = home_depot_slice(tmp_path, rows=2000)
    users_own_files(cwd, data / "home-depot-search-relevance" / "train.csv")
    done = run_readme_block(block("Command line"), cwd, {"SEMMATCH_DATA_DIR": str(data)}, timeout=900)
    check_command_line_block(cwd, done)


@pytest.mark.slow
def test_command_line_block_runs_verbatim_on_all_of_home_depot(tmp_path):
    cwd = a_checkout(tmp_path / "checkout")
    data = home_depot_slice(tmp_path, rows=None)
    users_own_files(cwd, data / "home-depot-search-relevance" / "train.csv")
    done = run_readme_block(block("Command line"), cwd, {"SEMMATCH_DATA_DIR": str(data)}, timeout=3600)
    check_command_line_block(cwd, done)


def test_query_understanding_block_runs_verbatim(tmp_path):
    done = run_readme_block(block("Query understanding: spelling, units, attributes, ambiguous queries"),
                            a_checkout(tmp_path), {}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "did you mean" in done.stdout.lower() and "candle" in done.stdout.lower()
    assert "senses" in done.stdout.lower()


def test_configuration_block_runs_verbatim(tmp_path):
    done = run_readme_block(block("Configuration"), a_checkout(tmp_path), {}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "home_depot_bilstm" in done.stdout
    copied = tmp_path / "my_configs" / "lcqmc_e5.yaml"
    assert copied.read_text(encoding="utf-8") == (REPO / "configs" / "lcqmc_e5.yaml").read_text(encoding="utf-8")
