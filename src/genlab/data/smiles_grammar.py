"""SMILES's syntax as a counting grammar, the constraint :meth:`genlab.data.smiles.SmilesCodec.grammar` offers.

No molecule ends with a ring or branch open, a ring-bond label closes only a ring opened on another atom, ``)``
closes only an open ``(``, bonds and ring bonds follow atoms (OpenSMILES's syntax, the part a string must satisfy
before RDKit looks at valences, which stay the model's job). A property token (``<qed:high>``, the codec's
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
        # need after a token, less the open rings and branches before it (ring bonds are set per row)
        self.rise = torch.tensor([0, 0, 1, 2, -1, 1, 0, 1 << 30, 1])[self.roles]          # (V,)

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
