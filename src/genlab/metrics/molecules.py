"""MOSES's metrics of generated molecules, computed with RDKit (Polykovskiy et al. 2020, "Molecular Sets").

All chemistry is RDKit's: parsing and canonical SMILES (``Chem.MolFromSmiles``/``MolToSmiles``), Morgan
fingerprints, QED (Bickerton et al. 2012), logP (Crippen), the synthetic-accessibility score of Ertl &
Schuffenhauer 2009 from RDKit's Contrib ``SA_Score/sascorer.py`` and the 2-D descriptors. The
definitions follow MOSES's ``moses/metrics``:

- validity: share of samples RDKit parses (an empty string is invalid);
- unique@k: distinct canonical SMILES among the first ``k`` valid samples, over their number (MOSES reports
  @1k and @10k; with fewer than ``k`` valid samples, over all of them, as MOSES's ``fraction_unique`` does
  after its warning);
- novelty: share of the distinct valid samples whose canonical SMILES is not in the training set;
- IntDiv_p: ``1 - mean_i (mean_j T(i, j)^p)^(1/p)`` over pairs of valid samples (the pair ``i = j``
  included, as MOSES does), ``T`` the Tanimoto similarity of Morgan fingerprints (radius 2, 1,024 bits);
- filters: share of valid samples that pass MOSES's filters (no ring of 8 or more atoms, no charged
  atom, atoms only of C N S O F Cl Br H, and no match of the MCF and PAINS SMARTS in ``mcf.csv`` and
  ``wehi_pains.csv``, read from the molsets wheel);
- QED, logP and SA Wasserstein distances: the 1-D Wasserstein-1 distance (``scipy.stats.wasserstein_distance``)
  between each property's values over the valid samples and over the reference molecules, as MOSES's
  ``WassersteinMetric`` computes its property rows;
- Fréchet descriptor distance: the Fréchet distance between Gaussians fitted to RDKit 2-D descriptor
  vectors (:data:`DESCRIPTORS`), each descriptor standardised by the reference set's mean and standard
  deviation. **This is not FCD** (Preuer et al. 2018): FCD uses ChemNet's activations, whose weights are
  not shipped here; the two are not comparable numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from genlab.data.smiles import molecule_properties, moses_dir, require_rdkit, sascorer
from genlab.metrics.frechet import frechet_distance

#: RDKit descriptors behind the Fréchet descriptor distance (``rdkit.Chem.Descriptors`` names).
DESCRIPTORS = ("MolWt", "MolLogP", "TPSA", "NumHDonors", "NumHAcceptors", "NumRotatableBonds", "RingCount",
               "NumAromaticRings", "FractionCSP3", "HeavyAtomCount", "qed")
#: Atoms MOSES's filters allow.
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES of ``smiles``, or ``None`` when RDKit cannot parse it (or it is empty)."""
    Chem = require_rdkit()
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return None if mol is None or mol.GetNumAtoms() == 0 else Chem.MolToSmiles(mol)


def fingerprints(smiles: Sequence[str], *, radius: int = 2, n_bits: int = 1024) -> np.ndarray:
    """Morgan bit vectors of parsable SMILES: uint8 ``(n, n_bits)``."""
    Chem = require_rdkit()
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return np.stack([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)).astype(np.uint8) for s in smiles])


def internal_diversity(fps: np.ndarray, *, p: int = 1, batch: int = 2048) -> float:
    """IntDiv_p of fingerprints ``(n, bits)`` (module doc), in ``[0, 1]``; computed in row blocks."""
    x = fps.astype(np.float32)
    counts = x.sum(1)
    per_row = np.empty(len(x))
    for start in range(0, len(x), batch):
        block = x[start:start + batch]
        both = block @ x.T                                                       # (b, n) shared bits
        union = counts[start:start + batch, None] + counts[None, :] - both
        t = np.where(union > 0, both / np.maximum(union, 1), 1.0)                # two empty prints: T = 1
        per_row[start:start + batch] = (t ** p).mean(1) ** (1.0 / p)
    return float(1.0 - per_row.mean())


@lru_cache(maxsize=1)
def _filters():
    Chem = require_rdkit()
    root = moses_dir().parent.parent / "metrics"
    mcf = pd.read_csv(root / "mcf.csv")["smarts"]
    pains = pd.read_csv(root / "wehi_pains.csv", names=["smarts", "names"])["smarts"]
    return [Chem.MolFromSmarts(s) for s in pd.concat([mcf, pains])]


def passes_filters(smiles: str) -> bool:
    """MOSES's ``mol_passes_filters`` (module doc) of one parsable SMILES."""
    Chem = require_rdkit()
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return False
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    return not any(with_h.HasSubstructMatch(pattern) for pattern in _filters())


