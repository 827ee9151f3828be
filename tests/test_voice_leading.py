"""No parallel fifths or octaves (genlab.sampling.voice_leading): the rule agrees with the statistic that counts
them, refuses exactly the pitches that would make one, never leaves a voice without a token, and keeps
chorale samples and harmonisations free of them by default (constrain="grammar"), not under "syntax"."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genlab.data import music
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.metrics.music import chorale_statistics
from genlab.sampling.voice_leading import VoiceLeading, parallel

# soprano and alto a fifth apart (67/60), then both up a step (69/62): parallel fifths on the second chord
FIFTHS = "| 67 60 55 48 _ _ _ _ 69 62 55 48 _ _ _ _"


def _array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _codec():
    pieces = [FIFTHS, "| 72 64 55 48 _ _ _ _ 71 62 55 43 _ _ _ _"]
    return music.ChoraleCodec(context=33).fit(_array(pieces))


def _ids(codec, text):
    return codec.tokenize(text)


def test_the_rule_is_the_statistic():
    # every pair of chords over a small pitch set: parallel() flags a pair exactly when the metric counts it
    rng = np.random.default_rng(0)
    for _ in range(300):
        before, after = rng.integers(55, 75, size=(2, 4)).tolist()
        text = "| " + " ".join(map(str, before)) + " " + " ".join(map(str, after))
        stats = chorale_statistics([text])
        beats = stats.beats
        counted = round((stats.fifths + stats.octaves) * beats / 100)
        flagged = sum(parallel(before, after, a, b) for a, b in itertools.combinations(range(4), 2))
        assert flagged == counted, (before, after)


def test_the_lower_voice_of_a_parallel_fifth_is_refused_and_holds_and_rests_never_are():
    codec = _codec()
    rule = VoiceLeading.for_codec(codec)
    ids = [codec.eos] + _ids(codec, FIFTHS.rsplit(" 62 55 48", 1)[0])     # ... up to the second chord's soprano
    rule.update(torch.tensor([ids]))
    token = codec.tokenize
    assert not rule.allows(0, token("62")[0])        # alto 60 -> 62 under soprano 67 -> 69: fifths
    assert rule.allows(0, token("64")[0]) and rule.allows(0, token("59")[0])   # a sixth, contrary motion
    assert rule.allows(0, token("_")[0]) and rule.allows(0, token("R")[0])
    scores = rule(torch.tensor([ids]), torch.zeros(1, codec.vocab_size))
    assert torch.isinf(scores[0, token("62")[0]]) and torch.isfinite(scores[0, token("64")[0]])
    assert rule.checks > 0 and rule.masked > 0


def test_octaves_between_outer_voices_are_refused_after_a_bar_line():
    codec = _codec()
    rule = VoiceLeading.for_codec(codec)
    ids = [codec.eos] + _ids(codec, "| 67 60 55 55 _ _ _ _ | 69 _ _")     # S 67 -> 69, B 55 an octave below
    rule.update(torch.tensor([ids]))
    assert not rule.allows(0, codec.tokenize("57")[0])     # bass 55 -> 57: octaves with the soprano
    assert rule.allows(0, codec.tokenize("53")[0])


@pytest.fixture(scope="module")
def chorale_model():
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    pieces = [music.transpose_chorale(FIFTHS + " " + FIFTHS, k) for k in range(-3, 4)]
    data = Dataset(name="toy", modality="music", x_train=_array(pieces), x_test=_array(pieces[:1]))
    torch.manual_seed(0)
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32)
    return model.fit(data, train=TrainConfig(steps=20, batch_size=8, device="cpu", seed=0))


def _parallels(texts):
    stats = chorale_statistics(list(texts))
    return stats.fifths + stats.octaves


def test_samples_keep_clear_of_parallels_by_default_and_not_under_syntax(chorale_model, single_thread):
    generator = lambda: torch.Generator().manual_seed(1)   # noqa: E731
    ruled = chorale_model.sample(16, generator=generator(), max_new_tokens=99)
    free = chorale_model.sample(16, generator=generator(), max_new_tokens=99, constrain="syntax")
    assert all(music.parses(s) for s in ruled) and all(music.parses(s) for s in free)
    assert _parallels(ruled) == 0
    # trained on nothing but parallel fifths, the model writes some when allowed: 16 samples of 6 bars (seeded)
    # hold dozens of chord changes, so "some" does not hang on one draw
    assert _parallels(free) > 0
    with pytest.raises(ConfigError, match="constrain"):
        chorale_model.sample(1, constrain="rules")


def test_harmonisations_keep_clear_of_parallels(chorale_model, single_thread):
    melody = "| 67 _ _ _ 69 _ _ _ | 67 _ _ _ 69 _ _ _"
    ruled = chorale_model.sample(8, melody=melody, generator=torch.Generator().manual_seed(2))
    assert all(music.parses(s) for s in ruled) and _parallels(ruled) == 0
    assert all(s.split()[1] == "67" for s in ruled)
