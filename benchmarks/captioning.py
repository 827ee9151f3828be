"""Captions of ``shapes`` images: the transformer fitted on captioned images, scored against each image's own.

1. The model, fitted as a user would: ``genlab.fit("shapes", family="transformer", train={"max_time": T})``
   (``genlab fit shapes --family transformer --max-time T``): the captioner
   (:mod:`genlab.models.transformer.captioning`) with the settings genlab chooses for captioned images, torch's
   default threads, a wall-clock budget. ``--option KEY=VALUE`` overrides a model option and ``--train
   KEY=VALUE`` a training setting (for the comparisons that chose the defaults; the JSON records each).
2. ``genlab.evaluate`` on the ``shapes`` test split (:mod:`genlab.evaluation.captioning`): one greedy caption per
   test image (the captioner's default decoding), read back with the scene grammar and compared with the
   test caption's scene: all four attributes of one-object images (the bar), the same for colour-shape
   pairs never rendered in training, each attribute, and two-object images (both objects and the relation
   or its mirror: a lower bound). Also the same counts at temperature 1 (sampled captions), and greedy at
   each of ``--guidances`` (classifier-free guidance away from the captions' language model; 1 = none).
3. A discriminative peer: the shapes judge's CNN (:mod:`genlab.metrics.shapes_judge`, one head per attribute
   and grid cell) trained for ``--peer-steps`` steps on renders of the captioner's training split (no
   held-out pair), reading the same one-object test images; its CPU time beside the captioner's.
4. Captioning speed: test images captioned per second (greedy, one thread set as torch's default).

The issue's bar: all attributes right on >= 95 % of held-out one-object renders. It writes its section of
``docs/text_to_image.md``.

    python benchmarks/captioning.py --max-time 600
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import genlab
from doc_sections import write_section
from user_fit import fit_as_user, literal_options
from genlab.data import shapes
from genlab.evaluation.captioning import caption_hits
from genlab.evaluation.report import seeded_rows
from genlab.io import write_json
from genlab.models.transformer.captioning import CAPTION_GUIDANCE
from genlab.metrics.shapes_judge import caption_truth, scene_correct, train_judge

DEFAULT_OUT = Path(__file__).parent / "results" / "captioning.json"
DEFAULT_DOC = Path(__file__).parent.parent / "docs" / "text_to_image.md"
EXAMPLES = 8


def markdown(report: dict) -> str:
    """The doc section: the command, the bar's rows beside the peer, and a few held-out examples."""
    ev, hot, peer = report["evaluation"], report["temperature_1"], report["peer"]
    model, train = report["model"], report["train"]

    def row(name: str, label: str) -> str:
        low, high = ev["intervals"].get(name, (float("nan"), float("nan")))
        peer_value = peer.get(name)
        return (f"| {label} | **{ev['metrics'][name]:.1%}** [{low:.1%}, {high:.1%}] | {hot.get(name, float('nan')):.1%} "
                f"| {'' if peer_value is None else f'{peer_value:.1%}'} |")

    lines = [
        "### Results: the defaults",
        "",
        f"`python benchmarks/captioning.py --max-time {report['args']['max_time']:g}"
        + "".join(f" --option {o}" for o in report["args"]["option"])
        + "".join(f" --train {o}" for o in report["args"]["train"]) + "` "
        f"(load {report['load_at_start']:.2f} at the start, {report['threads']} torch threads): "
        f"`genlab.fit(\"shapes\", family=\"transformer\", train={{\"max_time\": {report['args']['max_time']:g}}})`, "
        f"{report['train_steps']} steps in {report['train_wall_s']:.0f} s; {model['n_layer']} layers, width "
        f"{model['n_embd']}, batch {train['batch_size']}, lr {train['lr']:g}, {model['parameters']:,} parameters. "
        f"Scored on {ev['n_samples']} test images (one caption each; the test split draws every colour-shape pair).",
        "",
        "| one-object test images | greedy (default) [95 % interval] | temperature 1 | CNN peer |",
        "| --- | --- | --- | --- |",
        row("caption_accuracy_one", "all four attributes right (bar 95 %)"),
        row("caption_accuracy_held_out", "the same, colour-shape pairs never rendered in training"),
        *(row(f"{a}_accuracy", a) for a in ("shape", "colour", "size", "position")),
        row("caption_accuracy_two", "two objects: both and their relation (lower bound)"),
        "",
        f"The CNN peer is the shapes judge's network trained {peer['steps']} steps ({peer['cpu_s']:.0f} CPU s) on "
        f"renders of the training split (no held-out pair), reading the same images; the captioner trained for "
        f"{report['train_cpu_s']:.0f} CPU s. Captioning speed: {report['captions_per_s']:.0f} images a second "
        f"(greedy, batches of 256).",
        "",
        "Greedy at other guidance scales (1: none; the default is "
        f"{report['default_guidance']:g}):",
        "",
        "| guidance | one object | held-out pairs | shape | two objects |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {g} | {r['caption_accuracy_one']:.1%} | {r['caption_accuracy_held_out']:.1%} | {r['shape_accuracy']:.1%} "
          f"| {r['caption_accuracy_two']:.1%} |" for g, r in report["guidance"].items()),
        "",
        "Held-out pairs, greedy captions:",
        "",
        "| test caption | the model's caption |",
        "| --- | --- |",
        *(f"| {truth} | {said} |" for truth, said in report["examples"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Fit the captioner, score it and the peer, print the table, write the JSON and the doc section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=600.0, help="training wall-clock seconds")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a transformer model option over genlab's defaults (a Python literal)")
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting over genlab's defaults (a Python literal), e.g. lr=3e-3")
    parser.add_argument("--n", type=int, default=2000, help="test images captioned")
    parser.add_argument("--peer-steps", type=int, default=800)
    parser.add_argument("--guidances", default="1,2,3", help="guidance scales measured besides the default")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--doc", default=str(DEFAULT_DOC), help="page whose section this writes ('' = none)")
    parser.add_argument("--run-dir", type=Path, help="also save the fitted run here (genlab fit --out)")
    args = parser.parse_args(argv)
    options, train = literal_options(args.option), literal_options(args.train)
    report: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_at_start": os.getloadavg()[0]}
    print(f"load {report['load_at_start']:.2f}, {report['threads']} threads", flush=True)

    model = fit_as_user(report, "shapes", family="transformer", max_time=args.max_time, train=train,
                        run_dir=args.run_dir, **options)
    print(f"captioner: {report['train_steps']} steps in {report['train_wall_s']:.0f} s, "
          f"{report['model']['parameters']:,} parameters; options given: {options or 'none'}, "
          f"training: {train or 'defaults'}", flush=True)

    report["default_guidance"] = CAPTION_GUIDANCE
    data = genlab.datasets.load("shapes")
    start = time.perf_counter()
    evaluation = genlab.evaluate(model, data, n=args.n, seed=0)
    report["captions_per_s"] = args.n / (time.perf_counter() - start)
    report["evaluation"] = {"metrics": evaluation.metrics, "intervals": evaluation.intervals,
                            "floor": evaluation.floor, "n_samples": evaluation.n_samples}

    rows, _ = seeded_rows(len(data.x_test), args.n, 0)   # the images evaluate captioned
    images, truth = data.x_test[rows], np.asarray([str(c) for c in data.captions_test[rows]], dtype=object)
    objects, relation = caption_truth(truth)
    one = relation < 0
    held = one & np.array([shapes.is_held_out(o[0], o[1]) for o in objects[:, 0]])

    def accuracies(**sampling) -> dict[str, float]:
        written = model.sample(len(rows), image=images, generator=torch.Generator().manual_seed(0), **sampling)
        hits = caption_hits(np.asarray(written, dtype=object), truth)
        return {"caption_accuracy_one": float(hits["all"][one].mean()),
                "caption_accuracy_held_out": float(hits["all"][held].mean()),
                "caption_accuracy_two": float(hits["all"][~one].mean()),
                **{f"{a}_accuracy": float(hits[a][one].mean()) for a in ("shape", "colour", "size", "position")}}

    report["temperature_1"] = accuracies(temperature=1.0)
    report["guidance"] = {g: accuracies(guidance=float(g)) for g in args.guidances.split(",") if g}
    greedy = model.sample(int(held.sum()), image=images[held], generator=torch.Generator().manual_seed(0))
    report["examples"] = [[str(t), str(g)] for t, g in zip(truth[held][:EXAMPLES], greedy[:EXAMPLES])]

    cpu = time.process_time()
    peer = train_judge(steps=args.peer_steps, split="train")
    reading = peer.predict(images[one])
    right = scene_correct(reading, objects[one], relation[one])
    found = reading.attributes[np.arange(one.sum()), objects[one, 0, 3]]        # attributes at the true cell
    report["peer"] = {"steps": args.peer_steps, "cpu_s": time.process_time() - cpu,
                      "caption_accuracy_one": float(right.mean()),
                      "caption_accuracy_held_out": float(right[held[one]].mean()),
                      **{f"{a}_accuracy": float((found[:, k] == objects[one, 0, k]).mean())
                         for k, a in enumerate(("shape", "colour", "size"))},
                      "position_accuracy": float(reading.occupied[np.arange(one.sum()), objects[one, 0, 3]].mean())}

    print(f"\n{'one-object test images':<44} {'greedy':>8} {'T=1':>8} {'CNN peer':>9}")
    for name in ("caption_accuracy_one", "caption_accuracy_held_out", "shape_accuracy", "colour_accuracy",
                 "size_accuracy", "position_accuracy", "caption_accuracy_two"):
        peer_value = report["peer"].get(name)
        print(f"{name:<44} {evaluation.metrics[name]:>8.1%} {report['temperature_1'][name]:>8.1%} "
              f"{'' if peer_value is None else f'{peer_value:.1%}':>9}")
    for g, row in report["guidance"].items():
        print(f"guidance {g}: one {row['caption_accuracy_one']:.1%}, held-out {row['caption_accuracy_held_out']:.1%}, "
              f"shape {row['shape_accuracy']:.1%}, two {row['caption_accuracy_two']:.1%}")
    print(f"captions a second: {report['captions_per_s']:.0f}; peer {report['peer']['cpu_s']:.0f} CPU s, "
          f"captioner {report['train_cpu_s']:.0f} CPU s")
    for t, g in report["examples"]:
        print(f"  {t!r} -> {g!r}")
    write_json(args.out, report)
    print(f"wrote {args.out}")
    if args.doc:
        write_section(Path(args.doc), "benchmarks/captioning.py", markdown(report))
        print(f"wrote its section of {args.doc}")


if __name__ == "__main__":
    main()