def properties(smiles: Sequence[str]) -> pd.DataFrame:
    """QED, logP and SA of parsable SMILES: a DataFrame ``(n, 3)`` with columns ``qed``, ``logp``, ``sa``."""
    Chem = require_rdkit()
    from rdkit.Chem import QED, Crippen

    scorer = sascorer()
    rows = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        rows.append((QED.qed(mol), Crippen.MolLogP(mol), scorer.calculateScore(mol)))
    return pd.DataFrame(rows, columns=["qed", "logp", "sa"])


def descriptors(smiles: Sequence[str]) -> np.ndarray:
    """RDKit 2-D descriptors :data:`DESCRIPTORS` of parsable SMILES: float64 ``(n, len(DESCRIPTORS))``."""
    Chem = require_rdkit()
    from rdkit.Chem import Descriptors

    functions = [getattr(Descriptors, name) for name in DESCRIPTORS]
    return np.array([[f(mol) for f in functions] for mol in map(Chem.MolFromSmiles, smiles)], dtype=np.float64)


def frechet_descriptor_distance(reference: Sequence[str], generated: Sequence[str]) -> float:
    """Fréchet distance of standardised RDKit descriptors (module doc; not FCD)."""
    real, fake = descriptors(reference), descriptors(generated)
    mean, std = real.mean(0), real.std(0)
    std = np.where(std > 0, std, 1.0)
    return frechet_distance(real=(real - mean) / std, fake=(fake - mean) / std)


@dataclass(frozen=True)
class MoleculeMetrics:
    """MOSES's metrics of a set of samples (module doc). ``None`` where too few valid samples exist.

    Attributes:
        n: samples scored. validity, unique_1k, unique_10k, novelty, intdiv1, intdiv2, filters: shares in
        ``[0, 1]``. qed, logp, sa: means over valid samples. qed_wasserstein, logp_wasserstein,
        sa_wasserstein: Wasserstein-1 distances to the reference molecules (``None`` without a reference).
        frechet_descriptors: see module doc (not FCD).
    """

    n: int
    validity: float
    unique_1k: float | None
    unique_10k: float | None
    novelty: float | None
    intdiv1: float | None
    intdiv2: float | None
    filters: float | None
    qed: float | None
    logp: float | None
    sa: float | None
    frechet_descriptors: float | None
    qed_wasserstein: float | None = None
    logp_wasserstein: float | None = None
    sa_wasserstein: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """The metrics as a JSON-ready dict."""
        return asdict(self)


def evaluate_molecules(samples: Sequence[str], *, train: Sequence[str], reference: Sequence[str] | None = None,
                       max_pairs: int = 10_000) -> MoleculeMetrics:
    """MOSES's metrics of ``samples`` (module doc).

    Args:
        samples: generated SMILES, invalid ones included (they count against validity).
        train: the training SMILES (for novelty; canonicalised here).
        reference: held-out SMILES for the Fréchet descriptor distance and the property Wasserstein distances;
            ``None`` skips them.
        max_pairs: IntDiv, filters, properties and the Fréchet distance use the first ``max_pairs`` valid
            samples (IntDiv is quadratic in them).
    """
    canon = [canonical(s) for s in samples]
    valid = [c for c in canon if c is not None]
    n = len(samples)

    def unique_at(k: int) -> float:
        return len(set(valid[:k])) / len(valid[:k])

    if not valid:
        return MoleculeMetrics(n, 0.0, None, None, None, None, None, None, None, None, None, None)
    distinct = set(valid)
    train_canon = {c for c in map(canonical, train) if c is not None}
    head = valid[:max_pairs]
    fps = fingerprints(head)
    props = properties(head)
    frechet, wasserstein = None, {}
    if reference is not None and len(head) >= 2:
        reference = list(reference)[:max_pairs]
        frechet = frechet_descriptor_distance(reference, head)
        real = molecule_properties(reference, ("qed", "logp", "sa"))
        wasserstein = {f"{name}_wasserstein": float(wasserstein_distance(props[name], values[~np.isnan(values)]))
                       for name, values in real.items()}
    return MoleculeMetrics(
        n=n, validity=len(valid) / n, unique_1k=unique_at(1000), unique_10k=unique_at(10_000),
        novelty=len(distinct - train_canon) / len(distinct),
        intdiv1=internal_diversity(fps, p=1), intdiv2=internal_diversity(fps, p=2),
        filters=float(np.mean([passes_filters(s) for s in head])),
        qed=float(props["qed"].mean()), logp=float(props["logp"].mean()), sa=float(props["sa"].mean()),
        frechet_descriptors=frechet, **wasserstein)
