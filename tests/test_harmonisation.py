"""Chorale harmonisation: melody strings and files (genlab.data.melody), the layout processor that forces the
soprano and draws the lower voices (genlab.sampling.layout), model.sample(melody=...), genlab sample --melody
with MIDI/MusicXML/WAV output, every bad melody as one error line with nothing written, and the harmonisation
figures (genlab.metrics.harmony, genlab.evaluation.harmony)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import music
from genlab.data.dataset import Dataset
from genlab.data.melody import harmony_layout, parse_melody, read_melody, soprano_line
from genlab.errors import ConfigError, DataError

music21 = pytest.importorskip("music21")

# two bars of 4/4 in eighth-note steps: S A T B per step (tests/test_music.py's)
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")
MELODY = "| 67 _ 69 _ 71 _ 72 _ | 72 _ 71 _ 72 _ _ R"


def _array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _part(notes, meter="4/4"):
    """A music21 part of ``(midi or [midis], quarter notes)``; a list is a chord, ``None`` a rest."""
    part = music21.stream.Part()
    part.append(music21.meter.TimeSignature(meter))
    for pitch, length in notes:
        element = (music21.note.Rest(quarterLength=length) if pitch is None else
                   music21.chord.Chord(pitch, quarterLength=length) if isinstance(pitch, list) else
                   music21.note.Note(pitch, quarterLength=length))
        part.append(element)
    return part


def _write(path, *parts):
    music21.stream.Score(list(parts)).write("midi" if path.suffix == ".mid" else "musicxml", fp=str(path))
    return path


@pytest.fixture(scope="module")
def chorale_run(tmp_path_factory):
    """A three-step chorale transformer (soprano range E4-Eb5), saved as a run."""
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pieces = [music.transpose_chorale(CHORALE, k) for k in range(-3, 4)]
    data = Dataset(name="toy", modality="music", x_train=_array(pieces), x_test=_array(pieces[:2]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32)
    model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    run = tmp_path_factory.mktemp("harmony") / "run"
    model.save_pretrained(run)
    yield model, data, run
    torch.set_num_threads(threads)


def _soprano_tokens(text):
    """The bar lines and every fourth voice token of a sample, whether it parses or not."""
    tokens, kept, voice = text.split(), [], 0
    for token in tokens:
        if token == music.BAR:
            kept.append(token)
        else:
            kept += [token] if voice == 0 else []
            voice = (voice + 1) % 4
    return kept


# ------------------------------------------------------------------------------ melodies
def test_a_melody_string_is_a_chorales_soprano_and_parses_back():
    assert soprano_line(CHORALE) == MELODY
    line = parse_melody(MELODY)
    assert line.n_steps == 16 and line.bars.tolist() == [0, 8] and line.pitch[15] == -1 and not line.onset[1]
    assert line.bar_of(7) == 1 and line.bar_of(8) == 2


@pytest.mark.parametrize("text, match", [("67 _ 69 _", "opens with a bar line"), ("| _ 67", "never started"),
                                         ("| 67 | | 69", "empty bar"), ("| 67 x", "'x' in the melody"),
                                         ("| R R", "no note"), ("| 67 _ |", "ends with a bar line")])
def test_bad_melody_strings_say_what_is_wrong(text, match):
    with pytest.raises(DataError, match=match):
        parse_melody(text)


def test_melody_files_keep_their_bars_pickup_and_ties(tmp_path):
    melody = read_melody(_write(tmp_path / "plain.musicxml", _part([(67, 1), (69, 0.5), (71, 0.5), (72, 2)])))
    assert melody == "| 67 _ 69 71 72 _ _ _"
    assert read_melody(_write(tmp_path / "plain.mid", _part([(67, 1), (69, 0.5), (71, 0.5), (72, 2)]))) == melody
    bars = [music21.stream.Measure(number=k) for k in range(4)]
    bars[0].timeSignature = music21.meter.TimeSignature("3/4")
    bars[0].paddingLeft = 2.0   # a one-beat pickup
    for k, (pitch, length) in enumerate([(67, 1), (72, 2), (71, 1), (69, 1), (67, 2), (67, 2)]):
        bars[(k + 1) // 2].append(music21.note.Note(pitch, quarterLength=length))
    bars[2].notes[1].tie, bars[3].notes[0].tie = music21.tie.Tie("start"), music21.tie.Tie("stop")
    part = music21.stream.Part()
    part.append(bars)
    # the pickup is a bar of its own, and the note tied over the bar line is held on (music21 ends the bar with a rest)
    expected = "| 67 _ | 72 _ _ _ 71 _ | 69 _ 67 _ _ _ | _ _ _ _ R R"
    assert read_melody(_write(tmp_path / "pickup.musicxml", part)) == expected


def test_a_bach_melody_is_the_soprano_of_the_corpus_piece():
    melody = read_melody("bach:bwv269")
    piece = music.score_to_chorale(music21.corpus.parse("bach/bwv269"))
    assert melody == soprano_line(piece) and parse_melody(melody).onset.sum() > 20
    with pytest.raises(DataError, match="did you mean .*bach:bwv269"):
        read_melody("bach:bwv2690")


# ------------------------------------------------------------------------------ sampling
def test_harmonisations_keep_the_soprano_stay_in_range_and_parse(chorale_run):
    model, _, _ = chorale_run
    samples = model.sample(6, melody=MELODY, generator=torch.Generator().manual_seed(0))
    again = model.sample(6, melody=MELODY, generator=torch.Generator().manual_seed(0))
    assert list(samples) == list(again)
    ranges = model.codec_.ranges
    for text in samples:
        grid = music.parse_chorale(text)   # every sample parses
        assert soprano_line(text) == MELODY and grid.n_steps == 16 and grid.bars.tolist() == [0, 8]
        for v, (low, high) in enumerate(ranges):
            notes = grid.pitch[grid.onset[:, v], v]
            assert ((notes >= low) & (notes <= high)).all(), (v, notes)
    assert len(set(samples)) > 1   # the lower voices are drawn
    beams = model.sample(2, melody=MELODY, num_beams=3)
    free = model.sample(2, melody=MELODY, constrain="none", generator=torch.Generator().manual_seed(0))
    assert all(soprano_line(t) == MELODY for t in beams) and all(music.parses(t) for t in beams)
    assert all(_soprano_tokens(text) == MELODY.split() for text in free)   # lower voices free, the melody kept
    long = " ".join([MELODY] * 3)   # 100 tokens: past the 32-token context, decoding slides its window
    drawn = model.sample(2, melody=long, generator=torch.Generator().manual_seed(1))
    assert all(soprano_line(t) == long for t in drawn)


def test_the_layout_forces_the_melody_and_holds_only_sounding_voices(chorale_run):
    model, _, _ = chorale_run
    codec = model.codec_
    layout = harmony_layout(MELODY, codec)
    assert layout.length == 2 + 16 * 4 + 1   # two bar lines, four tokens a step, eos
    forced = layout.allowed.sum(1) == 1
    assert forced[0] and forced[1] and not forced[2] and forced[-1] and bool(layout.allowed[-1, codec.eos])
    assert layout.previous[2] == -1 and layout.previous[6] == 2   # the alto's first step cannot hold; its second can
    with pytest.raises(DataError, match=r"melody note 2 \(C6, MIDI 84, bar 1\) is above this model's soprano range"):
        harmony_layout("| 67 _ 84 _", codec)


def test_a_melody_is_for_chorale_models_and_sets_the_length(chorale_run):
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    model, _, _ = chorale_run
    with pytest.raises(ConfigError, match="as long as its melody"):
        model.sample(1, melody=MELODY, max_new_tokens=40)
    with pytest.raises(ConfigError, match="prompt and melody"):
        model.sample(1, melody=MELODY, prompt="| 67")
    text = Dataset(name="words", modality="text", x_train=_array(["a cat sat", "a dog ran"] * 4),
                   x_test=_array(["a cat ran"]))
    writer = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=16)
    writer.fit(text, train=TrainConfig(steps=1, batch_size=4, device="cpu"))
    assert "melody" not in writer.sampling_options()   # declared for music only
    with pytest.raises(ConfigError, match="harmonised by a model of chorales \\(music\\); this model makes text"):
        writer.sample(1, melody=MELODY)


# ------------------------------------------------------------------------------ the command line
def _run(capsys, *argv):
    from genlab.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_harmonises_a_file_into_midi_musicxml_wav_and_text(chorale_run, tmp_path, capsys):
    _, _, run = chorale_run
    melody = _write(tmp_path / "melody.musicxml", _part([(67, 1), (69, 1), (71, 1), (72, 1), (72, 2), (71, 2)]))
    line = read_melody(melody)
    code, _, err = _run(capsys, "sample", run, "--melody", melody, "-n", 2, "--out", tmp_path / "h.mid")
    assert code == 0 and not (tmp_path / "h.mid").exists(), err
    for i in (1, 2):
        score = music21.converter.parse(tmp_path / f"h-{i}.mid")
        soprano = [n.pitch.midi for n in score.parts[0].flatten().notes]
        assert len(score.parts) == 4 and soprano == [67, 69, 71, 72, 72, 71]
    code, _, err = _run(capsys, "sample", run, "--melody", melody, "-n", 1, "--out", tmp_path / "h.musicxml")
    assert code == 0 and len(music21.converter.parse(tmp_path / "h.musicxml").parts) == 4, err
    code, _, err = _run(capsys, "sample", run, "--melody", melody, "-n", 1, "--out", tmp_path / "h.wav")
    assert code == 0 and (tmp_path / "h.wav").read_bytes()[:4] == b"RIFF", err
    code, out, err = _run(capsys, "sample", run, "--melody", melody, "-n", 2, "--seed", 3)
    printed = out.split("\n<|endoftext|>\n")
    assert code == 0 and len(printed) == 2 and all(soprano_line(t.strip()) == line for t in printed), err
    code, _, err = _run(capsys, "sample", run, "--melody", melody, "-n", 2, "--out", tmp_path / "h.mid")
    assert code == 1 and "h-1.mid already exists" in err   # every numbered file is checked before drawing


def _bad_melodies(folder):
    """``{name: (file, what the error says)}``: one of every melody the command refuses."""
    junk = folder / "junk.mid"
    junk.write_bytes(b"not a midi file at all")
    return {
        "two parts": (_write(folder / "two.musicxml", _part([(67, 4)]), _part([(60, 4)])), "2 parts"),
        "chord": (_write(folder / "chord.mid", _part([(67, 2), ([67, 71], 2)])), "note 2 (bar 1) is a chord"),
        "range": (_write(folder / "high.musicxml", _part([(67, 2), (69, 1), (88, 1), (67, 4)])),
                  "melody note 3 (E6, MIDI 88, bar 1) is above this model's soprano range"),
        "unreadable": (junk, "junk.mid: music21 cannot read it"),
        "off the grid": (_write(folder / "six.musicxml", _part([(67, 1), (69, 0.25), (71, 0.75), (72, 2)])),
                         "note 2 (A4, bar 1) ends at 1.25 quarter notes, off the grid"),
        "missing": (folder / "nowhere.mid", "no such melody file"),
    }


@pytest.mark.parametrize("case", ["two parts", "chord", "range", "unreadable", "off the grid", "missing"])
def test_each_bad_melody_is_one_error_line_and_nothing_is_written(chorale_run, tmp_path, capsys, case):
    _, _, run = chorale_run
    melody, message = _bad_melodies(tmp_path)[case]
    (tmp_path / "out").mkdir()
    code, out, err = _run(capsys, "sample", run, "--melody", melody, "-n", 2, "--out", tmp_path / "out" / "h.mid")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("genlab: error:") and message in lines[0], err
    assert not list((tmp_path / "out").iterdir()) and not out


def test_a_melody_for_a_model_that_is_not_of_chorales_is_one_error_line(tmp_path, capsys):
    points = tmp_path / "dots.npy"
    np.save(points, np.random.default_rng(0).normal(size=(64, 2)))
    code, _, err = _run(capsys, "fit", points, "--family", "gaussian", "--set", "n_components=1", "--out",
                        tmp_path / "dots")
    assert code == 0, err
    code, _, err = _run(capsys, "sample", tmp_path / "dots", "--melody", "bach:bwv269", "--out", tmp_path / "h.mid")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "--melody needs a model of chorales (music)" in lines[0], err
    assert "this gaussian model makes points" in lines[0] and not (tmp_path / "h.mid").exists()


# ------------------------------------------------------------------------------ figures
def test_harmony_figures_count_kept_sopranos_ranges_and_parallel_fifths():
    from genlab.metrics.harmony import harmony_statistics

    fifths = "| 67 R R 60 _ R R _ 69 R R 62 _ R R _"   # soprano and bass a fifth apart, both up a step
    low, high = [0, 0, 0, 61], [127] * 4               # the bass's 60 is below its range, its 62 inside
    figures = harmony_statistics([fifths, fifths, "_ 1 2"], ["| 67 _ 69 _", "| 67 _ 71 _", "| 67 _ 69 _"], low, high)
    assert figures.soprano_kept == pytest.approx(1 / 3) and figures.parse_rate == pytest.approx(2 / 3)
    assert figures.lower_in_range == 0.5 and figures.fifths_per_100_beats == pytest.approx(50.0)
    with pytest.raises(ValueError, match="one melody per sample"):
        harmony_statistics([fifths], [], low, high)


def test_the_harmonisation_evaluation_sets_the_model_beside_bach(chorale_run):
    from genlab.evaluation.harmony import evaluate_harmonisation, first_bars

    model, data, _ = chorale_run
    assert first_bars(CHORALE, 1) == CHORALE[:CHORALE.index(" | ")] and first_bars(CHORALE, 5) == CHORALE
    report = evaluate_harmonisation(model, data, n=2, bars=1, n_bootstrap=5)
    again = evaluate_harmonisation(model, data, n=2, bars=1, n_bootstrap=5)
    assert report.to_dict() == again.to_dict() and report.n_samples == report.n_real == 2
    assert report.metrics["soprano_kept"] == report.metrics["parse_rate"] == 1.0 == report.floor["soprano_kept"]
    assert 0 <= report.metrics["lower_in_range"] <= 1 and set(report.intervals) == set(report.metrics)
    with pytest.raises(DataError, match="needs chorales"):
        evaluate_harmonisation(model, Dataset(name="dots", modality="points", x_train=np.zeros((4, 2), np.float32),
                                              x_test=np.zeros((2, 2), np.float32)))
