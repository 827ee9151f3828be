"""A transformer trained on Bach chorales for a CPU-time budget, scored against held-out chorales (issue #18).

Data: the first ``--pieces`` (default 150) files of music21's Bach corpus, four-part pieces only, in the
eighth-note time grid of :mod:`genlab.data.music`, split 80/20 by piece; every training piece is added
in all twelve keys (``-5 .. +6`` semitones). Model: 4 layers, 4 heads, width 128, block 128 (32 steps,
16 beats of context), batch 32, AdamW lr 2e-3 (warm-up 100, cosine to 2e-4), betas (0.9, 0.99), weight
decay 0.1, clip 1.0; the budget (``--minutes``, default 3; the issue allows 20) is CPU time of the
Trainer's loop (``clock="cpu"``).

Samples: ``--samples`` (32) excerpts of ``--tokens`` (256) tokens at temperature 1, each from the start
token, cut to whole steps (:func:`~genlab.data.music.whole_steps`: a token budget ends mid-step). Each
is written to MIDI and read back by music21 ("decodes to valid MIDI": four parts and at least one note).
The **real floor** is the same statistics of the training pieces (original keys), cut to the same
number of tokens, against the held-out pieces: what two sets of real Bach excerpts differ by. Bar
(issue): each distance at most 2x the floor's, parallel fifths at most 2x Bach's own rate (held-out
pieces), 100 % decoding to MIDI. A WAV (additive synthesis) and a piano roll of the first sample are
written beside the JSON.

Measured (``--minutes 1 --pieces 40 --samples 16``: 31 four-part pieces, 25 train in 12 keys = 300
pieces, 6 held out; 141 steps): 1 of 16 samples parses and decodes to MIDI (0.0625); pitch-class distance
0.680 (floor 0.128), intervals 0.641 (0.036), durations 0.477 (0.060), out of range 0.188 (0.013),
parallel fifths 40 per 100 beats (Bach 1.09); not met: one CPU minute is far too short for the network to
learn the four-token step (samples put bar lines inside steps and lose voice alignment). A 3-minute run
on 150 pieces was stopped unfinished on the loaded shared machine.

Harmonisation (issue #23): the same model harmonises the soprano lines of ``--harmonise`` (16) held-out pieces,
each cut to its first ``--harmony-bars`` (8) bars (:func:`genlab.evaluation.harmony.evaluate_harmonisation`: the
melody's bar lines and soprano forced, alto, tenor and bass drawn at temperature 1 inside their fitted ranges).
Reported beside Bach's own harmonisations of the same melodies: the share of sopranos kept exactly, of lower-voice
notes inside the training pieces' voice ranges, and parallel fifths and octaves per 100 beats; ``--harmonise 0``
skips it. Not measured yet.

    OMP_NUM_THREADS=1 python benchmarks/music.py [--minutes 3] [--pieces 150] [--samples 32] [--harmonise 16]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab.data import music
from genlab.data.dataset import Dataset
from genlab.evaluation.harmony import evaluate_harmonisation
from genlab.io import write_json
from genlab.metrics.music import chorale_statistics, compare_chorales
from genlab.models.transformer import TransformerModel
from genlab.train import TrainConfig

DEFAULT_OUT = Path(__file__).parent / "results" / "music.json"
DISTANCES = ("pitch_class_distance", "interval_distance", "duration_distance", "out_of_range")
HARMONY = ("soprano_kept", "lower_in_range", "fifths_per_100_beats", "octaves_per_100_beats", "parse_rate")


def excerpt(text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text``, cut to whole steps."""
    return music.whole_steps(" ".join(text.split()[:tokens]))


def decodes_to_midi(text: str, folder: Path, index: int) -> bool:
    """Write ``text`` as MIDI and read it back with music21: four parts holding at least one note."""
    import music21

    try:
        path = music.write_midi(text, folder / f"{index}.mid")
        score = music21.converter.parse(path)
    except Exception:   # a string that does not parse, or a file music21 cannot read back
        return False
    return len(score.parts) == 4 and len(score.flatten().notes) > 0


