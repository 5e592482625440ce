"""The search page in a real browser: headless Chromium (Debian's chromium + chromium-driver,
installed by scripts/setup.sh) driven by Selenium against a real server on 127.0.0.1.

For each demo language the test types a query, waits for the results, and checks that stage
scores, ranks, grades, nDCG@10 and attribution highlights are on the page; it writes a screenshot
per query under pytest's tmp dir, or under $SEMMATCH_SCREENSHOTS when set (to look at them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from explain_helpers import bm25_demo_index, demo_bilstm_run

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: One judged query per demo language, with a word that must be highlighted in the top title.
QUERIES = [("en", "nike hoodie"), ("zh", "苹果手机壳"), ("ja", "x3 フロアマット"), ("es", "taladro 18v con bateria")]


def chromium_paths() -> tuple[str, str]:
    """(browser, driver) executables, or skip with the reason when they are not installed."""
    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("headless Chromium is not installed: scripts/setup.sh installs it as root with apt-get "
                    "(apt-get install -y chromium chromium-driver); this machine has "
                    f"browser={browser}, driver={driver}")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=en-US"):
        options.add_argument(argument)
    options.binary_location = binary
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from semmatch_tf.serve import BackgroundServer, load_service

    service = load_service(bm25_demo_index(tmp_path_factory), rerank_run_dir=demo_bilstm_run(tmp_path_factory),
                           stage_weight=0.3)
    with BackgroundServer(service) as running:
        yield running


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    chosen = os.environ.get("SEMMATCH_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("language, query", QUERIES)
def test_typing_a_query_shows_results_stage_scores_and_highlights(browser, server, screenshots, language, query):
    browser.get(server.url + "/")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button.example"))
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.result")) == 10)
    # the first five titles get their highlights from /explain, one request each
    WebDriverWait(browser, 180).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#title-5 .hl"))
    browser.save_screenshot(str(screenshots / f"search_{language}.png"))

    rows = browser.find_elements(By.CSS_SELECTOR, "tr.result")
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#results-head th")]
    assert headers == ["#", "product", "grade", "bm25", "rerank", "final"]
    first = rows[0]
    assert first.find_element(By.CSS_SELECTOR, ".lang").text == language
    for stage in ("bm25", "rerank", "final"):
        cell = first.find_element(By.CSS_SELECTOR, f"td.stage-{stage}")
        score, rank = cell.text.split("\n")
        assert float(score) == float(score) and rank.startswith("#")
    assert first.find_element(By.CSS_SELECTOR, "td.stage-final .rank").text == "#1"
    assert first.find_elements(By.CSS_SELECTOR, ".grade"), "a judged query shows the top result's grade"
    assert browser.find_element(By.ID, "ndcg").text.startswith("nDCG@10 ")
    # highlights: coloured words whose attributions come from the page's /explain calls
    words = first.find_elements(By.CSS_SELECTOR, ".title-text .hl")
    assert words and any("hl-pos" in w.get_attribute("class") for w in words)
    values = [float(w.get_attribute("data-attribution")) for w in words]
    strongest = words[max(range(len(values)), key=lambda i: values[i])]
    assert strongest.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
    query_words = browser.find_elements(By.CSS_SELECTOR, "#query-highlight .hl")
    assert "".join(w.text for w in query_words).replace(" ", "") == query.replace(" ", "")
    assert (screenshots / f"search_{language}.png").stat().st_size > 10_000


def test_bad_query_shows_one_line_error(browser, server):
    browser.get(server.url + "/?q=" + "x" * 2100)
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "error").text)
    assert "more than 2000" in browser.find_element(By.ID, "error").text


def test_spelling_suggestion_and_attributes_of_the_query_understanding(browser, screenshots, tmp_path_factory):
    from explain_helpers import understood_demo_index
    from semmatch_tf.serve import BackgroundServer, load_service

    service = load_service(understood_demo_index(tmp_path_factory), rerank_run_dir=demo_bilstm_run(tmp_path_factory))
    with BackgroundServer(service) as server:
        browser.get(server.url + "/?q=nikee+hoodie")
        WebDriverWait(browser, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#title-3 .hl"))
        browser.save_screenshot(str(screenshots / "understanding.png"))
        assert browser.find_element(By.ID, "did-you-mean").text == "nike hoodie"
        assert "brand: Nike" in [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".attribute")]
        # the highlights explain what the re-ranker scored: the corrected query
        words = [w.text for w in browser.find_elements(By.CSS_SELECTOR, "#query-highlight .hl")]
        assert words == ["nike", "hoodie"]
        browser.find_element(By.ID, "did-you-mean").click()
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "q").get_attribute("value") == "nike hoodie")


@pytest.mark.slow
def test_the_readme_demo_page_in_every_language(browser, screenshots, tmp_path_factory):
    """What the README's command gives: the demo index (multilingual-e5-small + BM25, hybrid) and the
    demo's BiLSTM re-ranker, served by `semmatch-tf serve` as a real process; the demo's own query
    in each language finds products of that language with stage scores and highlights."""
    import subprocess
    import sys
    import time
    import urllib.request

    from conftest import REPO
    from semmatch_tf.retrieval.search import DEMO_QUERIES, demo_index
    from semmatch_tf.serve.server import free_port

    index_dir = tmp_path_factory.mktemp("demo") / "index"
    meta, note = demo_index(index_dir)
    if note:
        pytest.skip(note)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "semmatch_tf.cli", "serve", "--index", str(index_dir),
                                "--rerank", str(demo_bilstm_run(tmp_path_factory)), "--stage-weight", "0.3",
                                "--port", str(port)], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=5)
                break
            except OSError:
                time.sleep(1)
        for query, language in zip(DEMO_QUERIES, ("zh", "es", "ja", "en")):
            browser.get(f"http://127.0.0.1:{port}/")
            WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button.example"))
            button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button.example") if b.text == query)
            button.click()
            WebDriverWait(browser, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#title-5 .hl"))
            browser.save_screenshot(str(screenshots / f"demo_{language}.png"))
            headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#results-head th")]
            assert headers == ["#", "product", "grade", "bm25", "dense", "fused", "rerank", "final"]
            tags = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "tr.result .lang")]
            assert tags[0] == language and tags.count(language) >= 3
            assert browser.find_elements(By.CSS_SELECTOR, "#title-1 .hl-pos")
    finally:
        process.terminate()
        process.wait(timeout=30)
