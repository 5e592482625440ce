"""TensorBoard as a user opens it: a real ``tensorboard`` server on 127.0.0.1 over a trained run's
``logs/`` (the README's ``--logdir``), asked through its own HTTP API what the HParams and
projector dashboards will show, and looked at in headless Chromium (screenshots under pytest's tmp
dir, or under $SEMMATCH_SCREENSHOTS when set).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from explain_helpers import demo_bilstm_run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """``(base url, run directory)`` of a TensorBoard serving a demo BiLSTM run's logs."""
    run_dir = demo_bilstm_run(tmp_path_factory)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir / "logs"),
                               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/data/runs", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"tensorboard did not start on {url}")
                time.sleep(1)
        yield url, run_dir
    finally:
        server.terminate()
        server.wait(timeout=30)


def get_json(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                              "X-TensorBoard-Feature-Flags": "{}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_for(read, timeout: float = 60.0):
    """The first truthy value of ``read()`` (TensorBoard loads event files in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_projector_lists_the_scored_pairs_labelled_with_their_text(board):
    url, run_dir = board
    runs = wait_for(lambda: get_json(url + "/data/plugin/projector/runs"))
    assert "projector" in runs, f"the projector must be found from logs/ itself: {runs}"
    info = get_json(url + "/data/plugin/projector/info?run=projector")
    pairs = next(e for e in info["embeddings"] if e["tensorName"] == "pairs")
    report = json.loads((run_dir / "report.json").read_text())
    assert pairs["tensorShape"][0] == min(1000, report["dataset"]["pairs"])
    with urllib.request.urlopen(url + "/data/plugin/projector/metadata?run=projector&name=pairs", timeout=60) as r:
        lines = r.read().decode("utf-8").splitlines()
    assert lines[0].split("\t") == ["pair", "query", "product", "grade", "predicted", "language"]
    assert " → " in lines[1] and len(lines) == pairs["tensorShape"][0] + 1


def test_hparams_show_the_best_epoch_and_the_test_metrics(board):
    url, run_dir = board
    experiment = wait_for(lambda: get_json(url + "/data/plugin/hparams/experiment", {"experimentName": ""}))
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"model.family", "training.learning_rate", "text.vocab_size"} <= hparams
    assert {"best/epoch", "best/val_loss", "test/ndcg@10", "test/accuracy"} <= metrics, metrics
    assert not any(tag.startswith("hparams/") for tag in metrics), "no duplicated per-epoch scalars"


def test_the_dashboards_render_in_a_browser(board, tmp_path_factory):
    from test_search_page_browser import chromium_paths

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = binary
    chosen = os.environ.get("SEMMATCH_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("tensorboard_screens")
    folder.mkdir(parents=True, exist_ok=True)
    url, _ = board
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    try:
        for dashboard in ("timeseries", "hparams", "projector"):
            driver.get(f"{url}/#{dashboard}")
            time.sleep(12)  # the Polymer/Angular dashboards fetch and draw asynchronously
            path = folder / f"tensorboard_{dashboard}.png"
            driver.save_screenshot(str(path))
            assert path.stat().st_size > 20_000, f"{dashboard}: a blank page"
        page = driver.page_source
        assert "No checkpoint was found" not in page and "not active" not in page.lower()
    finally:
        driver.quit()
