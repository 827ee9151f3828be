"""Molecules as SMILES strings: datasets, and the atom-level tokenizer that makes them token streams.

A ``smiles`` :class:`~genlab.data.dataset.Dataset` holds molecules as object arrays ``(n,)`` of ``str``,
one SMILES each (record shape ``()``, like text). Sources:

- ``moses``: the MOSES benchmark (Polykovskiy et al. 2020, "Molecular Sets (MOSES)") as shipped in the
  ``molsets`` wheel, ``moses/dataset/data/train.csv.gz`` (1,584,663 molecules) and ``test.csv.gz``
  (176,074). Only those files are read (the wheel is installed with ``--no-deps``; its code is never
  imported). ``n_train`` keeps a seeded random subset of the training molecules;
- any ``.csv`` file with a SMILES column: every SMILES is parsed by RDKit, unparsable ones are counted
  and skipped with one warning, and the file is refused when more than half are invalid. Split 80/20
  with the fixed split.

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

Sampling inside the grammar: :meth:`SmilesCodec.grammar` is a :class:`SmilesGrammar`, which the transformer
applies by default: no molecule ends with a ring or branch open, a ring-bond label closes only a ring opened on
another atom, ``)`` closes only an open ``(``, bonds and ring bonds follow atoms (OpenSMILES's syntax, the part
a string must satisfy before RDKit looks at valences, which stay the model's job).
"""

from __future__ import annotations

import copy
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
from genlab.data.text import VocabularyCodec, string_array
from genlab.errors import DataError, NotSupportedError

logger = logging.getLogger(__name__)

#: Schwaller et al. 2019's SMILES token pattern.
SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])")
#: The MOSES files inside the molsets wheel, by split.
MOSES_FILES = {"train": "train.csv.gz", "test": "test.csv.gz", "test_scaffolds": "test_scaffolds.csv.gz"}
#: Seed of the ``n_train`` subset and of the randomised SMILES.
SUBSET_SEED = 20_240_601


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
    """The SMILES column of a ``.csv`` file, checked by RDKit and split 80/20 (module doc).

    Args:
        path: the file.
        column: the SMILES column; ``None`` takes the column named ``smiles`` (any case), or the only one.

    Raises:
        DataError: no such column, fewer than 2 valid molecules, or more than half of them invalid.
    """
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if column is None:
        named = [c for c in table.columns if c.strip().lower() == "smiles"]
        if not named and len(table.columns) != 1:
            raise DataError(f"{path}: no column named 'smiles' among {', '.join(map(str, table.columns))}; "
                            f"name it with column=")
        column = named[0] if named else table.columns[0]
    if column not in table.columns:
        raise DataError(f"{path}: no column {column!r}; the columns are: {', '.join(map(str, table.columns))}")
    Chem = require_rdkit()
    given = [s.strip() for s in table[column]]
    valid = [s for s in given if s and Chem.MolFromSmiles(s) is not None]
    invalid = len(given) - len(valid)
    if invalid * 2 > len(given):
        raise DataError(f"{path}: {invalid} of {len(given)} SMILES in column {column!r} are not valid molecules "
                        f"(RDKit cannot parse them); refusing a file that is more than half invalid")
    if invalid:
        logger.warning("%s: skipped %d of %d SMILES that RDKit cannot parse", path, invalid, len(given))
    if len(valid) < 2:
        raise DataError(f"{path}: need at least 2 valid molecules to split into train and test, found {len(valid)}")
    train, test = fixed_split(len(valid))
    molecules = string_array(valid)
    return Dataset(name=str(path), modality="smiles", x_train=molecules[train], x_test=molecules[test])


def randomised_smiles(smiles: Sequence[str], k: int, *, seed: int = SUBSET_SEED) -> list[str]:
    """``k`` random SMILES of each molecule (RDKit's ``doRandom`` atom order), molecule by molecule.

    An unparsable SMILES is kept as it is (``k`` copies), so the result always has ``k * len(smiles)``.
    """
    Chem = require_rdkit()
    rng = np.random.default_rng(seed)
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        for _ in range(k):
            if mol is None:
                out.append(s)
                continue
            Chem.rdBase.SeedRandomNumberGenerator(int(rng.integers(2**31)))   # RDKit's own RNG draws the order
            out.append(Chem.MolToSmiles(mol, canonical=False, doRandom=True))
    return out


