"""The three places that pin dependencies agree, and the CLI entry point is wired."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def requirements() -> dict[str, str]:
    return pins((REPO / "requirements.txt").read_text().splitlines())


def test_requirements_are_exact_pins_with_the_core_stack():
    required = requirements()
    lines = [l for l in (REPO / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert len(required) == len(lines), "every requirement is an exact == pin"
    for name, version in {"tensorflow": "2.21.0", "tensorflow-text": "2.21.1", "keras": "3.15.1",
                          "keras-hub": "0.32.0"}.items():
        assert required[name] == version
    assert "tf-keras" not in required


def test_environment_yml_pins_equal_requirements():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == requirements()
    assert "python=3.11" in environment["dependencies"]


def test_pyproject_declares_compatible_ranges_that_the_pins_satisfy():
    """The package installs beside other stacks (ranges); the exact pins live in requirements.txt."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {Requirement(line).name.lower(): Requirement(line).specifier for line in project["dependencies"]}
    assert set(declared) == set(requirements())
    for name, version in requirements().items():
        assert declared[name] and "==" not in str(declared[name]), f"{name}: a range, not a pin"
        assert version in declared[name], f"{name} {version} outside {declared[name]}"
    assert project["scripts"]["semmatch-tf"] == "semmatch_tf.cli:main"
    assert project["requires-python"] == ">=3.10"


def test_cli_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "semmatch_tf.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    commands = ("train", "pretrain", "evaluate", "predict", "export", "check-export", "index", "search", "demo",
                "weights", "explain", "serve", "score-batch", "embed-batch", "configs", "embed", "ensemble")
    missing = [command for command in commands if f"    {command}" not in out]
    assert not missing, out


def test_cli_version():
    from semmatch_tf import __version__

    out = subprocess.run([sys.executable, "-m", "semmatch_tf.cli", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"semmatch-tf {__version__}"
