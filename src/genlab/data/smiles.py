"""Molecules as SMILES strings: datasets, and the atom-level tokenizer that makes them token streams.

A ``smiles`` :class:`~genlab.data.dataset.Dataset` holds molecules as object arrays ``(n,)`` of ``str``,
one SMILES each (record shape ``()``, like text). Sources:

- ``moses``: the MOSES benchmark (Polykovskiy et al. 2020, "Molecular Sets (MOSES)") as shipped in the
  ``molsets`` wheel, ``moses/dataset/data/train.csv.gz`` (1,584,663 molecules) and ``test.csv.gz``
  (176,074). Only those files are read (the wheel is installed with ``--no-deps``; its code is never
  imported). ``n_train`` keeps a seeded random subset of the training molecules;
- any ``.smi`` file (one SMILES a line) or ``.csv`` file with a SMILES column: every SMILES is parsed by
  RDKit, unparsable ones are counted and skipped with one warning, and the file is refused when more than half
  are invalid (the error counts them and names the first). Split 80/20 with the fixed split.

:class:`SmilesCodec` tokenizes at the atom level with the regular expression of Schwaller et al. 2019
("Molecular Transformer", their footnote): a bracket atom (``[nH]``, ``[C@@H]``, ``[O-]``) is one token,
as are ``Cl``, ``Br``, the aromatic atoms, bonds, branches, ring-closure digits and ``%nn``. With
``selfies=True`` the molecules are first written as SELFIES (Krenn et al. 2020, the ``selfies``
package), whose every token string decodes to a valid molecule; samples are decoded back to SMILES.
Documents are encoded as one stream ``eos mol_1 eos mol_2 ... eos`` cut into windows, exactly as
:class:`~genlab.data.text.TextCodec` does for text, so the transformer samples one molecule from ``eos``
to the next ``eos``.

Randomised SMILES (Arús-Pous et al. 2019, "Randomized SMILES strings improve the quality of molecular
generative models"): ``augment=k`` writes each training molecule as ``k`` random (non-canonical) SMILES,
drawn once with a fixed seed when the codec encodes (a static augmentation; the paper redraws them every
epoch).

Kekulé SMILES (``kekule=True``): each training molecule is written with its aromatic rings as alternating single
and double bonds between uppercase atoms (RDKit's kekulisation: ``c1ccccc1`` -> ``C1=CC=CC=C1``, ``c1cc[nH]c1`` ->
``C1=CNC=C1``), so the network never writes an aromatic atom and every sample the grammar finishes is a molecule
(a ring whose double bonds do not alternate is a valid non-aromatic one). A sampled ring RDKit finds aromatic
reads as aromatic again. The vocabulary keeps the molecules' aromatic tokens too, so aromatic prompts tokenize.

Sampling inside the grammar (:meth:`SmilesCodec.grammar`, on by default): a :class:`SmilesGrammar` (rings and
branches closed, ring bonds between distinct atoms, no atom with more bonds than RDKit accepts) and on top of it
the Kekulé check of :mod:`genlab.data.smiles_kekule` (aromatic rings whose electrons pair up); for Kekulé SMILES
the grammar alone, allowing no aromatic atom.

Property conditioning (prefix tokens, the transformer's form of conditioning in DESIGN.md): at fit time the codec
computes each training molecule's RDKit properties (:data:`PROPERTIES`: QED, Crippen logP, the SA score, molecular
weight), cuts each into tertiles (``low``/``mid``/``high``; the two edges per property are saved in the codec's
state, so a loaded run bins as it was trained) and starts each molecule with one token per property,
``eos <qed:high> <logp:low> <sa:mid> <mw:mid> C C O eos ...``. Each token is replaced by its property's ``any``
token with probability ``property_dropout`` (classifier-free style, Ho & Salimans 2022: one network is the
conditional and the unconditional model); at 0.5, the default, every subset of given properties, the empty one
included, is equally frequent in training (1/16 each), so sampling with any set of conditions, or none (every
property ``any``), is trained as often as any other. Sampling writes the prefix (:meth:`SmilesCodec.prefix`) and
draws the molecule after it; :meth:`SmilesCodec.detokenize` drops the prefix.

Why on by default: the prefix costs 4 tokens of a 64-token context (a MOSES molecule is about 35 tokens) and the
properties cost RDKit about 1.1 ms a molecule (measured on MOSES, one core: QED 0.65 ms, SA 0.24, logP 0.17, MW
0.002). So the network trains on at most ``property_molecules`` molecules (a seeded subset, default 100,000:
about 2 minutes of RDKit), all of them with their properties: a 20-minute CPU fit sees about 860,000 molecules,
some 8 passes over that subset. Training on all 1.6 million of MOSES with only 100,000 carrying bins (the first
design) left 6 % of the molecules seen with a prefix, and conditioning on QED moved the mean by 0.02 standard
deviations (``benchmarks/molecules.py``, 20 minutes). Raise ``property_molecules`` to train on more molecules, or
pass ``properties=[]`` to turn conditioning off and train on every molecule. The prefix is drawn once when the
codec encodes, like the randomised SMILES.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from genlab.data.dataset import Dataset, fixed_split
from genlab.data.smiles_grammar import SmilesGrammar
from genlab.data.smiles_kekule import KekuleGrammar
from genlab.data.text import VocabularyCodec, string_array
from genlab.errors import ConfigError, DataError, NotSupportedError

logger = logging.getLogger(__name__)

#: Schwaller et al. 2019's SMILES token pattern.
SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])")
#: The MOSES files inside the molsets wheel, by split.
MOSES_FILES = {"train": "train.csv.gz", "test": "test.csv.gz", "test_scaffolds": "test_scaffolds.csv.gz"}
#: Seed of the ``n_train`` subset and of the randomised SMILES.
SUBSET_SEED = 20_240_601
#: Properties a molecule can be conditioned on (module doc), in prefix order.
PROPERTIES = ("qed", "logp", "sa", "mw")
#: A property's bins, lowest first (tertiles of the training molecules), and the token of an unknown bin.
BINS = ("low", "mid", "high")
ANY = "any"
#: How many training molecules set the bin edges (a seeded subset: tertiles need no more).
EDGE_MOLECULES = 10_000


def require_rdkit():
    """``rdkit.Chem`` with its warnings silenced, or a NotSupportedError naming the extra to install."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise NotSupportedError("molecules need RDKit: pip install 'genlab[science]'") from None
    RDLogger.DisableLog("rdApp.*")   # an invalid sample is counted, not printed to stderr
    return Chem