class SmilesCodec(VocabularyCodec):
    """Molecules <-> atom-level token streams (module doc); ``eos`` is the last id.

    Args:
        context: tokens per training row.
        selfies: tokenize SELFIES instead of SMILES (samples come back as SMILES).
        augment: random SMILES per training molecule (1: the molecules as given).
        tokens: the fitted vocabulary (from :meth:`from_state`).
    """

    name = "smiles"
    modality = "smiles"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, selfies: bool = False, augment: int = 1,
                 tokens: Sequence[str] | None = None) -> None:
        super().__init__(shape, context=context, tokens=tokens)
        if augment < 1:
            raise ValueError(f"augment must be at least 1 random SMILES per molecule, got {augment}")
        self.selfies, self.augment = selfies, augment

    def _split(self, molecule: str) -> list[str]:
        if not self.selfies:
            return tokenize_smiles(molecule)
        sf = _selfies()
        try:
            return list(sf.split_selfies(sf.encoder(molecule, strict=False)))
        except sf.EncoderError as error:
            raise DataError(f"{molecule!r} has no SELFIES ({error})") from None

    def _training_molecules(self, x: np.ndarray) -> list[str]:
        molecules = list(self.check_records(x, "training molecules"))
        return molecules if self.augment == 1 else randomised_smiles(molecules, self.augment)

    def fit(self, x: np.ndarray) -> "SmilesCodec":
        molecules = self._training_molecules(x)
        self._set_tokens(sorted(set().union(*(self._split(m) for m in molecules))))
        return self

    def stream(self, x: np.ndarray) -> torch.Tensor:
        """int64 ``(N,)``: ``eos mol_1 eos ...``, each training molecule ``augment`` times (randomised)."""
        return super().stream(string_array(self._training_molecules(x)) if self.augment > 1 else x)

    def tokenize(self, text: str) -> list[int]:
        pieces = self._split(text)
        unknown = sorted({p for p in pieces if p not in self._ids})
        if unknown:
            raise DataError(f"tokens {unknown[:10]} of {text!r} are not in this model's vocabulary of "
                            f"{len(self.tokens)} tokens")
        return [self._ids[p] for p in pieces]

    def detokenize(self, ids: Sequence[int]) -> str:
        text = "".join(self.tokens[i] for i in ids if i != self.eos)
        if not self.selfies:
            return text
        sf = _selfies()
        try:
            return sf.decoder(text)
        except sf.DecoderError:
            return ""   # a malformed SELFIES prefix (a prompt cut mid-token); counted invalid downstream

    def grammar(self) -> "SmilesGrammar | None":
        """The SMILES syntax over this codec's ids (:class:`SmilesGrammar`); ``None`` for SELFIES, whose every
        token string is a molecule already."""
        return None if self.selfies else SmilesGrammar(self.tokens, self.eos)

    def state(self) -> dict[str, Any]:
        return self._state(tokens=self.tokens, selfies=self.selfies, augment=self.augment)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SmilesCodec":
        return cls(context=state["context"], selfies=bool(state["selfies"]), augment=int(state["augment"]),
                   tokens=state["tokens"])


# ---------------------------------------------------------------------------------------- grammar
#: A token's role in the grammar.
ATOM, RING, BOND, OPEN, CLOSE, DOT, END, OTHER = range(8)
#: A row's kind: what its last token was (a bond after an atom or ring bond may carry a ring bond; one after
#: a branch's ``(`` or ``)`` only an atom).
START, AFTER_ATOM, AFTER_RING, AFTER_CLOSE, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT = range(8)
#: The organic subset, aromatic atoms and the wildcard: atoms written without brackets.
ORGANIC = frozenset({"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s", "*"})
BONDS = frozenset("-=#$:/\\")
_AFTER_ATOM = {ATOM, RING, BOND, OPEN, CLOSE, DOT, END}
#: The roles that may follow each kind.
FOLLOWS = {START: {ATOM}, AFTER_ATOM: _AFTER_ATOM, AFTER_RING: _AFTER_ATOM, AFTER_CLOSE: _AFTER_ATOM - {RING},
           CHAIN_BOND: {ATOM, RING}, BRANCH_BOND: {ATOM}, AFTER_OPEN: {ATOM, BOND}, AFTER_DOT: {ATOM}}
#: Kinds whose shortest completion starts with an atom.
NEEDS_ATOM = (START, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT)


def smiles_role(token: str) -> int:
    """The role of an atom-level SMILES token (``ATOM`` ... ``OTHER``; ``OTHER`` is never allowed)."""
    if token in ORGANIC or token.startswith("["):
        return ATOM
    if token.isdigit() or (token.startswith("%") and token[1:].isdigit()):
        return RING
    if token in BONDS:
        return BOND
    return {"(": OPEN, ")": CLOSE, ".": DOT}.get(token, OTHER)


