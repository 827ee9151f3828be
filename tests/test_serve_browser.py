"""The playground page in Debian's Chromium (Playwright): generate for an image, a table, a text, a molecule
and a chorale model, pick a record, variations, interpolation, refine, downloads, readable errors, the API key.

Each view is screenshotted into the test's temporary folder. Skips, saying why, without Chromium.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
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


MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "O=C1CCCN1", "CCN(CC)CC", "CC#N"]
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")


def build_media_runs(folder: Path) -> list[Path]:
    """A tiny property-conditioned SMILES model (``molecules``) and a tiny chorale model (``chorales``), saved."""
    from genlab.data import music
    from genlab.data.dataset import Dataset
    from genlab.data.text import string_array
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    pieces = string_array([music.transpose_chorale(CHORALE, k) for k in range(-3, 4)])
    data = {"molecules": (Dataset(name="toy", modality="smiles", x_train=string_array(MOLECULES * 4),
                                  x_test=string_array(MOLECULES[:3])), {"properties": ["qed", "mw"]}),
            "chorales": (Dataset(name="toy", modality="music", x_train=pieces, x_test=pieces[:1]), {})}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32, **options)
                .fit(dataset, train=TrainConfig(steps=30, batch_size=8, lr=1e-2, device="cpu", seed=0))
                .save_pretrained(folder / name) for name, (dataset, options) in data.items()]
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    runs = build_runs(tmp_path_factory.mktemp("browser-runs"))
    media = build_media_runs(tmp_path_factory.mktemp("media-runs"))
    return ModelRegistry.from_runs([runs[name] for name in ("digits_vae", "table", "code", "ring")] + media)


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


def test_molecules_are_drawn_with_properties_and_condition_bins(page, tmp_path):
    from genlab.data.smiles import molecule_properties

    page.select_option("#model", "molecules")
    assert page.eval_on_selector_all("#prop-qed option", "os => os.map(o => o.textContent)") == ["any", "low", "mid",
                                                                                                  "high"]
    assert page.locator("#prop-mw").count() == 1 and page.locator("#prop-logp").count() == 0   # the model's own
    generate(page, "molecules", 6, choose={"#prop-qed": "high"}, fill={"#opt-max_new_tokens": "24"})
    assert page.text_content("#error") == "" and page.locator("#results .card").count() == 6
    cards = page.eval_on_selector_all("#results .card", """cards => cards.map(c => ({
        smiles: c.querySelector("pre").textContent,
        drawn: c.querySelector("img.molecule") ? [c.querySelector("img.molecule").complete,
                                                   c.querySelector("img.molecule").naturalWidth] : null,
        heads: [...c.querySelectorAll("table.props th")].map(t => t.textContent),
        values: [...c.querySelectorAll("table.props td")].map(t => t.textContent),
        note: c.querySelector(".media-note") ? c.querySelector(".media-note").textContent : ""}))""")
    drawn = [card for card in cards if card["drawn"]]
    assert drawn, cards   # the seeded tiny model draws at least one valid molecule
    for card in cards:
        expected = molecule_properties([card["smiles"]])
        if card["drawn"] is None:
            assert np.isnan(expected["qed"][0]) and "RDKit cannot parse" in card["note"]
            continue
        assert card["drawn"] == [True, 220] and card["heads"] == ["QED", "logP", "SA", "MW"]
        for shown, name in zip(card["values"], ("qed", "logp", "sa", "mw")):   # as rounded for display
            decimals = len(shown.partition(".")[2])
            assert abs(float(shown) - expected[name][0]) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9), (name, shown)
    page.screenshot(path=tmp_path / "molecules.png", full_page=True)
    page.click("#results .card >> nth=0")
    assert 'condition {"qed":"high"}' in page.text_content("#subject-info")


def test_chorales_show_a_piano_roll_play_as_wav_and_download_as_midi(page, tmp_path):
    generate(page, "chorales", 2, fill={"#opt-max_new_tokens": "60"})
    assert page.text_content("#error") == ""
    assert page.locator("#results .card").count() == 2
    rolls = decoded_images(page, "#results img.piano-roll")
    assert rolls and all(done and width > 200 for done, width, _ in rolls)
    sources = page.eval_on_selector_all("#results audio[controls]", "as => as.map(a => a.getAttribute('src'))")
    assert len(sources) == len(rolls) and all(src.startswith("data:audio/wav;base64,") for src in sources)
    with wave.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1]))) as sound:
        assert sound.getnchannels() == 1 and sound.getnframes() > sound.getframerate() / 2   # over half a second
    page.screenshot(path=tmp_path / "chorales.png", full_page=True)
    with page.expect_download() as download:
        page.click("#results a.midi >> nth=0")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".mid" and saved.read_bytes()[:4] == b"MThd"


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
