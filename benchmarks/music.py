"""Bach chorales as a user runs them: ``genlab fit chorales --max-time M`` with defaults only, then
``genlab sample RUN -n N --max-new-tokens T`` and ``genlab sample RUN --melody ...``, scored against held-out
Bach (issue #23).

Fit: :func:`genlab.api.fit`, the function ``genlab fit`` calls, with what that command passes and nothing else:
the built-in ``chorales`` dataset (the four-part Bach chorales of music21's corpus, split by piece), no family
(genlab picks the transformer for music), ``train={"max_time": M, "seed": 0}``; every other setting is genlab's
default for music (printed and saved in the JSON: network, batch, learning rate, block 128, training pieces in all
twelve keys, sampling inside the grid's grammar).

Samples: ``--samples`` (100) chorales of ``--bars`` (16) bars: ``max_new_tokens`` is 16 bars of the longest meter
the codec fitted (four tokens a step and a bar line), drawn at the model's default temperature with one seeded
generator. The grammar lets a sample end only after a whole bar, so a sample that ends on its own before 16 bars
is a whole (shorter) chorale; the mean length in bars is reported. Every sample is written to MIDI and read back
by music21 (four parts, at least one note).

The **real floor** is the same statistics of as many training pieces as there are samples (as written, cut to as
many tokens as the samples average), against the held-out pieces: what two sets of real Bach of this size differ
by, as ``genlab eval`` computes it. A distance between two histograms shrinks as the sets grow (and a piece's
pitch classes are those of its key, so a few pieces move the histogram), so the floor is the mean over
:data:`FLOOR_DRAWS` seeded draws of that many pieces, with the draws' 5-95 % range; the floor of all the
training pieces is printed beside it. Parallels are fifths plus
octaves per 100 beats against Bach's own rate in the held-out pieces. Bar (issue #23): 100 % parse; pitch-class
distance at most 2x the floor; parallel fifths+octaves at most 3x Bach's.

Harmonisation: the fitted model harmonises the soprano lines of ``--harmonise`` (20) held-out pieces, whole
(:func:`genlab.evaluation.harmony.evaluate_harmonisation`, ``genlab sample RUN --melody FILE`` per melody),
beside Bach's own harmonisations. Bar: soprano kept exactly, lower voices within their ranges >= 95 %,
parallels at most 3x Bach's.

Output: a table on stdout, ``--out`` JSON, a WAV, MIDI and piano roll of the first sample beside it, and the
``benchmarks/music.py`` section of ``docs/molecules_music.md`` (``--doc``).

    python benchmarks/music.py [--max-time 10m] [--samples 100] [--bars 16] [--harmonise 20] [--sample-seeds 5]
    python benchmarks/music.py --max-time 5s --samples 4 --bars 2 --harmonise 2 --sample-seeds 2 --out /tmp/m.json \\
        --doc /tmp/m.md          # a smoke test, not a figure
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from doc_sections import write_section
from genlab.api import fit
from genlab.cli.options import parse_duration
from genlab.config import to_dict
from genlab.data import music
from genlab.data.registry import load as load_dataset
from genlab.evaluation.harmony import evaluate_harmonisation
from genlab.io import write_json
from genlab.metrics.music import chorale_statistics, compare_chorales
from genlab.report.figures import piano_roll_png

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "music.json"
DEFAULT_DOC = ROOT.parent / "docs" / "molecules_music.md"
DISTANCES = ("pitch_class_distance", "interval_distance", "duration_distance", "out_of_range")
STATISTICS = (*DISTANCES, "crossings_per_100_beats", "fifths_per_100_beats", "octaves_per_100_beats", "parse_rate")
#: Seeded draws of training pieces the real floor averages over (module doc).
FLOOR_DRAWS = 20
HARMONY = ("soprano_kept", "lower_in_range", "fifths_per_100_beats", "octaves_per_100_beats", "parse_rate")


def excerpt(text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text``, cut to whole steps."""
    return music.whole_steps(" ".join(text.split()[:tokens]))


def real_floor(pieces: list[str], reference: list[str], n: int, seed: int) -> tuple[dict, dict]:
    """The statistics of ``n`` of ``pieces`` against ``reference``, averaged over :data:`FLOOR_DRAWS` seeded draws
    (without repetition where there are enough pieces), and each statistic's 5 and 95 % points over the draws."""
    rng = np.random.default_rng(seed)
    draws = [compare_chorales([pieces[i] for i in rng.choice(len(pieces), size=n, replace=len(pieces) < n)],
                              reference).to_dict() for _ in range(FLOOR_DRAWS)]
    mean = {name: float(np.mean([d[name] for d in draws])) for name in draws[0]}
    spread = {name: [float(v) for v in np.percentile([d[name] for d in draws], [5, 95])] for name in draws[0]}
    return mean, spread