class SmilesGrammar:
    """SMILES's syntax as a counting grammar for :mod:`genlab.sampling.token_grammar` (module doc): O(1)
    tensor operations per token for a whole batch.

    A row's state is ``(kind (B,), depth (B,), open (B, R), here (B, R))``: what its last token was, the
    branches open, and, per ring-bond label of the vocabulary, whether that ring is open and whether it was
    opened on the current atom (a ring cannot close on the atom that opened it). ``need`` is the length of one
    completion: an atom where the kind or a ring opened here needs one, then a ring bond per open ring, then
    ``)`` per open branch.

    Args:
        tokens: the codec's tokens, id ``i`` is ``tokens[i]``.
        eos: the end-of-molecule id (``len(tokens)``).
    """

    name = "SMILES grammar"
    max_rise = 2   # ``(`` or a new ring bond: one more token to close it, one atom before that

    def __init__(self, tokens: Sequence[str], eos: int) -> None:
        self.eos, self.vocab_size = eos, len(tokens) + 1
        roles = [smiles_role(t) for t in tokens] + [END]
        labels = sorted({t for t, r in zip(tokens, roles) if r == RING})
        self.roles = torch.tensor(roles)                                                   # (V,)
        self.ring = torch.tensor([labels.index(t) if t in labels else -1 for t in tokens] + [-1])
        self.ring_ids = torch.tensor([list(tokens).index(t) for t in labels], dtype=torch.long)  # (R,)
        self.labels = torch.arange(len(labels))
        self.close_ids = torch.tensor([i for i, r in enumerate(roles) if r == CLOSE], dtype=torch.long)
        follows = torch.zeros(8, 8, dtype=torch.bool)
        for kind, allowed in FOLLOWS.items():
            follows[kind, sorted(allowed)] = True
        self.kind_allowed = follows[:, self.roles]                                        # (K, V)
        then = torch.arange(8)[:, None].repeat(1, 8)                                      # (K, roles)
        then[:, [ATOM, RING, OPEN, CLOSE, DOT]] = torch.tensor([AFTER_ATOM, AFTER_RING, AFTER_OPEN, AFTER_CLOSE,
                                                                AFTER_DOT])
        then[:, BOND] = BRANCH_BOND
        then[[AFTER_ATOM, AFTER_RING], BOND] = CHAIN_BOND
        self.then = then
        self.needs_atom = torch.zeros(8, dtype=torch.bool)
        self.needs_atom[list(NEEDS_ATOM)] = True
        # need after a token, less the open rings and branches before it (ring bonds are set per row)
        self.rise = torch.tensor([0, 0, 1, 2, -1, 1, 0, 1 << 30])[self.roles]             # (V,)

    def to(self, device: torch.device) -> "SmilesGrammar":
        moved = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, name, value.to(device))
        return moved

    def start(self, rows: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        zeros = torch.zeros(rows, len(self.labels), dtype=torch.bool, device=device)
        return (torch.full((rows,), START, device=device), torch.zeros(rows, dtype=torch.long, device=device),
                zeros, zeros)

    def advance(self, state: tuple[torch.Tensor, ...], token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kind, depth, open_, here = state
        role = self.roles[token]
        hit = self.ring[token][:, None] == self.labels                                   # (B, R) the label written
        open_ = open_ ^ hit                                                               # opens or closes it
        here = torch.where(hit, open_, here & (role != ATOM)[:, None])
        depth = depth + (role == OPEN).long() - (role == CLOSE).long()
        return self.then[kind, role], depth, open_, here

    def allowed(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        kind, depth, open_, here = state
        allowed = self.kind_allowed[kind]                                                 # (B, V)
        allowed[:, self.ring_ids] &= ~(open_ & here)
        allowed[:, self.close_ids] &= (depth > 0)[:, None]
        allowed[:, self.eos] &= (depth == 0) & ~open_.any(1)
        return allowed

    def need(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        kind, depth, open_, here = state
        n_open = open_.sum(1)
        atom_first = self.needs_atom[kind] | ((kind == AFTER_CLOSE) & (n_open > 0)) | (open_ & here).any(1)
        return atom_first.long() + n_open + depth

    def need_after(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        _, depth, open_, here = state
        n_open = open_.sum(1)
        base = (n_open + depth)[:, None]                                                  # (B, 1)
        after = base + self.rise                                                          # (B, V)
        after[:, self.close_ids] += (n_open > 0).long()[:, None]   # rings still open: an atom after ``)``
        closing = (open_ & here).any(1, keepdim=True).long() - 1   # a ring closed; an atom if one opened here
        after[:, self.ring_ids] = base + torch.where(open_, closing, 2)
        after[:, self.eos] = 0
        return after


def _selfies():
    try:
        import selfies
    except ImportError:
        raise NotSupportedError("SELFIES needs the selfies package: pip install 'genlab[science]'") from None
    return selfies