def tokenize_smiles(smiles: str) -> list[str]:
    """Atom-level tokens of ``smiles`` (:data:`SMILES_PATTERN`); they join back to ``smiles``.

    Raises:
        DataError: ``smiles`` holds characters no token covers (spaces, letters that are no element).
    """
    tokens = SMILES_PATTERN.findall(smiles)
    if "".join(tokens) != smiles:
        raise DataError(f"{smiles!r} is not tokenizable SMILES (characters outside the atom-level pattern)")
    return tokens


def molecule_properties(smiles: Sequence[str], names: Sequence[str] = PROPERTIES) -> dict[str, np.ndarray]:
    """RDKit properties of each SMILES: float64 ``(n,)`` per name of ``names`` (:data:`PROPERTIES`): QED
    (Bickerton et al. 2012), Crippen logP, the SA score of Ertl & Schuffenhauer 2009 (RDKit Contrib's
    ``sascorer``, 1 easy .. 10 hard) and the average molecular weight; NaN where RDKit cannot parse a SMILES."""
    Chem = require_rdkit()
    from rdkit.Chem import QED, Crippen, Descriptors

    compute = {"qed": QED.qed, "logp": Crippen.MolLogP, "sa": lambda mol: sascorer().calculateScore(mol),
               "mw": Descriptors.MolWt}
    out = {name: np.full(len(smiles), np.nan) for name in names}
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is None or mol.GetNumAtoms() == 0:
            continue
        for name in names:
            out[name][i] = compute[name](mol)
    return out


