"""Records a browser cannot draw itself, drawn on the server: molecules and chorales.

``POST /v1/models/{name}/render`` takes ``{"records": [str, ...]}`` (what ``/samples``, ``/variations`` or
``/refine`` of that model returned, or any strings of its modality) and answers one object per record, in order:

- a SMILES model: ``{"record", "valid", "svg", "properties"}``: whether RDKit parses it, RDKit's drawing
  as an SVG document, and its QED, logP, SA and MW (:func:`genlab.data.smiles.molecule_properties`);
- a chorale model: ``{"record", "valid", "piano_roll", "wav", "midi", "seconds"}``: whether it parses
  (after :func:`~genlab.data.music.whole_steps`), a piano-roll PNG, its WAV (mono, :data:`WAV_RATE` Hz, at
  most :data:`WAV_SECONDS`) and its MIDI file, each base64, and the WAV's length in seconds.

What does not parse comes back with ``valid: false`` and ``null`` for the rest. Errors are JSON, as on every
route: a model of another modality or a list longer than the server's ``max_n`` is a 400, an empty list or a
record that is not a string a 422, an unknown model a 404. The samples' own routes keep
their shapes (records are strings, as every client reads them); the playground calls this one after them,
since the browser has no RDKit and no synthesiser. Rendering touches no model, so it runs beside its sampling.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from genlab.data import music
from genlab.data.smiles import PROPERTIES, molecule_properties
from genlab.report.figures import molecule_svg, piano_roll_png
from genlab.serve.errors import APIError
from genlab.serve.jobs import within
from genlab.serve.registry import ModelRegistry
from genlab.serve.schemas import Strict

#: Side in pixels of one molecule's SVG.
MOLECULE_SIDE = 220
#: Sample rate (Hz), the most seconds and the tempo (quarter notes a minute) of a chorale's WAV.
WAV_RATE = 11_025
WAV_SECONDS = 60.0
WAV_TEMPO = 80.0


class RenderRequest(Strict):
    """``POST /v1/models/{name}/render``: the records to draw (strings of the model's modality)."""

    records: list[str] = Field(min_length=1)


def render_molecules(records: list[str]) -> list[dict[str, Any]]:
    """Each SMILES as ``{"record", "valid", "svg", "properties"}`` (module docstring)."""
    values = molecule_properties(records)
    out = []
    for i, smiles in enumerate(records):
        svg = molecule_svg(smiles, side=MOLECULE_SIDE)
        properties = None if svg is None else {name: float(values[name][i]) for name in PROPERTIES}
        out.append({"record": smiles, "valid": svg is not None, "svg": svg, "properties": properties})
    return out


def render_chorales(records: list[str]) -> list[dict[str, Any]]:
    """Each chorale as ``{"record", "valid", "piano_roll", "wav", "midi", "seconds"}`` (module docstring)."""
    out = []
    for text in records:
        grid = music.whole_steps(text)
        if not music.parses(grid):
            out.append({"record": text, "valid": False, "piano_roll": None, "wav": None, "midi": None, "seconds": None})
            continue
        wav = music.wav_bytes(grid, sample_rate=WAV_RATE, tempo=WAV_TEMPO, max_seconds=WAV_SECONDS)
        out.append({"record": text, "valid": True, "piano_roll": _b64(piano_roll_png(grid)), "wav": _b64(wav),
                    "midi": _b64(music.midi_bytes(grid)), "seconds": round(music.wav_seconds(wav), 3)})
    return out


#: How each modality's records are drawn.
RENDERERS: dict[str, Callable[[list[str]], list[dict[str, Any]]]] = {
    "smiles": render_molecules, "music": render_chorales}


def media_router(registry: ModelRegistry, *, max_n: int, timeout_s: float) -> APIRouter:
    """The render route over ``registry``'s models; at most ``max_n`` records a request, ``timeout_s`` seconds."""
    router = APIRouter()

    @router.post("/v1/models/{name}/render")
    async def render(name: str, body: RenderRequest) -> dict[str, Any]:
        entry = registry.get(name)
        if entry is None:
            raise APIError(404, f"no model {name!r} is loaded; models: {', '.join(registry.names)}", "model")
        draw = RENDERERS.get(entry.modality)
        if draw is None:
            raise APIError(400, f"model {name!r} makes {entry.modality}; render draws "
                                f"{' and '.join(RENDERERS)} records", "model")
        if len(body.records) > max_n:
            raise APIError(400, f"{len(body.records)} records are over this server's limit of {max_n} (--max-n)",
                           "records")
        records = await within(run_in_threadpool(draw, body.records), timeout_s)
        return {"model": name, "modality": entry.modality, "records": records}

    return router


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
