"""The music modality: the chorale time grid, transposition, MIDI/MusicXML through music21, additive
synthesis, the voice-leading statistics, bad pieces, and a transformer that fits and samples chorales."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from genlab.data import music
from genlab.errors import ConfigError, DataError
from genlab.metrics.music import chorale_statistics, compare_chorales

# two bars of 4/4 in eighth-note steps: S A T B per step
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")


def _array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def test_the_grid_parses_formats_back_and_transposes():
    grid = music.parse_chorale(CHORALE)
    assert grid.pitch.shape == (16, 4) and grid.bars.tolist() == [0, 8]
    assert grid.pitch[1, 0] == 67 and not grid.onset[1, 0] and grid.pitch[15, 0] == -1
    assert music.format_chorale(grid) == CHORALE
    up = music.parse_chorale(music.transpose_chorale(CHORALE, 3))
    np.testing.assert_array_equal(up.pitch[up.pitch >= 0], grid.pitch[grid.pitch >= 0] + 3)
    with pytest.raises(DataError, match="leaves MIDI"):
        music.transpose_chorale("| 126 _ _ _", 5)


def test_the_codec_writes_training_pieces_in_neighbouring_keys_but_fits_ranges_as_written():
    assert music.key_shifts(3) == [0, -5, 5]          # a fifth up (7 semitones, here an octave lower) and down
    assert sorted(music.key_shifts(12)) == list(range(-5, 7))
    codec = music.ChoraleCodec(context=9, keys=3).fit(_array([CHORALE]))
    stream = codec.stream(_array([CHORALE])).tolist()
    eos = codec.eos
    pieces = [codec.detokenize(p) for p in _split(stream, eos)]
    assert pieces == [CHORALE, music.transpose_chorale(CHORALE, -5), music.transpose_chorale(CHORALE, 5)]
    assert codec.ranges[0] == (67, 72)          # the soprano as written, not its transpositions
    again = music.ChoraleCodec.from_state(codec.state())
    assert again.keys == 3 and again.stream(_array([CHORALE])).tolist() == stream
    with pytest.raises(ValueError, match="keys must be 1-12"):
        music.ChoraleCodec(context=9, keys=13)


def _split(stream, eos):
    out, piece = [], []
    for token in stream[1:]:
        if token == eos:
            out.append(piece)
            piece = []
        else:
            piece.append(token)
    return out


@pytest.mark.parametrize("text, match", [("| 60 60 60", "holds 3 voices"), ("_ 60 60 60", "never started"),
                                         ("60 60 | 60 60", "bar line inside"), ("60 x 60 60", "'x' is not"),
                                         ("R R R R", "no note")])
def test_strings_outside_the_grammar_do_not_parse(text, match):
    with pytest.raises(DataError, match=match):
        music.parse_chorale(text)
    assert not music.parses(text)


def test_an_excerpt_cut_mid_step_keeps_its_whole_steps():
    assert music.whole_steps("| 60 55 52 48 _ _ _ _ 62 59") == "| 60 55 52 48 _ _ _ _"
    assert music.whole_steps("| 60 55 52 48 |") == "| 60 55 52 48"


def test_synthesis_sounds_the_written_pitch():
    a4 = "| 69 R R R _ R R R _ R R R _ R R R"   # A4 for two beats, the other voices rest
    rate = 8000
    audio = music.synthesize(a4, sample_rate=rate, tempo=60.0)
    assert audio.shape == (4 * rate // 2 + 1,) and np.abs(audio).max() == pytest.approx(0.9, abs=1e-6)
    spectrum = np.abs(np.fft.rfft(audio))
    # the fundamental (1/k amplitudes) is the strongest partial; bins are 1/(2 s) = 0.5 Hz wide
    assert np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()] == pytest.approx(440.0, abs=1.0)


def test_statistics_count_parallel_fifths_crossings_and_unparsable_samples():
    fifths = "| 67 R R 60 _ R R _ 69 R R 62 _ R R _"   # soprano and bass a fifth apart, both up a step
    stats = chorale_statistics([fifths, "_ 1 2 3"])
    assert stats.parse_rate == 0.5 and stats.beats == 2.0
    assert stats.fifths == pytest.approx(50.0) and stats.octaves == 0.0   # one in 2 beats
    crossing = "| 60 64 55 48 _ _ _ _"                          # the alto above the soprano
    assert chorale_statistics([crossing]).crossings == pytest.approx(200.0)   # 2 crossed steps in 1 beat
    same = compare_chorales([CHORALE], [CHORALE])
    assert same.pitch_class_distance == same.interval_distance == same.duration_distance == 0.0
    assert compare_chorales([music.transpose_chorale(CHORALE, 1)], [CHORALE]).pitch_class_distance > 0.5


def test_midi_and_musicxml_round_trip_through_music21(tmp_path):
    music21 = pytest.importorskip("music21")
    for suffix, write in ((".mid", music.write_midi), (".musicxml", music.write_musicxml)):
        path = write(CHORALE, tmp_path / f"c{suffix}")
        back = music.score_to_chorale(music21.converter.parse(path))
        strip = lambda s: [t for t in s.split() if t != music.BAR]   # noqa: E731 (MIDI has no pickup bars)
        assert strip(back) == strip(CHORALE).__getitem__(slice(0, len(strip(back))))
        assert len(strip(back)) >= len(strip(CHORALE)) - 4   # a trailing rest may be dropped


def test_pieces_without_four_voices_or_notes_are_counted_skips(tmp_path, caplog):
    music21 = pytest.importorskip("music21")
    three = music21.stream.Score([music21.stream.Part([music21.note.Note(60)]) for _ in range(3)])
    with pytest.raises(DataError, match="3 parts"):
        music.score_to_chorale(three, "three.mid")
    silent = music21.stream.Score([music21.stream.Part([music21.note.Rest()]) for _ in range(4)])
    with pytest.raises(DataError, match="holds no note"):
        music.score_to_chorale(silent, "silent.mid")
    for i in range(2):
        music.write_midi(music.transpose_chorale(CHORALE, i), tmp_path / f"good{i}.mid")
    three.write("midi", fp=str(tmp_path / "three.mid"))
    with caplog.at_level(logging.WARNING, logger="genlab.data.music"):
        data = music.music_folder(tmp_path)
    assert len(data.x_train) + len(data.x_test) == 2 and "skipped 1 of 3" in caplog.text


def test_the_transformer_fits_and_samples_chorale_strings(tmp_path, single_thread):
    from genlab.data.dataset import Dataset
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    pieces = [music.transpose_chorale(CHORALE, k) for k in range(-3, 4)]
    data = Dataset(name="toy", modality="music", x_train=_array(pieces), x_test=_array(pieces[:1]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32)
    model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    samples = model.sample(3, generator=torch.Generator().manual_seed(0), max_new_tokens=66)
    assert samples.shape == (3,) and all(music.parses(s) for s in samples)   # the grammar is on by default
    with pytest.raises(ConfigError, match="the shortest takes 33 tokens"):   # a bar line and one bar of 8 steps
        model.sample(1, max_new_tokens=24)
    model.save_pretrained(tmp_path / "run")
    again = TransformerModel.from_pretrained(tmp_path / "run")   # with the codec's voice ranges and meters
    assert list(again.sample(3, generator=torch.Generator().manual_seed(0), max_new_tokens=66)) == list(samples)


def test_cli_samples_chorales_inside_the_grammar_unless_constrain_none(tmp_path, capsys, single_thread):
    from genlab.cli.app import main
    from genlab.data.dataset import Dataset
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    def run(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        return exit_info.value.code, capsys.readouterr().err

    pieces = [music.transpose_chorale(CHORALE, k) for k in range(-3, 4)]
    data = Dataset(name="toy", modality="music", x_train=_array(pieces), x_test=_array(pieces[:1]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32)
    model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    model.save_pretrained(tmp_path / "run")
    read = lambda path: path.read_text().split("\n<|endoftext|>\n")[:-1]   # noqa: E731 (the .txt layout stays)
    code, err = run("sample", str(tmp_path / "run"), "-n", "4", "--max-new-tokens", "66",   # the flag, as for text
                    "--out", str(tmp_path / "c.txt"))
    assert code == 0 and all(music.parses(s) for s in read(tmp_path / "c.txt")), err
    code, err = run("sample", str(tmp_path / "run"), "-n", "4", "--set", "max_new_tokens=66", "--constrain", "none",
                    "--out", str(tmp_path / "free.txt"))
    free = model.sample(4, generator=torch.Generator().manual_seed(0), max_new_tokens=66, constrain="none")
    assert code == 0 and read(tmp_path / "free.txt") == list(free), err
