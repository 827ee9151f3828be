"""`genlab serve` returns the records of every string modality (SMILES, chorales) as JSON strings, as it does
text, and takes them back as the subject of a variation (the server once answered 500: it read them as floats);
``/render`` draws them for the playground."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import genlab
from genlab.data.dataset import Dataset
from genlab.models.transformer import TransformerModel
from genlab.serve import ModelRegistry, ServeSettings, create_app
from genlab.serve.records import record_from_json, records_to_json
from genlab.train import TrainConfig

MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "O=C1CCCN1", "CCN(CC)CC", "CC#N"]
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")


def strings(items: list[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


@pytest.mark.parametrize("modality", ["text", "smiles", "music"])
def test_string_records_round_trip_as_strings(modality):
    records = strings(["CCO", "c1ccccc1"] if modality == "smiles" else ["| 60 _", "| 62 _"])
    assert records_to_json(records, modality) == list(records)
    assert list(record_from_json(records[0], modality, ())) == [records[0]]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A tiny SMILES model and a tiny chorale model, saved and served."""
    from genlab.data import music

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("string-runs")
        pieces = [music.transpose_chorale(CHORALE, k) for k in range(-3, 4)]
        data = {"molecules": Dataset(name="toy", modality="smiles", x_train=strings(MOLECULES * 4),
                                     x_test=strings(MOLECULES[:3])),
                "chorales": Dataset(name="toy", modality="music", x_train=strings(pieces), x_test=strings(pieces[:1]))}
        runs = [TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32)
                .fit(dataset, train=TrainConfig(steps=2, batch_size=8, device="cpu")).save_pretrained(folder / name)
                for name, dataset in data.items()]
        runs.append(genlab.fit("ring8", family="gaussian", n_components=2).save_pretrained(folder / "ring"))
    finally:
        torch.set_num_threads(threads)
    return TestClient(create_app(ModelRegistry.from_runs(runs), ServeSettings(max_n=8, max_tokens=80)))


@pytest.mark.parametrize("name, tokens", [("molecules", 20), ("chorales", 66)])
def test_samples_and_variations_of_string_models_are_strings(client, name, tokens):
    body = client.post(f"/v1/models/{name}/samples", json={"n": 2, "seed": 0, "options": {"max_new_tokens": tokens}})
    assert body.status_code == 200, body.text
    records = body.json()["records"]
    assert len(records) == 2 and all(isinstance(record, str) for record in records)
    varied = client.post(f"/v1/models/{name}/variations",
                         json={"n": 2, "seed": 0, "record": records[0], "strength": 0.5,
                               "options": {"max_new_tokens": tokens}})
    assert varied.status_code in (200, 400), varied.text   # a family may refuse the edit, never with a 500
    if varied.status_code == 200:
        assert all(isinstance(record, str) for record in varied.json()["records"])


def test_render_draws_molecules_with_their_properties(client):
    from genlab.data.smiles import molecule_properties

    body = client.post("/v1/models/molecules/render", json={"records": ["CCO", "C1CC"]})
    assert body.status_code == 200, body.text
    good, bad = body.json()["records"]
    expected = molecule_properties(["CCO"])
    assert good["valid"] and good["svg"].lstrip().startswith("<?xml") and "<svg" in good["svg"]
    # unrounded: the playground rounds once for display (rounding here too made 0.77752 show as 0.777)
    assert good["properties"] == pytest.approx({name: expected[name][0] for name in ("qed", "logp", "sa", "mw")},
                                               rel=1e-12)
    assert bad == {"record": "C1CC", "valid": False, "svg": None, "properties": None}


def test_render_plays_chorales_as_wav_and_midi(client):
    body = client.post("/v1/models/chorales/render", json={"records": [CHORALE, "| 60 _"]})
    assert body.status_code == 200, body.text
    good, bad = body.json()["records"]
    with wave.open(io.BytesIO(base64.b64decode(good["wav"]))) as sound:
        assert sound.getnframes() / sound.getframerate() == pytest.approx(good["seconds"], abs=1e-3)
        assert good["seconds"] == pytest.approx(6.0, abs=0.01)   # 16 eighths at 80 quarter notes a minute
    assert base64.b64decode(good["midi"])[:4] == b"MThd" and base64.b64decode(good["piano_roll"])[:4] == b"\x89PNG"
    assert not bad["valid"] and bad["wav"] is None and bad["midi"] is None


@pytest.mark.parametrize("name, body, status, words", [
    ("ring", {"records": ["CCO"]}, 400, "makes points"),
    ("molecules", {"records": ["C"] * 9}, 400, "limit of 8"),
    ("molecules", {"records": []}, 422, "at least 1"),
    ("molecules", {"records": [1]}, 422, "string"),
    ("nobody", {"records": ["C"]}, 404, "no model"),
])
def test_render_answers_bad_input_with_json_errors(client, name, body, status, words):
    answer = client.post(f"/v1/models/{name}/render", json=body)
    assert answer.status_code == status and words in answer.json()["error"]["message"], answer.text
