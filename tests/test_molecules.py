"""The smiles modality: atom-level tokens, SELFIES, randomised SMILES, CSV loading with invalid rows,
MOSES's metrics against RDKit's own functions, and a transformer that fits and samples SMILES."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import rdFingerprintGenerator  # noqa: E402

from genlab.data import registry  # noqa: E402
from genlab.data.smiles import SmilesCodec, randomised_smiles, smiles_file, tokenize_smiles  # noqa: E402
from genlab.errors import ConfigError, DataError  # noqa: E402
from genlab.metrics import molecules  # noqa: E402
from genlab.sampling.decoding import GenerationConfig, generate  # noqa: E402

MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "C[C@@H](N)C(=O)O", "c1cc[nH]c1",
             "O=C1CCCN1", "CCN(CC)CC", "C1CC2CCC1C2", "COc1ccc2[nH]ccc2c1", "FC(F)(F)c1ccccc1", "CC#N"]


def _array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def test_atom_level_tokens_keep_two_letter_atoms_brackets_and_ring_labels_whole():
    assert tokenize_smiles("Clc1ccc(Br)c[nH]1") == ["Cl", "c", "1", "c", "c", "c", "(", "Br", ")", "c", "[nH]", "1"]
    assert tokenize_smiles("C%12CC%12[C@@H]=O") == ["C", "%12", "C", "C", "%12", "[C@@H]", "=", "O"]
    with pytest.raises(DataError, match="not tokenizable"):
        tokenize_smiles("C C")


def test_codec_round_trips_and_survives_its_saved_state():
    codec = SmilesCodec(context=16).fit(_array(MOLECULES))
    again = SmilesCodec.from_state(codec.state())
    for m in MOLECULES:
        assert again.detokenize(codec.tokenize(m)) == m
    rows = codec.encode(_array(MOLECULES[:3]))
    assert rows.shape[1] == 16 and int(rows[0, 0]) == codec.eos
    with pytest.raises(DataError, match="not in this model's vocabulary"):
        codec.tokenize("I")   # iodine never occurs in the training molecules


def test_selfies_codec_decodes_back_to_the_same_molecules():
    pytest.importorskip("selfies")
    codec = SmilesCodec(context=16, selfies=True).fit(_array(MOLECULES))
    for m in MOLECULES:
        assert molecules.canonical(codec.detokenize(codec.tokenize(m))) == molecules.canonical(m)


def test_randomised_smiles_are_other_strings_of_the_same_molecule():
    out = randomised_smiles(MOLECULES, 3)
    assert len(out) == 3 * len(MOLECULES)
    for i, m in enumerate(MOLECULES):
        assert {molecules.canonical(s) for s in out[3 * i:3 * i + 3]} == {molecules.canonical(m)}
    assert sum(s != m for s, m in zip(out, np.repeat(MOLECULES, 3))) > len(MOLECULES)   # most are rewritten


@pytest.mark.parametrize("properties", [(), ("qed",)])
def test_a_kekule_codec_trains_on_kekule_strings_of_the_same_molecules(properties):
    codec = SmilesCodec(context=64, kekule=True, properties=properties, property_dropout=0.0).fit(_array(MOLECULES))
    stream = codec.stream(_array(MOLECULES)).tolist()
    ends = [i for i, t in enumerate(stream) if t == codec.eos]
    written = [codec.detokenize(stream[s + 1:e]) for s, e in zip(ends, ends[1:])]
    assert sorted(map(molecules.canonical, written)) == sorted(map(molecules.canonical, MOLECULES))
    aromatic = [t for w in written for t in tokenize_smiles(w) if t in "bcnops" or t[0] == "[" and t[1].islower()]
    assert not aromatic and "C1=CC=CC=C1" in written and "C1=CNC=C1" in written, written
    twice = randomised_smiles(["c1ccccc1O"], 2, kekule=True)
    assert all("c" not in w and molecules.canonical(w) == "Oc1ccccc1" for w in twice), twice
    again = SmilesCodec.from_state(codec.state())
    assert again.kekule and again.tokens == codec.tokens
    assert codec.detokenize(codec.tokenize("c1cc[nH]c1")) == "c1cc[nH]c1"   # aromatic prompts still tokenize
    with pytest.raises(ConfigError, match="not both"):
        SmilesCodec(context=8, selfies=True, kekule=True)


def test_a_csv_skips_invalid_smiles_with_a_warning_and_refuses_a_mostly_invalid_file(tmp_path, caplog):
    good = tmp_path / "mols.csv"
    good.write_text("name,SMILES\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(MOLECULES + ["C1CC", "xyz"])))
    with caplog.at_level(logging.WARNING, logger="genlab.data.smiles"):
        data = registry.load(good, modality="smiles")
    assert data.modality == "smiles" and len(data.x_train) + len(data.x_test) == len(MOLECULES)
    assert "skipped 2 of 14" in caplog.text
    bad = tmp_path / "bad.csv"
    bad.write_text("smiles\nCCO\nC1CC\nxyz\n(((\n")
    with pytest.raises(DataError, match="3 of 4 SMILES"):
        smiles_file(bad)
    with pytest.raises(DataError, match="no column 'mol'"):
        smiles_file(good, column="mol")


def test_metrics_follow_mosess_definitions():
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", ""]
    result = molecules.evaluate_molecules(samples, train=["C(O)C"])
    assert result.validity == pytest.approx(3 / 5)
    assert result.novelty == pytest.approx(1 / 2)       # ethanol is in train (written otherwise), benzene is not
    # unique@k over the valid samples there are when fewer than k, as MOSES's fraction_unique does after warning
    assert result.unique_1k == result.unique_10k == pytest.approx(2 / 3)
    assert molecules.passes_filters("CCO") and not molecules.passes_filters("C[N+](C)(C)C")   # charged
    # IntDiv against RDKit's own Tanimoto: 1 - mean over all ordered pairs (self pairs included)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [generator.GetFingerprint(Chem.MolFromSmiles(m)) for m in MOLECULES]
    sims = np.array([DataStructs.BulkTanimotoSimilarity(f, fps) for f in fps])
    ours = molecules.internal_diversity(molecules.fingerprints(MOLECULES), p=1, batch=5)
    assert ours == pytest.approx(1 - sims.mean(), abs=1e-6)   # float32 counts of <= 1,024 bits are exact
    assert molecules.internal_diversity(molecules.fingerprints(["CCO"] * 4)) == pytest.approx(0.0)


@pytest.mark.skipif(importlib.util.find_spec("moses") is None, reason="the molsets wheel's data files")
def test_moses_subset_is_seeded_and_valid():
    from genlab.data.smiles import moses

    data = moses(n_train=50, n_test=20)
    assert (len(data.x_train), len(data.x_test)) == (50, 20)
    assert list(moses(n_train=50, n_test=20).x_train) == list(data.x_train)
    assert all(molecules.canonical(s) is not None for s in data.x_train)


def test_the_transformer_fits_and_samples_smiles_strings(tmp_path, single_thread):
    from genlab.data.dataset import Dataset
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    data = Dataset(name="toy", modality="smiles", x_train=_array(MOLECULES * 4), x_test=_array(MOLECULES[:3]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=24)
    model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    samples = model.sample(4, generator=torch.Generator().manual_seed(0), max_new_tokens=20)
    assert samples.shape == (4,) and all(isinstance(s, str) for s in samples)
    # Kekulé SMILES inside the grammar: even a 3-step model writes only molecules RDKit sanitizes
    kekule = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=24, tokenizer="kekule")
    kekule.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    assert kekule.codec_.kekule and not model.codec_.kekule
    many = kekule.sample(64, generator=torch.Generator().manual_seed(1), max_new_tokens=20)
    assert all(Chem.MolFromSmiles(s) is not None for s in many), [s for s in many if Chem.MolFromSmiles(s) is None]
    model.save_pretrained(tmp_path / "run")
    again = TransformerModel.from_pretrained(tmp_path / "run")
    with pytest.raises(ConfigError, match="not 'bpe'"):
        TransformerModel(tokenizer="bpe").fit(data, train=TrainConfig(steps=1))
    assert list(again.sample(4, generator=torch.Generator().manual_seed(0), max_new_tokens=20)) == list(samples)


def test_cli_writes_one_smiles_a_line_or_a_property_table_and_constrain_none_turns_the_grammar_off(
        tmp_path, capsys, single_thread):
    from genlab.cli.app import main
    from genlab.data.dataset import Dataset
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    def run(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    data = Dataset(name="toy", modality="smiles", x_train=_array(MOLECULES * 4), x_test=_array(MOLECULES[:3]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=24)
    model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))
    model.save_pretrained(tmp_path / "run")

    def balanced(smiles):
        tokens = tokenize_smiles(smiles)
        labels = [t for t in tokens if t.isdigit() or t.startswith("%")]
        return tokens.count("(") == tokens.count(")") and all(labels.count(t) % 2 == 0 for t in labels)

    code, out, err = run("sample", str(tmp_path / "run"), "-n", "5")
    assert code == 0 and "<|endoftext|>" not in out and len(out.splitlines()) == 5, (out, err)
    assert all(balanced(s) for s in out.splitlines())
    code, _, err = run("sample", str(tmp_path / "run"), "-n", "5", "--out", str(tmp_path / "m.smi"))
    assert code == 0 and (tmp_path / "m.smi").read_text().splitlines() == out.splitlines(), err
    code, _, err = run("sample", str(tmp_path / "run"), "-n", "5", "--out", str(tmp_path / "m.csv"))
    table = pd.read_csv(tmp_path / "m.csv")
    assert code == 0 and list(table.columns) == ["smiles", "valid", "qed", "logp", "sa", "mw"], err
    assert list(table.smiles.fillna("")) == out.splitlines()
    assert table.qed.notna().tolist() == table.valid.tolist()
    code, _, err = run("sample", str(tmp_path / "run"), "-n", "6", "--constrain", "none", "--out",
                       str(tmp_path / "free.txt"))
    free = model.sample(6, generator=torch.Generator().manual_seed(0), constrain="none")
    assert code == 0 and (tmp_path / "free.txt").read_text() == "".join(f"{s}\n" for s in free), err
    code, _, err = run("sample", str(tmp_path / "run"), "--constrain", "python")
    assert code == 1 and "constrain='python' is not one of: grammar, syntax, none" in err, err


# ------------------------------------------------------------------ property conditioning
class _Recorder:
    """A logits processor that keeps the rows it is first shown (the prompts) and changes nothing."""

    def __init__(self):
        self.prompts = None

    def __call__(self, tokens, scores):
        if self.prompts is None:
            self.prompts = tokens.tolist()
        return scores


def _toy_model(**options):
    from genlab.data.dataset import Dataset
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    data = Dataset(name="toy", modality="smiles", x_train=_array(MOLECULES * 4), x_test=_array(MOLECULES[:3]))
    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=24, **options)
    return model.fit(data, train=TrainConfig(steps=3, batch_size=8, device="cpu"))


@pytest.mark.parametrize("selfies", [False, True])
def test_property_prefixes_round_trip_and_their_bins_survive_the_saved_state(selfies):
    if selfies:
        pytest.importorskip("selfies")
    from genlab.data.smiles import PROPERTIES, molecule_properties

    codec = SmilesCodec(context=16, selfies=selfies, augment=2, properties=PROPERTIES).fit(_array(MOLECULES))
    values = molecule_properties(MOLECULES)
    for name in PROPERTIES:   # tertiles of the training molecules
        low, high = codec.edges[name]
        assert np.mean(values[name] < low) == pytest.approx(1 / 3, abs=0.1) and low < high
    stream = codec.stream(_array(MOLECULES)).tolist()
    starts = [i + 1 for i, t in enumerate(stream[:-1]) if t == codec.eos]
    assert len(starts) == 2 * len(MOLECULES)   # augment=2: two random SMILES of each molecule
    names = [[codec.tokens[t] for t in stream[s:s + 4]] for s in starts]
    assert all([n.split(":")[0] for n in row] == [f"<{p}" for p in PROPERTIES] for row in names)
    anys = sum(n.endswith(":any>") for row in names for n in row)
    assert 0.3 < anys / (4 * len(starts)) < 0.7   # property_dropout 0.5
    qed_bins = [row[0] for row in names[::2]]
    levels = np.searchsorted(codec.edges["qed"], values["qed"], side="right")
    expected = [t if t == "<qed:any>" else f"<qed:{('low', 'mid', 'high')[k]}>" for t, k in zip(qed_bins, levels)]
    assert qed_bins == expected
    ends = starts[1:] + [len(stream)]
    for k, (s, e) in enumerate(zip(starts, ends)):   # the prefix is dropped on the way back
        assert molecules.canonical(codec.detokenize(stream[s:e])) == molecules.canonical(MOLECULES[k // 2])
    again = SmilesCodec.from_state(codec.state())
    assert again.edges == codec.edges and again.tokens == codec.tokens and again.properties == PROPERTIES
    assert again.prefix({"qed": "high"}) == [again.tokens.index(t) for t in
                                             ("<qed:high>", "<logp:any>", "<sa:any>", "<mw:any>")]
    old = {key: value for key, value in codec.state().items()
           if key not in ("properties", "property_dropout", "property_molecules", "edges")}
    assert SmilesCodec.from_state(old).prefix(None) == []   # a run saved before conditioning has no prefix


def test_with_properties_the_network_trains_on_the_property_subset_every_molecule_with_its_bins():
    """Every molecule of the stream carries its bins: training on molecules without them (the first design, 94 % of
    MOSES) left conditioning too rare a signal to move the samples."""
    codec = SmilesCodec(context=16, properties=("qed", "logp"), property_dropout=0.0, property_molecules=3)
    stream = codec.fit(_array(MOLECULES)).stream(_array(MOLECULES)).tolist()
    starts = [i + 1 for i, t in enumerate(stream[:-1]) if t == codec.eos]
    assert len(starts) == 3 < len(MOLECULES)
    heads = [[codec.tokens[t] for t in stream[s:s + 2]] for s in starts]
    assert all(not token.endswith(":any>") for row in heads for token in row)
    written = {molecules.canonical(codec.detokenize(stream[s:e])) for s, e in zip(starts, starts[1:] + [len(stream)])}
    assert written <= {molecules.canonical(m) for m in MOLECULES}
    everything = SmilesCodec(context=16, properties=(), property_molecules=3).fit(_array(MOLECULES))
    assert everything.stream(_array(MOLECULES)).tolist().count(everything.eos) == len(MOLECULES) + 1


def test_sampling_forces_the_condition_tokens_inside_the_grammar(tmp_path, single_thread):
    from genlab.models.transformer import TransformerModel

    model = _toy_model()
    recorder = _Recorder()
    samples = model.sample(4, condition={"qed": "high", "logp": "low"}, generator=torch.Generator().manual_seed(0),
                           logits_processors=[recorder])
    codec = model.codec_
    heads = {tuple(codec.tokens[t] for t in row[1:5]) for row in recorder.prompts}
    assert heads == {("<qed:high>", "<logp:low>", "<sa:any>", "<mw:any>")}
    assert all(isinstance(s, str) and "<" not in s for s in samples)
    recorder = _Recorder()
    model.sample(2, generator=torch.Generator().manual_seed(0), logits_processors=[recorder])
    assert {tuple(codec.tokens[t] for t in row[1:5]) for row in recorder.prompts} == {
        ("<qed:any>", "<logp:any>", "<sa:any>", "<mw:any>")}
    grammar = codec.grammar()   # the prefix keeps a row at a molecule's start: inside the grammar
    from genlab.sampling.token_grammar import GrammarProcessor

    processor = GrammarProcessor(grammar, max_new_tokens=20)
    rows = torch.tensor([[codec.eos, *codec.prefix({"sa": "low"})]] * 3)
    allowed = processor(rows, torch.zeros(3, codec.vocab_size))
    assert processor.off_grammar == 0 and torch.isinf(allowed[:, codec.eos]).all()
    model.save_pretrained(tmp_path / "run")
    again = TransformerModel.from_pretrained(tmp_path / "run")
    g = dict(generator=torch.Generator().manual_seed(1))
    assert list(again.sample(3, condition={"mw": "low"}, **g)) == list(
        model.sample(3, condition={"mw": "low"}, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ConfigError, match="unknown property 'tpsa'.*qed, logp, sa, mw"):
        model.sample(2, condition={"tpsa": "high"})
    with pytest.raises(ConfigError, match="unknown bin 'huge' of qed; the bins: low, mid, high"):
        model.sample(2, condition={"qed": "huge"})
    plain = _toy_model(properties=[])
    assert plain.codec_.prefix(None) == [] and len(plain.codec_.tokens) == len(codec.tokens) - 16
    with pytest.raises(ConfigError, match="without property conditioning"):
        plain.sample(2, condition={"qed": "high"})


def test_guidance_extrapolates_the_conditional_logits_from_the_rows_read_unconditioned(single_thread):
    """Classifier-free guidance (genlab.models.transformer.guidance): the guided logits are
    ``l(any) + s (l(c) - l(any))`` of one batch holding the rows and the same rows with every bin read ``any``;
    guided samples are molecules' strings; beams are refused; without a condition, or at scale 1, guidance
    changes nothing."""
    from genlab.models.transformer.guidance import MOLECULE_GUIDANCE, GuidedNetwork

    model = _toy_model()
    codec, network = model.codec_, model.network_
    unconditioned = codec.unconditioned_ids()
    rows = torch.tensor([[codec.eos, *codec.prefix({"qed": "high"}), *codec.tokenize("CCOC")],
                         [codec.eos, *codec.prefix({"logp": "low", "mw": "high"}), *codec.tokenize("c1cc")]])
    plain_rows = torch.tensor([[unconditioned[i] for i in row] for row in rows.tolist()])
    assert plain_rows[:, 1:5].tolist() == [codec.prefix(None)] * 2 and torch.equal(plain_rows[:, 5:], rows[:, 5:])
    with torch.no_grad():
        both = network(torch.cat([rows, plain_rows]))
        guided = GuidedNetwork(network, torch.tensor(unconditioned), 2.5)(rows)
    assert torch.equal(guided, both[2:] + 2.5 * (both[:2] - both[2:]))
    g = lambda: dict(generator=torch.Generator().manual_seed(3))   # noqa: E731
    samples = model.sample(6, condition={"qed": "high"}, guidance=3, **g())
    assert len(samples) == 6 and all(isinstance(s, str) and "<" not in s for s in samples)
    assert list(model.sample(4, guidance=3, **g())) == list(model.sample(4, **g()))
    assert list(model.sample(4, condition={"qed": "high"}, guidance=MOLECULE_GUIDANCE, **g())) == list(
        model.sample(4, condition={"qed": "high"}, **g()))   # the default applies when none is given
    rows = generate(network, [[codec.eos, *codec.prefix({"qed": "high"})]] * 4, GenerationConfig(max_new_tokens=30),
                    generator=torch.Generator().manual_seed(3), eos=codec.eos)
    assert list(model.sample(4, condition={"qed": "high"}, guidance=1, max_new_tokens=30, constrain="none",
                             **g())) == [codec.detokenize(r) for r in rows]   # scale 1: the plain conditional
    with pytest.raises(ConfigError, match="guidance decodes two rows"):
        model.sample(2, condition={"qed": "high"}, guidance=2, num_beams=2)


# ------------------------------------------------------------------ the command line, bad input included
def _cli(capsys, *argv):
    from genlab.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _one_error(capsys, *argv, match):
    code, out, err = _cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("genlab: error:"), err
    assert match in lines[0], lines[0]
    return lines[0]


TINY = ("--steps", 2, "--batch-size", 4, "--set", "n_layer=1", "--set", "n_head=2", "--set", "n_embd=16",
        "--set", "block_size=24")


def test_cli_fits_a_smi_file_and_samples_molecules_under_several_conditions(tmp_path, capsys, single_thread):
    data = tmp_path / "mols.smi"
    data.write_text("".join(f"{s} mol{i}\n" for i, s in enumerate(MOLECULES * 3)))
    code, _, err = _cli(capsys, "fit", data, *TINY, "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = _cli(capsys, "sample", tmp_path / "run", "-n", 4, "--condition", "qed=high", "--condition",
                        "logp=low", "--out", tmp_path / "m.smi")
    lines = (tmp_path / "m.smi").read_text().splitlines()
    assert code == 0 and len(lines) == 4 and not any("<" in s for s in lines), err


def test_each_bad_molecule_input_is_one_error_line_and_nothing_is_written(tmp_path, capsys, single_thread):
    no_column = tmp_path / "names.csv"
    no_column.write_text("name,weight\nethanol,46\nbenzene,78\n")
    _one_error(capsys, "fit", no_column, "--modality", "smiles", *TINY, "--out", tmp_path / "a",
               match="names.csv: no column named 'smiles' among name, weight")
    mostly_bad = tmp_path / "data.smi"
    mostly_bad.write_text("CCO\nc1ccccc1\nC1CC\nxyz\n(((\nCC#N\nC(C\n")
    _one_error(capsys, "fit", mostly_bad, *TINY, "--out", tmp_path / "b",
               match="data.smi: 4 of 7 lines are not valid SMILES (first: line 3 'C1CC')")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,SMILES\n1,CCO\n2,C1CC\n3,xyz\n")
    _one_error(capsys, "fit", bad_csv, "--modality", "smiles", *TINY, "--out", tmp_path / "c",
               match="2 of 3 SMILES in column 'SMILES' are not valid SMILES (first: line 3 'C1CC')")
    assert not any((tmp_path / name).exists() for name in "abc")
    _toy_model().save_pretrained(tmp_path / "run")
    for condition, match in (("tpsa=high", "unknown property 'tpsa' to condition on; this model's properties: "
                                           "qed, logp, sa, mw"),
                             ("qed=huge", "unknown bin 'huge' of qed; the bins: low, mid, high (low < "),
                             ("high", "condition molecules on properties as property=bin")):
        _one_error(capsys, "sample", tmp_path / "run", "-n", 2, "--condition", condition, "--out",
                   tmp_path / "m.csv", match=match)
        assert not (tmp_path / "m.csv").exists()


def test_property_wasserstein_distances_follow_scipy_and_vanish_against_the_same_molecules():
    from scipy.stats import wasserstein_distance

    from genlab.data.smiles import molecule_properties

    same = molecules.evaluate_molecules(MOLECULES, train=MOLECULES[:2], reference=MOLECULES)
    assert same.qed_wasserstein == pytest.approx(0.0, abs=1e-12) and same.sa_wasserstein == pytest.approx(0.0)
    other = molecules.evaluate_molecules(MOLECULES[:6], train=MOLECULES[:2], reference=MOLECULES[6:])
    a, b = molecule_properties(MOLECULES[:6], ("logp",)), molecule_properties(MOLECULES[6:], ("logp",))
    assert other.logp_wasserstein == pytest.approx(wasserstein_distance(a["logp"], b["logp"]))
    assert molecules.evaluate_molecules(MOLECULES, train=[]).qed_wasserstein is None


def test_a_molecules_likelihood_is_read_after_the_any_prefix_and_selfies_take_conditions(single_thread):
    pytest.importorskip("selfies")
    model = _toy_model()
    codec = model.codec_
    scored = model.token_log_likelihood(_array(["CCO"]))
    assert scored.n_tokens.tolist() == [4]   # C, C, O and eos; the prefix is context only
    rows = torch.tensor([[codec.eos, *codec.prefix(None), *codec.tokenize("CCO"), codec.eos]])
    with torch.no_grad():
        logits = model.network_(rows[:, :-1]).log_softmax(-1)                        # (1, 8, V)
    picked = logits[0, 4:].gather(-1, rows[0, 5:, None])[:, 0]
    assert scored.log_prob[0] == pytest.approx(float(picked.sum()), abs=1e-5)
    selfies = _toy_model(tokenizer="selfies", augment=2)
    drawn = selfies.sample(3, condition={"sa": "low"}, generator=torch.Generator().manual_seed(0), max_new_tokens=12)
    assert all(isinstance(s, str) and "<" not in s for s in drawn)


def test_bad_property_options_fail_before_any_data_is_read(tmp_path, capsys):
    from genlab.models.transformer import TransformerModel

    with pytest.raises(ConfigError, match="properties must be distinct names among qed, logp, sa, mw"):
        TransformerModel(properties=["tpsa"])
    with pytest.raises(ConfigError, match=r"property_dropout must be in \[0, 1\]"):
        TransformerModel(property_dropout=1.5)
    _one_error(capsys, "fit", tmp_path / "nowhere.smi", "--family", "transformer", "--set", 'properties=["qed","qed"]',
               match="properties must be distinct names")