@functools.lru_cache(maxsize=1)
def sascorer():
    """RDKit Contrib's ``SA_Score/sascorer.py`` module (RDKit ships it as a script, not a package)."""
    from rdkit import RDConfig

    spec = importlib.util.spec_from_file_location("sascorer", f"{RDConfig.RDContribDir}/SA_Score/sascorer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def condition_token(name: str, level: str) -> str:
    """The prefix token of property ``name`` at bin ``level`` (or ``any``), e.g. ``<qed:high>``."""
    return f"<{name}:{level}>"


def moses_dir() -> Path:
    """The folder of MOSES's data files in the installed ``molsets`` wheel, found without importing it.

    Raises:
        NotSupportedError: ``molsets`` is not installed.
    """
    spec = importlib.util.find_spec("moses")   # a top-level find_spec locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise NotSupportedError("the moses dataset needs the molsets wheel's data files: "
                                "pip install --no-deps molsets==0.3.1")
    return Path(list(spec.submodule_search_locations)[0]) / "dataset" / "data"


def moses(*, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """MOSES's train and test molecules (module doc); ``n_train``/``n_test`` keep seeded random subsets.

    Raises:
        NotSupportedError: ``molsets`` is not installed.
        DataError: ``n_train`` or ``n_test`` is not a positive count.
    """
    root = moses_dir()
    parts = {}
    for split, limit in (("train", n_train), ("test", n_test)):
        smiles = pd.read_csv(root / MOSES_FILES[split])["SMILES"].to_numpy(dtype=object)
        if limit is not None:
            if int(limit) < 1:
                raise DataError(f"n_{split} must be a positive number of molecules, got {limit!r}")
            keep = np.random.default_rng(SUBSET_SEED).permutation(len(smiles))[:int(limit)]
            smiles = smiles[np.sort(keep)]
        parts[split] = string_array(smiles)
    name = "moses" if n_train is None else f"moses-{int(n_train)}"
    return Dataset(name=name, modality="smiles", x_train=parts["train"], x_test=parts["test"])


def smiles_file(path: str | os.PathLike, *, column: str | None = None) -> Dataset:
    """The molecules of a ``.smi`` file (one SMILES a line, a name may follow after white space, as in the
    SMILES file format; ``.txt`` alike) or of a ``.csv`` file's SMILES column, checked by RDKit and split 80/20
    (module doc).

    Args:
        path: the file.
        column: a CSV's SMILES column; ``None`` takes the column named ``smiles`` (any case), or the only one.

    Raises:
        DataError: no such column, fewer than 2 valid molecules, or more than half of them invalid (counted,
            with the first invalid one and its line).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if column is None:
            named = [c for c in table.columns if c.strip().lower() == "smiles"]
            if not named and len(table.columns) != 1:
                raise DataError(f"{path}: no column named 'smiles' among {', '.join(map(str, table.columns))}; "
                                f"name the SMILES column 'smiles'")
            column = named[0] if named else table.columns[0]
        if column not in table.columns:
            raise DataError(f"{path}: no column {column!r}; the columns are: {', '.join(map(str, table.columns))}")
        lines = [(k + 2, s.strip()) for k, s in enumerate(table[column])]   # line 1 is the header
        what = f"SMILES in column {column!r}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
        lines = [(k + 1, line.split()[0]) for k, line in enumerate(text.splitlines()) if line.strip()]
        what = "lines"
    Chem = require_rdkit()
    invalid = [(k, s) for k, s in lines if not s or Chem.MolFromSmiles(s) is None]
    if len(invalid) * 2 > len(lines):
        k, first = invalid[0]
        raise DataError(f"{path}: {len(invalid)} of {len(lines)} {what} are not valid SMILES (first: line {k} "
                        f"{first!r}); refusing a file that is more than half invalid")
    if invalid:
        logger.warning("%s: skipped %d of %d SMILES that RDKit cannot parse (first: line %d %r)", path,
                       len(invalid), len(lines), *invalid[0])
    bad = {k for k, _ in invalid}
    valid = [s for k, s in lines if k not in bad]
    if len(valid) < 2:
        raise DataError(f"{path}: need at least 2 valid molecules to split into train and test, found {len(valid)}")
    train, test = fixed_split(len(valid))
    molecules = string_array(valid)
    return Dataset(name=str(path), modality="smiles", x_train=molecules[train], x_test=molecules[test])


def randomised_smiles(smiles: Sequence[str], k: int, *, kekule: bool = False,
                      seed: int = SUBSET_SEED) -> list[str]:
    """``k`` random SMILES of each molecule (a seeded random atom order), molecule by molecule, in Kekulé form
    when ``kekule`` (module doc); the same call gives the same strings.

    An unparsable SMILES is kept as it is (``k`` copies), so the result always has ``k * len(smiles)``.
    """
    Chem = require_rdkit()
    rng = np.random.default_rng(seed)
    out = []
    for s in smiles:
        mol = _parse(Chem, s, kekule)
        for _ in range(k):
            if mol is None:
                out.append(s)
                continue
            # a random atom order written without canonical reordering: the paper's "restricted" randomised
            # SMILES. RDKit's doRandom draws from its own generator, which its seed function did not fix (two
            # calls gave different strings, so SELFIES met tokens its vocabulary lacked); this order is ours.
            order = rng.permutation(mol.GetNumAtoms()).tolist()
            out.append(Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False, kekuleSmiles=kekule))
    return out


def kekule_smiles(smiles: Sequence[str]) -> list[str]:
    """Each SMILES in Kekulé form, RDKit's canonical atom order (module doc); an unparsable one as it is."""
    Chem = require_rdkit()
    out = []
    for s in smiles:
        mol = _parse(Chem, s, kekule=True)
        out.append(s if mol is None else Chem.MolToSmiles(mol, kekuleSmiles=True))
    return out


def _parse(Chem, smiles: str, kekule: bool):
    """RDKit's molecule of ``smiles`` (``None`` if it does not parse), kekulised with its aromatic flags
    cleared when ``kekule``, so that it is written with uppercase atoms and explicit double bonds."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is not None and kekule:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    return mol


class SmilesCodec(VocabularyCodec):
    """Molecules <-> atom-level token streams (module doc); ``eos`` is the last id.

    Args:
        context: tokens per training row.
        selfies: tokenize SELFIES instead of SMILES (samples come back as SMILES).
        augment: random SMILES per training molecule (1: the molecules as given).
        kekule: train on the molecules written in Kekulé form (module doc).
        properties: the properties each molecule's prefix conditions on (:data:`PROPERTIES`, module doc);
            empty: no prefix.
        property_dropout: probability in ``[0, 1]`` that a training prefix token becomes its ``any`` token.
        property_molecules: with properties, the most training molecules (a seeded subset) the network trains
            on, each with its properties computed (module doc).
        edges: the fitted tertile edges, ``{property: [low|mid edge, mid|high edge]}`` (from :meth:`from_state`).
        tokens: the fitted vocabulary (from :meth:`from_state`).
    """

    name = "smiles"
    modality = "smiles"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, selfies: bool = False, augment: int = 1,
                 kekule: bool = False, properties: Sequence[str] = (), property_dropout: float = 0.5,
                 property_molecules: int = 100_000, edges: dict[str, Sequence[float]] | None = None,
                 tokens: Sequence[str] | None = None) -> None:
        super().__init__(shape, context=context, tokens=tokens)
        if augment < 1:
            raise ValueError(f"augment must be at least 1 random SMILES per molecule, got {augment}")
        unknown = [name for name in properties if name not in PROPERTIES]
        if unknown or len(set(properties)) != len(properties):
            raise ConfigError(f"properties must be distinct names among {', '.join(PROPERTIES)}; got "
                              f"{list(properties)}")
        if not 0 <= property_dropout <= 1 or property_molecules < 1:
            raise ConfigError(f"property_dropout must be in [0, 1] and property_molecules at least 1; got "
                              f"{property_dropout} and {property_molecules}")
        if selfies and kekule:
            raise ConfigError("a codec writes SELFIES or Kekulé SMILES, not both")
        self.selfies, self.augment, self.kekule = selfies, augment, kekule
        self.properties = tuple(properties)
        self.property_dropout, self.property_molecules = float(property_dropout), int(property_molecules)
        self.edges = None if edges is None else {name: [float(e) for e in edges[name]] for name in self.properties}

    def _split(self, molecule: str) -> list[str]:
        if not molecule:
            return []   # an empty prompt: the selfies encoder refuses an empty SMILES
        if not self.selfies:
            return tokenize_smiles(molecule)
        sf = _selfies()
        try:
            return list(sf.split_selfies(sf.encoder(molecule, strict=False)))
        except sf.EncoderError as error:
            raise DataError(f"{molecule!r} has no SELFIES ({error})") from None

    def _training_molecules(self, x: np.ndarray) -> list[str]:
        molecules = list(self.check_records(x, "training molecules"))
        if self.augment > 1:
            return randomised_smiles(molecules, self.augment, kekule=self.kekule)
        return kekule_smiles(molecules) if self.kekule else molecules

    def _trained_on(self, molecules: np.ndarray) -> np.ndarray:
        """The molecules the training stream writes: with properties a seeded subset of at most
        ``property_molecules`` (module doc), all of them without."""
        return molecules[_subset(len(molecules), self.property_molecules)] if self.properties else molecules

    @property
    def condition_tokens(self) -> list[str]:
        """The prefix tokens, property by property: its bins, then its ``any`` token."""
        return [condition_token(name, level) for name in self.properties for level in (*BINS, ANY)]

    def fit(self, x: np.ndarray) -> "SmilesCodec":
        records = self.check_records(x, "training molecules")
        molecules = list(records)
        if self.properties:
            subset = _subset(len(molecules), EDGE_MOLECULES)
            values = molecule_properties([molecules[i] for i in subset], self.properties)
            self.edges = {}
            for name in self.properties:
                known = values[name][~np.isnan(values[name])]
                if not len(known):
                    raise DataError("no training molecule has RDKit properties to condition on (none parses)")
                self.edges[name] = [float(e) for e in np.quantile(known, [1 / 3, 2 / 3])]
        if self.kekule:   # the molecules' own tokens, and those of the Kekulé forms the stream writes
            written = [*molecules, *self._training_molecules(self._trained_on(records))]
        else:
            written = self._training_molecules(x)
        atoms = set().union(*(self._split(m) for m in written))
        self._set_tokens(sorted(atoms) + self.condition_tokens)
        return self

    def stream(self, x: np.ndarray) -> torch.Tensor:
        """int64 ``(N,)``: ``eos prefix mol_1 eos prefix mol_2 ...``: with properties, the molecules of a seeded
        subset of at most ``property_molecules`` (all of them when fewer), each ``augment`` times (randomised),
        its prefix the bins of its properties, each dropped to ``any`` with ``property_dropout`` (module doc);
        without properties, every molecule and no prefix."""
        molecules = self.check_records(x, "molecules")
        if not self.properties:
            rewritten = self.augment > 1 or self.kekule
            return super().stream(string_array(self._training_molecules(x)) if rewritten else x)
        molecules = self._trained_on(molecules)
        values = molecule_properties(list(molecules), self.properties)
        levels = np.full((len(molecules), len(self.properties)), len(BINS))        # (n, P) bin index; 3 = any
        for j, name in enumerate(self.properties):
            known = ~np.isnan(values[name])
            levels[known, j] = np.searchsorted(self.edges[name], values[name][known], side="right")
        written = self._training_molecules(molecules)                               # augment copies in a row
        levels = np.repeat(levels, self.augment, axis=0)
        rng = np.random.default_rng(SUBSET_SEED)
        levels[rng.random(levels.shape) < self.property_dropout] = len(BINS)
        first = self._ids[self.condition_tokens[0]]
        prefixes = first + 4 * np.arange(len(self.properties)) + levels             # ids of <name:level>
        pieces = [[self.eos]]
        for prefix, ids in zip(prefixes.tolist(), self.tokenize_batch(written)):
            pieces.extend((prefix, ids, [self.eos]))
        return torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces]))

    def parse_condition(self, condition: Any) -> dict[str, str] | None:
        """A condition ``{property: bin}`` checked against this codec (``None`` stays ``None``).

        Raises:
            ConfigError: not a dict, a model fitted without properties, an unknown property or bin (naming
                the valid ones).
        """
        if condition is None:
            return None
        if not self.properties:
            raise ConfigError("this molecule model was fitted without property conditioning (properties=[]), "
                              "so it cannot be conditioned")
        if not isinstance(condition, dict):
            raise ConfigError(f"condition molecules on properties as property=bin, e.g. qed=high; got "
                              f"{condition!r}; properties: {', '.join(self.properties)}")
        parsed = {}
        for name, level in condition.items():
            if name not in self.properties:
                raise ConfigError(f"unknown property {name!r} to condition on; this model's properties: "
                                  f"{', '.join(self.properties)}")
            if str(level).strip().lower() not in BINS:
                raise ConfigError(f"unknown bin {level!r} of {name}; the bins: {', '.join(BINS)} "
                                  f"({self.describe_bins(name)})")
            parsed[name] = str(level).strip().lower()
        return parsed

    def describe_bins(self, name: str) -> str:
        """The bins of property ``name`` in its units, e.g. ``low < 0.62 <= mid < 0.81 <= high``."""
        low, high = self.edges[name]
        return f"low < {low:.3g} <= mid < {high:.3g} <= high"

    def prefix(self, condition: dict[str, str] | None) -> list[int]:
        """The prefix ids a sample starts with after ``eos``: each property's bin in ``condition`` (checked by
        :meth:`parse_condition`), ``any`` for the others; ``[]`` for a codec without properties."""
        condition = condition or {}
        return [self._ids[condition_token(name, condition.get(name, ANY))] for name in self.properties]

    def unconditioned_ids(self) -> list[int]:
        """Each id's id with every property bin read as its property's ``any`` (the other ids as they are):
        the unconditional rows of classifier-free guidance (:mod:`genlab.models.transformer.guidance`)."""
        ids = list(range(self.vocab_size))
        for name in self.properties:
            for level in BINS:
                ids[self._ids[condition_token(name, level)]] = self._ids[condition_token(name, ANY)]
        return ids

    def tokenize(self, text: str) -> list[int]:
        pieces = self._split(text)
        unknown = sorted({p for p in pieces if p not in self._ids})
        if unknown:
            raise DataError(f"tokens {unknown[:10]} of {text!r} are not in this model's vocabulary of "
                            f"{len(self.tokens)} tokens")
        return [self._ids[p] for p in pieces]

    def detokenize(self, ids: Sequence[int]) -> str:
        """The molecule of ``ids``: ``eos`` and prefix tokens are dropped."""
        skip = len(self.tokens) - len(self.condition_tokens)   # prefix tokens come last, before eos
        text = "".join(self.tokens[i] for i in ids if i < skip)
        if not self.selfies:
            return text
        sf = _selfies()
        try:
            return sf.decoder(text)
        except sf.DecoderError:
            return ""   # a malformed SELFIES prefix (a prompt cut mid-token); counted invalid downstream

    def grammar(self) -> "SmilesGrammar | KekuleGrammar | None":
        """The SMILES grammar over this codec's ids with the Kekulé check (module doc), without aromatic atoms for
        Kekulé SMILES; ``None`` for SELFIES, whose every token string is a molecule already."""
        if self.selfies:
            return None
        syntax = SmilesGrammar(self.tokens, self.eos, aromatic=not self.kekule)
        return syntax if self.kekule else KekuleGrammar(syntax, self.tokens)

    def state(self) -> dict[str, Any]:
        return self._state(tokens=self.tokens, selfies=self.selfies, augment=self.augment, kekule=self.kekule,
                           properties=list(self.properties), property_dropout=self.property_dropout,
                           property_molecules=self.property_molecules, edges=self.edges)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SmilesCodec":
        """The codec of a saved state; a state from before property conditioning has no properties, one from
        before Kekulé training wrote aromatic SMILES."""
        return cls(context=state["context"], selfies=bool(state["selfies"]), augment=int(state["augment"]),
                   kekule=bool(state.get("kekule", False)), properties=state.get("properties", ()),
                   property_dropout=state.get("property_dropout", 0.5),
                   property_molecules=state.get("property_molecules", 100_000), edges=state.get("edges"),
                   tokens=state["tokens"])


def _subset(n: int, limit: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of at most ``limit`` of ``n`` items (all of them when fewer)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:limit])


def _selfies():
    try:
        import selfies
    except ImportError:
        raise NotSupportedError("SELFIES needs the selfies package: pip install 'genlab[science]'") from None
    return selfies
