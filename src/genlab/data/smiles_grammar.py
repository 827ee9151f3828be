"""SMILES's syntax as a counting grammar, the constraint :meth:`genlab.data.smiles.SmilesCodec.grammar` offers.

No molecule ends with a ring or branch open, a ring-bond label closes only a ring opened on another atom and never
doubles a bond (``C1C1``, ``C1(C)C1``: the two atoms are bonded by the chain; ``C12CC12``: by the other ring), ``)``
closes only an open ``(``, bonds and ring bonds follow atoms (OpenSMILES's syntax, the part a string must satisfy
before RDKit looks at valences, which stay the model's job). Branches nest at most :data:`MAX_DEPTH` deep. A property token (``<qed:high>``, the codec's
conditioning prefix) is allowed only before a molecule's first atom and leaves the grammar's state as it was.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch

#: A token's role in the grammar (``PREFIX``: a property token, allowed only before a molecule's first atom).
ATOM, RING, BOND, OPEN, CLOSE, DOT, END, OTHER, PREFIX = range(9)
#: A row's kind: what its last token was (a bond after an atom or ring bond may carry a ring bond; one after
#: a branch's ``(`` or ``)`` only an atom).
START, AFTER_ATOM, AFTER_RING, AFTER_CLOSE, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT = range(8)
#: The organic subset, aromatic atoms and the wildcard: atoms written without brackets.
ORGANIC = frozenset({"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s", "*"})
BONDS = frozenset("-=#$:/\\")
_AFTER_ATOM = {ATOM, RING, BOND, OPEN, CLOSE, DOT, END}
#: The roles that may follow each kind.
FOLLOWS = {START: {ATOM, PREFIX}, AFTER_ATOM: _AFTER_ATOM, AFTER_RING: _AFTER_ATOM, AFTER_CLOSE: _AFTER_ATOM - {RING},
           CHAIN_BOND: {ATOM, RING}, BRANCH_BOND: {ATOM}, AFTER_OPEN: {ATOM, BOND}, AFTER_DOT: {ATOM}}
#: Kinds whose shortest completion starts with an atom.
NEEDS_ATOM = (START, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT)
#: Deepest branch nesting the grammar follows (MOSES's 1.58 million training molecules nest at most 5 deep).
MAX_DEPTH = 16


def smiles_role(token: str) -> int:
    """The role of an atom-level SMILES token (``ATOM`` ... ``PREFIX``; ``OTHER`` is never allowed)."""
    if token.startswith("<") and token.endswith(">"):
        return PREFIX
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

    A row's state is ``(kind (B,), depth (B,), opener (B, R), linked (B, R), atom (B,), parent (B,), roots (B, D),
    count (B,))``: what its last token was; the branches open; per ring-bond label of the vocabulary, the index of the
    atom that opened it (``-1``: not open) and, for the labels closed on the current atom, the atom they joined it
    to; the current atom (the one a ring bond or the next atom attaches to; ``-1`` after ``.``), the atom it hangs
    from, the atom each open branch hangs from, and the atoms written. A ring label closes on the current atom only
    when it was opened on another atom that is neither its parent nor joined to it by a ring already: a ring
    *blocked* here needs one more atom first. ``need`` is the length of one completion: an atom where the kind or a
    blocked ring needs one, then a ring bond per open ring, then ``)`` per open branch.

    Args:
        tokens: the codec's tokens, id ``i`` is ``tokens[i]``.
        eos: the end-of-molecule id (``len(tokens)``).
    """

    name = "SMILES grammar"
    max_rise = 3   # a ring bond opened on the atom: one more token to close it, two atoms before that

    def __init__(self, tokens: Sequence[str], eos: int) -> None:
        self.eos, self.vocab_size = eos, len(tokens) + 1
        roles = [smiles_role(t) for t in tokens] + [END]
        labels = sorted({t for t, r in zip(tokens, roles) if r == RING})
        self.roles = torch.tensor(roles)                                                   # (V,)
        self.ring = torch.tensor([labels.index(t) if t in labels else -1 for t in tokens] + [-1])
        self.ring_ids = torch.tensor([list(tokens).index(t) for t in labels], dtype=torch.long)  # (R,)
        self.labels = torch.arange(len(labels))
        self.close_ids = torch.tensor([i for i, r in enumerate(roles) if r == CLOSE], dtype=torch.long)
        self.open_ids = torch.tensor([i for i, r in enumerate(roles) if r == OPEN], dtype=torch.long)
        follows = torch.zeros(8, 9, dtype=torch.bool)                                    # (kinds, roles)
        for kind, allowed in FOLLOWS.items():
            follows[kind, sorted(allowed)] = True
        self.kind_allowed = follows[:, self.roles]                                        # (K, V)
        then = torch.arange(8)[:, None].repeat(1, 9)   # (K, roles); a prefix token leaves the kind as it is
        then[:, [ATOM, RING, OPEN, CLOSE, DOT]] = torch.tensor([AFTER_ATOM, AFTER_RING, AFTER_OPEN, AFTER_CLOSE,
                                                                AFTER_DOT])
        then[:, BOND] = BRANCH_BOND
        then[[AFTER_ATOM, AFTER_RING], BOND] = CHAIN_BOND
        self.then = then
        self.needs_atom = torch.zeros(8, dtype=torch.bool)
        self.needs_atom[list(NEEDS_ATOM)] = True

    def to(self, device: torch.device) -> "SmilesGrammar":
        moved = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, name, value.to(device))
        return moved

    def start(self, rows: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        none = torch.full((rows,), -1, dtype=torch.long, device=device)
        labels = torch.full((rows, len(self.labels)), -1, dtype=torch.long, device=device)
        return (torch.full((rows,), START, device=device), torch.zeros(rows, dtype=torch.long, device=device),
                labels, labels.clone(), none, none.clone(),
                torch.full((rows, MAX_DEPTH), -1, dtype=torch.long, device=device),
                torch.zeros(rows, dtype=torch.long, device=device))

    def advance(self, state: tuple[torch.Tensor, ...], token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kind, depth, opener, linked, atom, parent, roots, count = state
        role = self.roles[token]
        rows = torch.arange(len(token), device=token.device)
        hit = self.ring[token][:, None] == self.labels                                   # (B, R) the label written
        closing = hit & (opener >= 0)
        linked = torch.where((role == ATOM)[:, None], -1, torch.where(closing, opener, linked))
        opener = torch.where(closing, -1, torch.where(hit, atom[:, None], opener))
        is_atom, is_open, is_close = role == ATOM, role == OPEN, role == CLOSE
        slot = (depth - is_close.long()).clamp(0, MAX_DEPTH - 1)
        roots = roots.clone()
        roots[rows, slot] = torch.where(is_open, atom, roots[rows, slot])
        parent = torch.where(is_atom, atom, torch.where(role == DOT, -1, parent))
        atom = torch.where(is_atom, count, torch.where(is_close, roots[rows, slot], torch.where(role == DOT, -1, atom)))
        depth = depth + is_open.long() - is_close.long()
        return self.then[kind, role], depth, opener, linked, atom, parent, roots, count + is_atom.long()

    def _blocked(self, opener: torch.Tensor, linked: torch.Tensor, atom: torch.Tensor,
                 parent: torch.Tensor) -> torch.Tensor:
        """bool ``(B, R)``: open rings that may not close on the current atom (class doc)."""
        joined = (opener[:, :, None] == linked[:, None, :]).any(-1)
        return (opener >= 0) & ((opener == atom[:, None]) | (opener == parent[:, None]) | joined)

    def allowed(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        kind, depth, opener, linked, atom, parent, _, _ = state
        allowed = self.kind_allowed[kind]                                                 # (B, V)
        allowed[:, self.ring_ids] &= ~self._blocked(opener, linked, atom, parent)
        allowed[:, self.close_ids] &= (depth > 0)[:, None]
        allowed[:, self.open_ids] &= (depth < MAX_DEPTH)[:, None]
        allowed[:, self.eos] &= (depth == 0) & (opener < 0).all(1)
        return allowed

    def need(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The length of one completion (class doc): first the atoms that free every open ring to close here (two
        if a ring opened on the current atom, whose next atom is its child; one if the kind needs an atom or a ring
        is blocked otherwise), then the open rings closed one per opening atom on each atom, with an atom between
        rounds (``m - 1`` more atoms for ``m`` rings opened on one atom), then a ``)`` per open branch. Each first
        token of that completion lowers it by exactly one."""
        kind, depth, opener, linked, atom, parent, _, _ = state
        open_ = opener >= 0
        n_open = open_.sum(1)
        kind_atom = self.needs_atom[kind] | ((kind == AFTER_CLOSE) & (n_open > 0))
        here = (open_ & (opener == atom[:, None])).any(1)
        blocked = self._blocked(opener, linked, atom, parent).any(1)
        first = torch.maximum(2 * here.long(), (kind_atom | blocked).long())
        shared = ((opener[:, :, None] == opener[:, None, :]) & open_[:, :, None] & open_[:, None, :]).sum(-1)
        rounds = (shared.max(1).values - 1).clamp(min=0)                                   # m - 1
        return first + rounds + n_open + depth

    def need_after(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:meth:`need` of the state after each id: every row advanced by every id at once, ``(B, V)``."""
        rows, vocab = len(state[0]), self.vocab_size
        tiled = tuple(part.repeat_interleave(vocab, 0) for part in state)
        tokens = torch.arange(vocab, device=state[0].device).repeat(rows)
        after = self.need(self.advance(tiled, tokens)).view(rows, vocab)
        after[:, self.eos] = 0
        return after
