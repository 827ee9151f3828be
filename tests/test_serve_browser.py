"""The playground page in Debian's Chromium (Playwright): generate for an image, a table and a text
model, pick a record, variations, interpolation, refine, downloads, readable errors, the API key.

Each view is screenshotted into the test's temporary folder. Skips, saying why, without Chromium.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from genlab.serve import ModelRegistry, ServeSettings
from serve_support import ThreadServer, build_runs

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (make test installs it where it may: `make browser`)",
                allow_module_level=True)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
KEY = "page-key"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    runs = build_runs(tmp_path_factory.mktemp("browser-runs"))
    return ModelRegistry.from_runs([runs[name] for name in ("digits_vae", "table", "code", "ring")])


@pytest.fixture(scope="module")
def server(registry):
    live = ThreadServer(registry, ServeSettings(max_tokens=64, max_n=32)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.wait_for_selector("#model option", state="attached")
    yield page
    context.close()
    assert errors == []   # no uncaught script error in any view


def generate(page, model: str, n: int, choose: dict[str, str] = {}, fill: dict[str, str] = {}) -> None:
    page.select_option("#model", model)
    page.fill("#n", str(n))
    for selector, value in choose.items():
        page.select_option(selector, value)
    for selector, value in fill.items():
        page.fill(selector, value)
    page.click("#generate")
    page.wait_for_function("() => !document.querySelector('#generate').disabled")


def decoded_images(page, selector: str) -> list[list]:
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")


def test_images_generate_pick_variations_interpolate_download(page, tmp_path):
    generate(page, "digits_vae", 4, choose={"#class": "3"})
    assert decoded_images(page, "#results img") == [[True, 8, 8]] * 4
    page.screenshot(path=tmp_path / "images.png", full_page=True)
    shown = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => i.src)")
    page.click("#results figure >> nth=0")
    assert "seed 0" in page.text_content("#subject-info") and "condition \"3\"" in page.text_content("#subject-info")
    page.fill("#seed", "5")
    page.select_option("#class", "")
    page.click("#again")     # the subject's own request: seed 0, class 3, whatever the controls say now
    page.wait_for_function("() => !document.querySelector('#again').disabled")
    assert page.eval_on_selector_all("#results img", "imgs => imgs.map(i => i.src)") == shown
    page.click("#results figure >> nth=0")
    page.click("#results figure >> nth=2", modifiers=["Shift"])
    page.click("#interpolate")
    page.wait_for_selector("#path-view img")
    first = page.get_attribute("#path-view img", "src")
    page.fill("#path-slider", "8")    # scrub to the far end of the path
    page.wait_for_function("() => document.querySelector('#path-step').textContent.startsWith('8 of 8')")
    assert page.get_attribute("#path-view img", "src") != first
    page.screenshot(path=tmp_path / "interpolate.png", full_page=True)
    with page.expect_download() as download:
        page.click("#download-png")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert Image.open(saved).size == (8, 8) and saved.name.startswith("digits_vae-seed0-0")
    page.fill("#strength", "0.9")
    page.dispatch_event("#strength", "input")
    page.click("#variations")
    page.wait_for_function("() => document.querySelectorAll('#results img').length === 4 && "
                           "document.querySelector('#results figcaption').textContent")
    assert decoded_images(page, "#results img") == [[True, 8, 8]] * 4
    assert page.text_content("#error") == ""
    page.screenshot(path=tmp_path / "variations.png", full_page=True)


def test_table_rows_lock_refine_and_csv(page, tmp_path):
    generate(page, "table", 6)
    assert page.eval_on_selector_all("#results th", "ths => ths.map(t => t.textContent)") == ["x", "y", "colour", "label"]
    assert page.locator("#results tbody tr").count() == 6
    page.click("#results tbody tr >> nth=1")
    subject = json.loads(page.text_content("#subject-view code"))
    page.check(".lock[value=colour]")
    page.check(".lock[value=label]")
    page.click("#refine")
    page.wait_for_function("() => !document.querySelector('#refine').disabled")
    colours = page.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => [r.children[2].textContent, "
                                                              "r.children[3].textContent])")
    assert colours == [[subject["colour"], subject["label"]]] * 6
    page.screenshot(path=tmp_path / "table.png", full_page=True)
    with page.expect_download() as download:
        page.click("#download-csv")
    saved = tmp_path / "rows.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "x,y,colour,label" and len(lines) == 7


def test_text_streams_into_cards_and_jsonl_keeps_seeds(page, tmp_path):
    generate(page, "code", 2, fill={"#opt-prompt": "def ", "#opt-max_new_tokens": "24"})
    texts = page.eval_on_selector_all("#results pre", "pres => pres.map(p => p.textContent)")
    assert len(texts) == 2 and all(text.startswith("def ") and len(text) > 4 for text in texts)
    grown = page.evaluate("window.genlabStreamLog")
    # the cards grew piece by piece as events arrived: two runs of increasing lengths, one per card
    assert len(grown) >= 8 and sum(b < a for a, b in zip(grown, grown[1:])) == 1
    page.screenshot(path=tmp_path / "text.png", full_page=True)
    with page.expect_download() as download:
        page.click("#download-jsonl")
    saved = tmp_path / "texts.jsonl"
    download.value.save_as(saved)
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [row["record"] for row in rows] == texts and {row["seed"] for row in rows} == {0}
    page.click("#results .card >> nth=0")
    page.fill("#prefix", "def f3")
    page.click("#refine")
    page.wait_for_function("() => !document.querySelector('#refine').disabled")
    assert all(t.startswith("def f3") for t in page.eval_on_selector_all("#results pre", "p => p.map(x => x.textContent)"))


def test_points_scatter_and_csv(page, tmp_path):
    generate(page, "ring", 30)
    assert page.locator("#results svg circle").count() == 30
    page.click("#results svg circle >> nth=-1")   # the last drawn lies on top of any it overlaps
    assert len(json.loads(page.text_content("#subject-view code"))) == 2   # one point: two coordinates
    page.screenshot(path=tmp_path / "points.png", full_page=True)
    with page.expect_download() as download:
        page.click("#download-csv")
    saved = tmp_path / "points.csv"
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[0] == "x0,x1" and len(saved.read_text().splitlines()) == 31


def test_errors_are_readable_on_the_page(page, tmp_path):
    page.select_option("#model", "code")
    page.fill("#n", "500")   # over the server's --max-n
    page.click("#generate")
    page.wait_for_selector("#error.shown")
    assert "limit of 32" in page.text_content("#error")
    page.screenshot(path=tmp_path / "error.png", full_page=True)


def test_page_asks_for_the_key_and_sends_it(browser, registry, tmp_path):
    locked = ThreadServer(registry, ServeSettings(api_key=KEY)).start()
    try:
        page = browser.new_page()
        page.goto(locked.url)
        page.wait_for_selector("#error.shown")
        assert "API key" in page.text_content("#error")
        page.fill("#api-key", KEY)
        page.click("#use-key")
        page.wait_for_selector("#model option", state="attached")
        assert page.text_content("#error") == ""
        page.screenshot(path=tmp_path / "key.png", full_page=True)
        page.close()
    finally:
        locked.stop()