def piano_roll(text: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = music.parse_chorale(text)
    fig, ax = plt.subplots(figsize=(8, 3))
    for v, colour in enumerate(("C0", "C1", "C2", "C3")):
        t = np.flatnonzero(grid.pitch[:, v] >= 0)
        ax.scatter(t * music.STEP, grid.pitch[t, v], s=6, marker="s", color=colour, label=music.VOICES[v])
    ax.set_xlabel("beat")
    ax.set_ylabel("MIDI pitch")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--pieces", type=int, default=150)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harmonise", type=int, default=16, help="held-out soprano lines to harmonise (0: none)")
    parser.add_argument("--harmony-bars", type=int, default=8, help="bars of each soprano line harmonised")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.process_time()
    plain = music.chorales(n_pieces=args.pieces)
    load_cpu = time.process_time() - start
    keys = [music.transpose_chorale(p, k) for p in plain.x_train for k in range(-5, 7)
            if music.parses(p) and all(0 <= int(t) + k <= 127 for t in p.split() if t.isdigit())]
    train_x = np.empty(len(keys), dtype=object)
    train_x[:] = keys
    data = Dataset(name=f"{plain.name}-12keys", modality="music", x_train=train_x, x_test=plain.x_test)

    model = TransformerModel(n_layer=4, n_head=4, n_embd=128, block_size=128)
    train = TrainConfig(steps=None, max_time=60.0 * args.minutes, clock="cpu", batch_size=32, lr=2e-3,
                        betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=100, min_lr_ratio=0.1, grad_clip=1.0,
                        log_every=200, seed=args.seed, device="cpu")
    model.fit(data, train=train)
    steps = int(model.history_[-1]["step"]) if model.history_ else None

    start = time.process_time()
    raw = model.sample(args.samples, generator=torch.Generator().manual_seed(args.seed),
                       max_new_tokens=args.tokens, temperature=1.0)
    samples = [music.whole_steps(str(s)) for s in raw]
    sample_cpu = time.process_time() - start

    reference = list(plain.x_test)
    floor = compare_chorales([excerpt(p, args.tokens) for p in plain.x_train], reference)
    parsed = [s for s in samples if music.parses(s)]
    ours = compare_chorales(samples, reference) if parsed else None
    bach_fifths = chorale_statistics(reference).fifths
    with tempfile.TemporaryDirectory() as folder:
        midi = [decodes_to_midi(s, Path(folder), i) for i, s in enumerate(samples)]
    out_dir = args.out.parent
    if parsed:
        music.write_wav(parsed[0], out_dir / "music_sample.wav")
        music.write_midi(parsed[0], out_dir / "music_sample.mid")
        piano_roll(parsed[0], out_dir / "music_sample.png")

    bars = {}
    if ours is not None:
        for name in DISTANCES:
            bars[name] = getattr(ours, name) <= 2 * max(getattr(floor, name), 1e-9)
        bars["fifths"] = ours.fifths_per_100_beats <= 2 * bach_fifths
    bars["midi"] = all(midi)

    print(f"{'metric':26s} {'genlab':>10s} {'real floor':>10s} {'bar met':>8s}")
    for name in (*DISTANCES, "crossings_per_100_beats", "fifths_per_100_beats", "octaves_per_100_beats",
                 "parse_rate"):
        value = "-" if ours is None else f"{getattr(ours, name):.4f}"
        met = {"fifths_per_100_beats": bars.get("fifths")}.get(name, bars.get(name))
        print(f"{name:26s} {value:>10s} {getattr(floor, name):10.4f} {'' if met is None else str(met):>8s}")
    print(f"Bach's own parallel fifths per 100 beats (held out): {bach_fifths:.3f}; "
          f"samples decoding to MIDI: {np.mean(midi):.3f}")

    harmony, harmony_cpu = None, None
    if args.harmonise:
        start = time.process_time()
        harmony = evaluate_harmonisation(model, plain, n=args.harmonise, bars=args.harmony_bars, seed=args.seed,
                                         temperature=1.0)
        harmony_cpu = time.process_time() - start
        print(f"\nharmonising {harmony.n_samples} held-out soprano lines ({args.harmony_bars} bars each)")
        print(f"{'metric':26s} {'genlab':>10s} {'Bach':>10s}")
        for name in HARMONY:
            print(f"{name:26s} {harmony.metrics[name]:10.4f} {harmony.floor[name]:10.4f}")
    write_json(args.out, {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": data.describe(), "load_cpu_s": load_cpu, "steps": steps, "sample_cpu_s": sample_cpu,
        "genlab": None if ours is None else ours.to_dict(), "real_floor": floor.to_dict(),
        "bach_fifths_per_100_beats": bach_fifths, "midi_share": float(np.mean(midi)), "bars": bars,
        "examples": samples[:4], "machine": platform.platform(), "torch": torch.__version__,
        "harmonisation": None if harmony is None else {**harmony.to_dict(), "cpu_s": harmony_cpu}})


if __name__ == "__main__":
    main()