def decodes_to_midi(text: str, folder: Path, index: int) -> bool:
    """Write ``text`` as MIDI and read it back with music21: four parts holding at least one note."""
    import music21

    try:
        path = music.write_midi(text, folder / f"{index}.mid")
        score = music21.converter.parse(path)
    except Exception:   # a string that does not parse, or a file music21 cannot read back
        return False
    return len(score.parts) == 4 and len(score.flatten().notes) > 0


def bars_of(text: str) -> int:
    """Bar lines in a chorale string: its bars."""
    return text.split().count(music.BAR)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(result: dict) -> str:
    """The benchmark's section of the docs page: settings, the statistics table and the harmonisation table."""
    a = result["args"]
    bars = result["bars_met"]
    lines = [
        "## Chorales: measured (`benchmarks/music.py`)",
        "",
        f"`genlab fit chorales --max-time {a['max_time']}`, defaults only, on {result['data']}; {result['steps']} "
        f"steps in {result['fit_wall_s']:.0f} s of wall clock, torch threads {result['torch_threads']}, "
        f"{result['machine']}. {a['samples']} samples with `--max-new-tokens {result['max_new_tokens']}` "
        f"({a['bars']} bars; mean length {result['mean_bars']:.1f} bars; {result['sample_wall_s']:.0f} s); "
        f"{result['midi_share']:.0%} decode to MIDI through music21. Settings genlab chose: "
        f"`{result['model_config']}`; training `{result['train_config']}`.",
        "",
        f"The real floor: {a['samples']} training pieces as written (as many as the samples), cut to the samples' "
        f"mean length, against the held-out pieces, averaged over {FLOOR_DRAWS} seeded draws (5-95 % of the draws "
        f"in brackets); beside it all {result['n_train_pieces']} training pieces. Bach's parallel fifths + octaves "
        f"in the held-out pieces: {result['bach_parallels_per_100_beats']:.2f} per 100 beats.",
        "",
        f"| statistic | genlab | real floor ({a['samples']} pieces) | real floor (all {result['n_train_pieces']}) |",
        "| --- | ---: | ---: | ---: |",
    ]
    ours, floor, spread = result["genlab"] or {}, result["real_floor"], result["real_floor_spread"]
    lines += [f"| {name} | {_cell(ours.get(name))} | {_cell(floor.get(name))} "
              f"[{_cell(spread[name][0])}, {_cell(spread[name][1])}] | {_cell(result['real_floor_all'][name])} |"
              for name in STATISTICS]
    if result.get("sample_seeds_spread"):
        lines += ["", f"The same model, {a['sample_seeds']} sets of {a['samples']} samples (seeds {a['seed']}.."
                  f"{a['seed'] + a['sample_seeds'] - 1}; the table's set is the first), mean [min, max]: " + "; ".join(
                      f"{name} {_cell(v[0])} [{_cell(v[1])}, {_cell(v[2])}]"
                      for name, v in result["sample_seeds_spread"].items()) + "."]
    lines += ["", "Bar (issue #23): " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in bars.items()) + "."]
    harmony = result.get("harmonisation")
    if harmony:
        lines += ["", f"Harmonising {harmony['n_samples']} held-out soprano lines (whole pieces) beside Bach's own "
                  "harmonisations of them:", "", "| metric | genlab | Bach |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {_cell(harmony['metrics'][name])} | {_cell(harmony['floor'][name])} |"
                  for name in HARMONY]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-time", default="10m", help="genlab fit's --max-time (e.g. 10m, 90s)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--bars", type=int, default=16, help="bars per sample")
    parser.add_argument("--harmonise", type=int, default=20, help="held-out soprano lines to harmonise (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-seeds", type=int, default=5,
                        help="sets of --samples drawn (seeds seed, seed+1, ...) for the spread of the distances")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    args = parser.parse_args()
    seconds = parse_duration(args.max_time)

    start = time.perf_counter()
    data = load_dataset("chorales", seed=args.seed)
    load_wall = time.perf_counter() - start
    start = time.perf_counter()
    model = fit(data, train={"max_time": seconds, "seed": args.seed})
    fit_wall = time.perf_counter() - start
    steps = int(model.history_[-1]["step"]) if getattr(model, "history_", None) else None

    max_new_tokens = args.bars * (4 * max(model.codec_.meters) + 1)
    start = time.perf_counter()
    samples = [str(s) for s in model.sample(args.samples, generator=torch.Generator().manual_seed(args.seed),
                                            max_new_tokens=max_new_tokens)]
    sample_wall = time.perf_counter() - start

    reference = list(data.x_test)
    mean_tokens = int(np.mean([len(s.split()) for s in samples]))
    excerpts = [excerpt(p, mean_tokens) for p in data.x_train]
    floor, floor_spread = real_floor(excerpts, reference, len(samples), args.seed)
    floor_all = compare_chorales(excerpts, reference).to_dict()
    parsed = [s for s in samples if music.parses(s)]
    ours = compare_chorales(samples, reference) if parsed else None
    sets = [samples] + [[str(s) for s in model.sample(args.samples, max_new_tokens=max_new_tokens,
                                                      generator=torch.Generator().manual_seed(args.seed + k))]
                        for k in range(1, args.sample_seeds)]
    scored = [compare_chorales(texts, reference).to_dict() for texts in sets if any(map(music.parses, texts))]
    seeds_spread = {name: [float(np.mean([d[name] for d in scored])), float(min(d[name] for d in scored)),
                           float(max(d[name] for d in scored))] for name in DISTANCES} if scored else {}
    bach = chorale_statistics(reference)
    bach_parallels = bach.fifths + bach.octaves
    with tempfile.TemporaryDirectory() as folder:
        midi = [decodes_to_midi(s, Path(folder), i) for i, s in enumerate(samples)]
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if parsed:
        music.write_wav(parsed[0], out_dir / "music_sample.wav")
        music.write_midi(parsed[0], out_dir / "music_sample.mid")
        (out_dir / "music_sample.png").write_bytes(piano_roll_png(parsed[0]))

    bars_met = {"every sample parses": len(parsed) == len(samples)}
    if ours is not None:
        bars_met["pitch-class distance <= 2x floor"] = ours.pitch_class_distance <= 2 * floor["pitch_class_distance"]
        bars_met["parallels <= 3x Bach"] = ours.fifths_per_100_beats + ours.octaves_per_100_beats <= 3 * bach_parallels

    harmony, harmony_wall = None, None
    if args.harmonise:
        start = time.perf_counter()
        harmony = evaluate_harmonisation(model, data, n=args.harmonise, seed=args.seed).to_dict()
        harmony_wall = time.perf_counter() - start
        m = harmony["metrics"]
        bars_met["harmonisation keeps the soprano"] = m["soprano_kept"] == 1.0
        bars_met["harmonisation lower voices in range >= 95 %"] = m["lower_in_range"] >= 0.95
        bars_met["harmonisation parallels <= 3x Bach"] = (
            m["fifths_per_100_beats"] + m["octaves_per_100_beats"]
            <= 3 * (harmony["floor"]["fifths_per_100_beats"] + harmony["floor"]["octaves_per_100_beats"]))

    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": data.describe(), "load_wall_s": load_wall, "steps": steps, "fit_wall_s": fit_wall,
        "sample_wall_s": sample_wall, "max_new_tokens": max_new_tokens,
        "mean_bars": float(np.mean([bars_of(s) for s in samples])),
        "model_config": to_dict(model.config), "train_config": to_dict(model.train_config_),
        "genlab": None if ours is None else ours.to_dict(), "real_floor": floor,
        "real_floor_spread": floor_spread, "sample_seeds_spread": seeds_spread,
        "real_floor_all": floor_all, "n_train_pieces": len(excerpts),
        "bach_parallels_per_100_beats": bach_parallels, "midi_share": float(np.mean(midi)), "bars_met": bars_met,
        "harmonisation": None if harmony is None else {**harmony, "wall_s": harmony_wall},
        "examples": samples[:4], "torch_threads": torch.get_num_threads(), "machine": platform.platform(),
        "torch": torch.__version__}
    print(f"{'statistic':26s} {'genlab':>10s} {'real floor':>10s} {'all pieces':>10s}")
    for name in STATISTICS:
        print(f"{name:26s} {_cell(None if ours is None else getattr(ours, name)):>10s} "
              f"{floor[name]:10.4f} {floor_all[name]:10.4f}")
    print(f"Bach's parallel fifths+octaves per 100 beats (held out): {bach_parallels:.3f}; "
          f"samples decoding to MIDI: {np.mean(midi):.3f}; mean bars {result['mean_bars']:.1f}")
    if harmony is not None:
        print(f"\nharmonising {harmony['n_samples']} held-out soprano lines")
        print(f"{'metric':26s} {'genlab':>10s} {'Bach':>10s}")
        for name in HARMONY:
            print(f"{name:26s} {harmony['metrics'][name]:10.4f} {harmony['floor'][name]:10.4f}")
    for name, met in bars_met.items():
        print(f"bar: {name}: {'met' if met else 'NOT met'}")
    write_json(args.out, result)
    write_section(args.doc, "benchmarks/music.py", markdown(result))


if __name__ == "__main__":
    main()
