"""Caption-conditioned diffusion on ``shapes``, judged by an independent attribute classifier.

1. The judge (:mod:`genlab.metrics.shapes_judge`): a CNN trained on fresh real renders of every colour-shape
   pair (trained once and cached, as ``genlab eval`` caches it); its per-attribute and whole-scene accuracy
   on other fresh renders is reported first.
2. The model, fitted as a user would: ``genlab.fit("shapes", train={"max_time": T})`` (``genlab fit shapes
   --max-time T``): the recommended family (diffusion) with the settings genlab chooses for captioned images,
   torch's default threads, a wall-clock budget. ``--option KEY=VALUE`` overrides a model option (for the
   comparisons that chose those defaults; the JSON records every option given).
3. Binding at the model's default guidance and at each of ``--guidances``: for fresh test captions of one
   object with a seen colour-shape pair, one object with a held-out pair (never rendered in training), and
   two objects with a relation, one sample per caption; a sample is right when the judge reads exactly the
   caption's objects with all their attributes and cell (one object) or relation (two)
   (:func:`~genlab.metrics.shapes_judge.scene_correct`); per-attribute accuracy for one-object scenes,
   and for two-object scenes where they fail (:func:`two_object_diagnosis`).
   Real renders of the same captions, judged the same way, give the ceiling.
4. Guidance sweep: for ``--sweep-prompts`` seen one-object captions, 16 samples each at guidance 1, 2,
   3, 5: the share judged right, and diversity as the share of distinct (cell, size) readings among the
   16, against the caption-fixed truth (1/16 when all agree; position and size are fixed by a one-object
   caption, so a faithful model has little of this diversity: the trade-off shows as how fast it drops).
5. Fréchet distance in the judge's feature space between the default-guidance samples of step 3 and real
   renders of the same captions, beside the real-vs-real floor at the same sample size.
6. SDEdit's realism/faithfulness trade-off: each seen one-object render of step 3 edited under the next
   render's caption at strength 0.3, 0.6, 0.9: the share the judge reads as the new caption, the share still
   read as the input's scene, and the mean absolute pixel change (grids: 8 inputs above their edits).

The issue's bars (``genlab fit shapes --max-time 30m`` on an idle 2-core machine, guidance as the defaults
choose): one object all four attributes right >= 80 % on seen pairs and >= 50 % on held-out pairs, two
objects with their relation >= 40 %. T2I-CompBench (Huang et al. 2023) scores Stable Diffusion with
BLIP-VQA and a detector, not a judge trained on the renders' own grammar, so its numbers (spatial 0.12-0.13
for SD 1.4/2) are context, not a comparison.

It writes its section of ``docs/text_to_image.md`` (``--doc``; ``--from-json REPORT`` writes it again from a
saved report, without training).

    python benchmarks/text_to_image.py --max-time 1800
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from doc_sections import write_section
from user_fit import fit_as_user, literal_options
from genlab.data import shapes
from genlab.io import write_json
from genlab.metrics import frechet_distance
from genlab.metrics.shapes_judge import JudgeTraining, attribute_accuracy, cached_judge, scene_correct
from genlab.report.figures import save_image_grid

DEFAULT_OUT = Path(__file__).parent / "results" / "text_to_image.json"
DEFAULT_DOC = Path(__file__).parent.parent / "docs" / "text_to_image.md"
#: The issue's bars per binding group (share of samples judged right).
BARS = {"single seen": 0.80, "single held-out": 0.50, "two objects": 0.40}
GROUP_NAMES = {"single seen": "one object, seen colour-shape pair, all four attributes right",
               "single held-out": "one object, held-out pair (never rendered in training)",
               "two objects": "two objects with their relation"}
GUIDANCES = (1.0, 2.0, 3.0, 5.0)
STRENGTHS = (0.3, 0.6, 0.9)


def two_object_diagnosis(reading, objects: np.ndarray, relation: np.ndarray) -> dict[str, float]:
    """Where two-object scenes fail, step by step: the share judged to hold exactly two objects; of all, the
    share whose two objects have the caption's shapes, colours and sizes in either placement; of those, the
    share whose placement also satisfies the relation (= scene right)."""
    two = reading.occupied.sum(axis=1) == 2
    attributes_right = np.zeros(len(objects), dtype=bool)
    for i in np.flatnonzero(two):
        cells = np.flatnonzero(reading.occupied[i])
        found = sorted(tuple(reading.attributes[i, c]) for c in cells)
        attributes_right[i] = found == sorted(tuple(objects[i, k, :3]) for k in range(2))
    right = scene_correct(reading, objects, relation)
    return {"two_objects_found": float(two.mean()), "both_objects_right": float(attributes_right.mean()),
            "relation_right_given_objects": float(right[attributes_right].mean()) if attributes_right.any()
            else 0.0}


def markdown(report: dict) -> str:
    """The doc section: the command and run, the binding table at every guidance measured beside the real
    renders and the bars, per-attribute accuracy, the Fréchet distance, the guidance sweep and SDEdit."""
    args = report["args"]
    options = "".join(f" --option {o}" for o in args.get("option", []))
    binding = report["binding"]
    default = binding[0]["guidance"]
    guidances = list(dict.fromkeys(row["guidance"] for row in binding))
    cell = {(row["group"], row["guidance"]): row for row in binding}
    judge = report["judge"]
    lines = [
        f"`python benchmarks/text_to_image.py --max-time {args['max_time']:g} --n {args['n']} --guidances "
        f"{args['guidances']} --sweep-prompts {args['sweep_prompts']}{options}` (load {report['load_at_start']:.2f} at "
        f"the start, {report['threads']} torch threads): `genlab.fit(\"shapes\", train={{\"max_time\": "
        f"{args['max_time']:g}}})`, {report['train_steps']:,} steps in {report['train_wall_s']:,.0f} s. One sample "
        f"per caption, {args['n']} captions per group, seed 0; the judge: shape {judge['shape']:.1%}, colour "
        f"{judge['colour']:.1%}, size {judge['size']:.1%}, position {judge['position']:.2%} on 2,000 fresh renders "
        f"({report['judge_cpu_s']:.0f} CPU s, or read from its cache).",
        "",
        "| group | " + " | ".join(f"guidance {g:g}" + (" (the default)" if g == default else "") for g in guidances)
        + " | real renders | bar |",
        "| --- | " + " | ".join("---" for _ in guidances) + " | --- | --- |",
    ]
    for group, name in GROUP_NAMES.items():
        values = [cell[group, g]["model"] for g in guidances]
        met = "met" if values[0] >= BARS[group] else "not met"
        lines.append(f"| {name} | " + " | ".join(f"**{v:.1%}**" if i == 0 else f"{v:.1%}" for i, v in enumerate(values))
                     + f" | {cell[group, default]['real']:.1%} | >= {BARS[group]:.0%}: {met} |")
    seen, held = cell["single seen", default]["attributes"], cell["single held-out", default]["attributes"]
    frechet, sweep = report["frechet"], report["sweep"]
    lines += [
        "",
        f"Per attribute at guidance {default:g}, one object (seen / held-out pairs): "
        + ", ".join(f"{a} {seen[a]:.1%} / {held[a]:.1%}" for a in ("shape", "colour", "size", "position")) + ". "
        f"Fréchet distance in the judge's features over the {frechet['n']} default-guidance samples: "
        f"{frechet['model_vs_real']:.1f}, against {frechet['real_vs_real_floor']:.1f} for the same captions rendered "
        f"again. Guidance sweep ({args['sweep_prompts']} prompts x 16 samples): "
        + "; ".join(f"guidance {row['guidance']:g} {row['right']:.0%} right ({row['distinct_share']:.1%} distinct)"
                    for row in sweep) + ". "
        f"Sampling a group of {args['n']}: {min(r['sample_s'] for r in binding):.1f}-"
        f"{max(r['sample_s'] for r in binding):.1f} s (the first call includes the sampler's set-up).",
        "",
        "SDEdit, each seen one-object render edited under the next render's caption at the default guidance:",
        "",
        "| strength | new caption's scene | input's scene kept | mean absolute pixel change |",
        "| --- | --- | --- | --- |",
        *(f"| {row['strength']:g} | {row['new_caption_right']:.1%} | {row['input_scene_kept']:.1%} | "
          f"{row['mean_abs_pixel_change']:.3f} |" for row in report["sdedit"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Train the judge and the model, score them, print the tables and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=1800.0, help="training wall-clock seconds")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a diffusion model option over genlab's defaults (a Python literal), e.g. patch=2")
    parser.add_argument("--judge-images", type=int, default=8000)
    parser.add_argument("--judge-steps", type=int, default=800)
    parser.add_argument("--n", type=int, default=48, help="captions per binding group")
    parser.add_argument("--guidances", default="3,5", help="guidances measured besides the model's default")
    parser.add_argument("--sweep-prompts", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--run-dir", type=Path, help="also save the fitted run here (genlab fit --out)")
    parser.add_argument("--doc", default=str(DEFAULT_DOC), help="page whose section this writes ('' = none)")
    parser.add_argument("--from-json", type=Path, help="write the doc section from this saved report; no run")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        write_section(Path(args.doc), "benchmarks/text_to_image.py", markdown(json.loads(args.from_json.read_text(encoding="utf-8"))))
        print(f"wrote its section of {args.doc} from {args.from_json}")
        return
    options = literal_options(args.option)
    report: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_at_start": os.getloadavg()[0]}

    start = time.process_time()
    judge = cached_judge(JudgeTraining(args.judge_images, args.judge_steps))   # genlab eval's judge and cache
    report["judge_cpu_s"] = time.process_time() - start   # training it, or reading it from the cache
    check = shapes.scenes(2000, seed=777, split="test")
    readings = judge.predict(check.images)
    correct = scene_correct(readings, check.objects, check.relation)
    report["judge"] = {**attribute_accuracy(readings, check.objects), "scene": float(correct.mean()),
                       "scene_held_out": float(correct[check.held_out].mean())}
    print(f"judge: {report['judge_cpu_s']:.0f} CPU s; test accuracy " +
          ", ".join(f"{k} {v:.2%}" for k, v in report["judge"].items()), flush=True)

    model = fit_as_user(report, "shapes", max_time=args.max_time, run_dir=args.run_dir, **options)
    print(f"diffusion: {report['train_steps']} steps in {report['train_wall_s']:.0f} s, "
          f"{report['model']['parameters']:,} parameters; channels {model.config.channels}, patch "
          f"{model.config.patch}, batch {model.train_config_.batch_size}, lr {model.train_config_.lr}, "
          f"guidance {model.config.guidance}; options given: {options or 'none'}", flush=True)

    pool = shapes.scenes(20 * args.n, seed=4242, split="test")
    single = pool.relation < 0
    groups = {"single seen": np.flatnonzero(single & ~pool.held_out)[:args.n],
              "single held-out": np.flatnonzero(single & pool.held_out)[:args.n],
              "two objects": np.flatnonzero(~single)[:args.n]}
    real_right = {name: scene_correct(judge.predict(pool.images[index]), pool.objects[index], pool.relation[index])
                  for name, index in groups.items()}
    guidances = [model.config.guidance] + [float(g) for g in args.guidances.split(",") if g
                                           and float(g) != model.config.guidance]
    report["binding"] = []
    fakes, reals = [], []
    print(f"\nbinding (one sample per caption; real = the captions' own renders; default guidance "
          f"{model.config.guidance})")
    print(f"{'guidance':>8} {'group':<16} {'n':>4} {'model':>7} {'real':>7}  per attribute (one object), "
          f"failure steps (two)")
    for guidance in guidances:
        for name, index in groups.items():
            start = time.perf_counter()
            images = model.sample(len(index), prompt=[str(c) for c in pool.captions[index]], guidance=guidance,
                                  generator=torch.Generator().manual_seed(0))
            seconds = time.perf_counter() - start
            reading = judge.predict(images)
            ok = scene_correct(reading, pool.objects[index], pool.relation[index])
            row = {"guidance": guidance, "group": name, "n": int(len(index)), "model": float(ok.mean()),
                   "real": float(real_right[name].mean()), "sample_s": seconds}
            if name != "two objects":
                row["attributes"] = attribute_accuracy(reading, pool.objects[index])
            else:
                row["attributes"] = two_object_diagnosis(reading, pool.objects[index], pool.relation[index])
            report["binding"].append(row)
            attributes = ", ".join(f"{k} {v:.0%}" for k, v in row["attributes"].items())
            print(f"{guidance:>8} {name:<16} {len(index):>4} {ok.mean():>7.1%} {real_right[name].mean():>7.1%}  "
                  f"{attributes}", flush=True)
            if guidance == model.config.guidance:
                fakes.append(images)
                reals.append(pool.images[index])
                save_image_grid(images[:16], args.out.with_name(f"text_to_image_{name.replace(' ', '_')}.png"))

    print("\nguidance sweep (16 samples per prompt): judged right, distinct (cell, size) readings")
    sweep_prompts = np.flatnonzero(single & ~pool.held_out)[-args.sweep_prompts:]
    report["sweep"] = []
    for guidance in GUIDANCES:
        right, distinct = [], []
        for i in sweep_prompts:
            images = model.sample(16, prompt=str(pool.captions[i]), guidance=guidance,
                                  generator=torch.Generator().manual_seed(1))
            reading = judge.predict(images)
            right.append(scene_correct(reading, np.repeat(pool.objects[i:i + 1], 16, 0),
                                       np.repeat(pool.relation[i:i + 1], 16)).mean())
            keys = {(tuple(np.flatnonzero(o)), tuple(a[np.flatnonzero(o), 2]))
                    for o, a in zip(reading.occupied, reading.attributes)}
            distinct.append(len(keys) / 16)
        row = {"guidance": guidance, "right": float(np.mean(right)), "distinct_share": float(np.mean(distinct))}
        report["sweep"].append(row)
        print(f"  guidance {guidance:>3}: right {row['right']:.1%}, distinct {row['distinct_share']:.1%}", flush=True)

    fake, real = np.concatenate(fakes), np.concatenate(reals)
    # the floor: the same scenes rendered again with fresh jitter
    rerender = np.stack([shapes.render([tuple(o) for o in pool.objects[i] if o[3] >= 0],
                                       np.random.default_rng(int(i)).uniform(-shapes.JITTER, shapes.JITTER, (2, 2)))
                         for index in groups.values() for i in index])
    report["frechet"] = {"model_vs_real": frechet_distance(real=judge.embed(real), fake=judge.embed(fake)),
                         "real_vs_real_floor": frechet_distance(real=judge.embed(real), fake=judge.embed(rerender)),
                         "n": int(len(real))}
    print(f"\nFréchet distance (judge features, n={len(real)}): model {report['frechet']['model_vs_real']:.2f}, "
          f"real re-render floor {report['frechet']['real_vs_real_floor']:.2f}")

    print("\nSDEdit: a seen one-object render edited towards another scene's caption, at the default guidance")
    sources = groups["single seen"]
    targets = np.roll(sources, 1)            # each render gets the next caption: another shape, colour or place
    report["sdedit"] = []
    for strength in STRENGTHS:
        edits = model.sample(len(sources), init=pool.images[sources], strength=strength,
                             prompt=[str(c) for c in pool.captions[targets]],
                             generator=torch.Generator().manual_seed(2))
        reading = judge.predict(edits)
        row = {"strength": strength,
               "new_caption_right": float(scene_correct(reading, pool.objects[targets], pool.relation[targets]).mean()),
               "input_scene_kept": float(scene_correct(reading, pool.objects[sources], pool.relation[sources]).mean()),
               "mean_abs_pixel_change": float(np.abs(edits - pool.images[sources]).mean())}
        report["sdedit"].append(row)
        save_image_grid(np.concatenate([pool.images[sources[:8]], edits[:8]]),
                        args.out.with_name(f"text_to_image_sdedit_{strength}.png"))
        print(f"  strength {strength}: new caption right {row['new_caption_right']:.1%}, input scene kept "
              f"{row['input_scene_kept']:.1%}, mean |pixel change| {row['mean_abs_pixel_change']:.3f}", flush=True)
    write_json(args.out, report)
    print(f"wrote {args.out}")
    if args.doc:
        write_section(Path(args.doc), "benchmarks/text_to_image.py", markdown(report))
        print(f"wrote its section of {args.doc}")


if __name__ == "__main__":
    main()
