"""SMILES's syntax and the valences of its atoms as a counting grammar, the constraint
:meth:`genlab.data.smiles.SmilesCodec.grammar` offers.

Syntax: no molecule ends with a ring or branch open, a ring-bond label closes only a ring opened on another atom
and never doubles a bond (``C1C1``, ``C1(C)C1``: the two atoms are bonded by the chain; ``C12CC12``: by the other
ring), ``)`` closes only an open ``(``, bonds and ring bonds follow atoms (OpenSMILES's syntax). Branches nest at
most :data:`MAX_DEPTH` deep. A property token (``<qed:high>``, the codec's conditioning prefix) is allowed only
before a molecule's first atom and leaves the grammar's state as it was.

Valences: every atom carries at most the bond units RDKit accepts for it without a charge (:data:`CAPACITY`: ``C``
four, ``N`` three, ``O`` two, ``F`` one, ...; an aromatic atom counts its neighbours, ``c`` and ``n`` three, ``o``
and ``s`` two; a bracket atom its element's units plus its charge less its hydrogens, :func:`bracket_capacity`),
a bond costs its order on an aliphatic atom (``=`` two, ``#`` three) and one on an aromatic one, and no token
leads where the molecule can no longer be finished: an atom with no units left while a ring is open and no open
branch's root has a unit to spare (``C1CCF``). RDKit's remaining check, kekulisation (whether an aromatic ring's
electrons pair up), is beyond a left-to-right grammar and stays the model's job; a ring bond written ``#`` or
``$`` is refused (none in MOSES's 1.6 million molecules).
"""

from __future__ import annotations

import copy
import re
from typing import Sequence

import torch

from genlab.sampling.token_grammar import NEVER

#: A token's role in the grammar (``PREFIX``: a property token, allowed only before a molecule's first atom).
ATOM, RING, BOND, OPEN, CLOSE, DOT, END, OTHER, PREFIX = range(9)
#: A row's kind: what its last token was (a bond after an atom or ring bond may carry a ring bond; one after
#: a branch's ``(`` or ``)`` only an atom).
START, AFTER_ATOM, AFTER_RING, AFTER_CLOSE, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT = range(8)
#: The organic subset, aromatic atoms and the wildcard: atoms written without brackets.
ORGANIC = frozenset({"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s", "*"})
#: Bond units an atom written without brackets can carry: the largest valence RDKit accepts for the neutral
#: element (``S`` 2/4/6, ``P`` 3/5, ``I`` 1/3/5: implicit hydrogens fill up to the next one), and for an aromatic
#: atom the neighbours it can have (two in its ring and one more for ``c``/``n``/``b``/``p``).
CAPACITY = {"B": 3, "C": 4, "N": 3, "O": 2, "P": 5, "S": 6, "F": 1, "Cl": 1, "Br": 1, "I": 5, "H": 1, "*": 8,
            "b": 3, "c": 3, "n": 3, "o": 2, "p": 3, "s": 2}
#: The highest bond order an aromatic atom takes besides its ring's aromatic bonds (``c=O`` in a pyridone;
#: ``n``, ``o`` none: a neutral one with ``=X`` or ``#X`` exceeds its valence); 0 marks an aliphatic atom.
AROMATIC_ORDER = {"b": 1, "c": 2, "n": 1, "o": 1, "p": 2, "s": 2}
#: Groups 13 to 17 of the periodic table, row by row, and the largest valence RDKit accepts for each element: a
#: charged bracket atom takes that of its isoelectronic element, the one ``charge`` places to its left, as RDKit
#: does (``[N+]`` as C: 4, ``[O-]`` as F: 1, ``[C+]`` as B: 3, ``[S+]`` as P: 5).
PERIODS = (("B", "C", "N", "O", "F"), ("Al", "Si", "P", "S", "Cl"), ("Ga", "Ge", "As", "Se", "Br"),
           ("In", "Sn", "Sb", "Te", "I"))
GROUP_CAPACITY = dict(zip(sum(PERIODS, ()), (3, 4, 3, 2, 1) + (3, 4, 5, 6, 1) * 2 + (3, 4, 5, 6, 5)))
#: A bracket atom of an element outside those tables (``[Na+]``), or charged beyond them, is not held to a valence.
ANY_CAPACITY = 8
#: A bond token's order (``-``, ``/``, ``\\`` and ``:`` one unit).
ORDER = {"-": 1, "/": 1, "\\": 1, ":": 1, "=": 2, "#": 3, "$": 4}
BONDS = frozenset(ORDER)
_AFTER_ATOM = {ATOM, RING, BOND, OPEN, CLOSE, DOT, END}
#: The roles that may follow each kind.
FOLLOWS = {START: {ATOM, PREFIX}, AFTER_ATOM: _AFTER_ATOM, AFTER_RING: _AFTER_ATOM, AFTER_CLOSE: _AFTER_ATOM - {RING},
           CHAIN_BOND: {ATOM, RING}, BRANCH_BOND: {ATOM}, AFTER_OPEN: {ATOM, BOND}, AFTER_DOT: {ATOM}}
#: Kinds whose shortest completion starts with an atom.
NEEDS_ATOM = (START, CHAIN_BOND, BRANCH_BOND, AFTER_OPEN, AFTER_DOT)
#: Kinds whose next atom or ring bond spends a unit of the current atom (after a bond or ``(`` it is spent
#: already: the bond was allowed only where the atom had the units).
ON_ATOM = (AFTER_ATOM, AFTER_RING, AFTER_CLOSE)
#: Deepest branch nesting the grammar follows (MOSES's 1.58 million training molecules nest at most 5 deep).
MAX_DEPTH = 16
#: A bracket atom: isotope, element (``symbol``), chirality, hydrogens (``h``), charge (``charge``), atom class.
BRACKET = re.compile(r"\[\d*(?P<symbol>[A-Z][a-z]?|[a-z][a-z]?|\*)(?:@+|@[A-Z]{2}\d*)?(?:H(?P<h>\d*))?"
                     r"(?P<charge>[+-]+\d*)?(?::\d+)?]")


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


def bracket_capacity(token: str) -> int:
    """Bond units of a bracket atom less its explicit hydrogens (``[C@@H]`` three, ``[NH+]`` three): an aliphatic
    one those of its isoelectronic element (:data:`PERIODS`); an aromatic one its element's neighbours
    (:data:`CAPACITY`) plus the size of its charge (``[nH]`` two, ``[n+]`` four: generous); :data:`ANY_CAPACITY`
    for an element outside the tables or a token that is no atom."""
    match = BRACKET.fullmatch(token)
    if match is None:
        return ANY_CAPACITY
    symbol, charge = match["symbol"], match["charge"] or ""
    size = int(charge.lstrip("+-") or 1) * len(charge[:1]) if charge[1:].isdigit() or len(charge) <= 1 \
        else len(charge)
    signed = -size if charge.startswith("-") else size
    hydrogens = 0 if match["h"] is None else int(match["h"] or 1)
    period = next((row for row in PERIODS if symbol in row), None)
    if period is not None:
        group = period.index(symbol) - signed
        return max(GROUP_CAPACITY[period[group]] - hydrogens, 0) if 0 <= group < len(period) else ANY_CAPACITY
    if symbol not in CAPACITY:
        return ANY_CAPACITY
    return max(CAPACITY[symbol] + size - hydrogens, 0)


def bond_cost(aromatic: torch.Tensor, order: torch.Tensor | int) -> torch.Tensor:
    """Units a bond of ``order`` takes from atoms of aromatic order ``aromatic`` (broadcast): its order on an
    aliphatic atom (0), one on an aromatic one."""
    return torch.where(aromatic > 0, 1, order)


def bond_fits(units: torch.Tensor, aromatic: torch.Tensor, order: torch.Tensor | int) -> torch.Tensor:
    """Whether atoms with ``units`` left and aromatic order ``aromatic`` take a bond of ``order`` (broadcast): the
    units for its :func:`bond_cost`, and an order the atom's aromatic ring leaves room for."""
    return (units >= bond_cost(aromatic, order)) & ((aromatic == 0) | (order <= aromatic))


def atom_capacity(token: str) -> tuple[int, int]:
    """``(bond units, aromatic order)`` of an atom token (module doc): the aromatic order is 0 for an aliphatic atom,
    else the highest bond order it takes (:data:`AROMATIC_ORDER`; in brackets one with hydrogens and no charge, as
    ``[nH]``, else two)."""
    if token.startswith("["):
        match = BRACKET.fullmatch(token)
        if match is None or not match["symbol"][0].islower():
            return bracket_capacity(token), 0
        hydrogen_neutral = match["h"] is not None and match["charge"] is None   # [nH]: no double bond left
        return bracket_capacity(token), 1 if hydrogen_neutral else 2
    return CAPACITY[token], AROMATIC_ORDER.get(token, 0)


class SmilesGrammar:
    """SMILES's syntax and valences as a counting grammar for :mod:`genlab.sampling.token_grammar` (module doc):
    O(1) tensor operations per token for a whole batch.

    A row's state is a tuple of tensors, rows first: ``kind (B,)``, what its last token was; ``depth (B,)``, the
    branches open; per ring-bond label of the vocabulary, ``opener (B, R)``, the index of the atom that opened it
    (``-1``: not open), and ``linked (B, R)``, for the labels closed on the current atom the atom they joined it
    to; ``atom (B,)``, the current atom (the one a ring bond or the next atom attaches to; ``-1`` after ``.``),
    ``parent (B,)``, the atom it hangs from, ``roots (B, D)``, the atom each open branch hangs from, ``count
    (B,)``, the atoms written; then the valences: ``pending (B,)``, the order of a bond just written (0: none),
    ``ring_order (B, R)``, each open ring's order, and the units left and aromaticity of the atoms that can still
    take a bond: ``free``/``aromatic`` of the current atom ``(B,)``, of each open branch's root ``(B, D)`` and of
    each open ring's opener ``(B, R)`` (one atom in several of these places has the same value in each).

    A ring label closes on the current atom only when it was opened on another atom that is neither its parent nor
    joined to it by a ring already: a ring *blocked* here needs one more atom first. ``need`` is the length of one
    completion (:meth:`need`).

    Args:
        tokens: the codec's tokens, id ``i`` is ``tokens[i]``.
        eos: the end-of-molecule id (``len(tokens)``).
        aromatic: whether aromatic atoms may be drawn; a codec that writes Kekulé SMILES has none to draw, and
            then every molecule the grammar finishes is one RDKit sanitizes.
    """

    name = "SMILES grammar"
    #: Most one token raises :meth:`need` by (checked on random walks in the tests): a ring opened on the
    #: current atom (one closure, two atoms before it) or a saturating atom that sends the completion back up a
    #: branch (one ``)``, one atom more).
    max_rise = 4

    def __init__(self, tokens: Sequence[str], eos: int, *, aromatic: bool = True) -> None:
        self.eos, self.vocab_size = eos, len(tokens) + 1
        roles = [smiles_role(t) for t in tokens] + [END]
        labels = sorted({t for t, r in zip(tokens, roles) if r == RING})
        self.roles = torch.tensor(roles)                                                   # (V,)
        self.ring = torch.tensor([labels.index(t) if t in labels else -1 for t in tokens] + [-1])
        self.ring_ids = torch.tensor([list(tokens).index(t) for t in labels], dtype=torch.long)  # (R,)
        self.labels = torch.arange(len(labels))
        self.earlier = torch.arange(len(labels))[:, None] > torch.arange(len(labels))        # (R, R) j before i
        self.close_ids = torch.tensor([i for i, r in enumerate(roles) if r == CLOSE], dtype=torch.long)
        self.open_ids = torch.tensor([i for i, r in enumerate(roles) if r == OPEN], dtype=torch.long)
        atoms = [atom_capacity(t) if r == ATOM else (0, 0) for t, r in zip(tokens, roles)] + [(0, 0)]
        self.capacity = torch.tensor([c for c, _ in atoms])                                # (V,)
        self.aromatic = torch.tensor([a for _, a in atoms])                                # (V,) aromatic order
        self.order = torch.tensor([ORDER.get(t, 0) for t in tokens] + [0])                 # (V,)
        aliphatic = [c for (c, a), r in zip(atoms, roles) if r == ATOM and not a]
        #: Units a fresh atom of the completion has left after the bond that joins it (the roomiest aliphatic atom).
        self.fresh = max(aliphatic, default=1) - 1
        follows = torch.zeros(8, 9, dtype=torch.bool)                                    # (kinds, roles)
        for kind, allowed in FOLLOWS.items():
            follows[kind, sorted(allowed)] = True
        self.kind_allowed = follows[:, self.roles]                                        # (K, V)
        if not aromatic:
            self.kind_allowed[:, self.aromatic > 0] = False
        then = torch.arange(8)[:, None].repeat(1, 9)   # (K, roles); a prefix token leaves the kind as it is
        then[:, [ATOM, RING, OPEN, CLOSE, DOT]] = torch.tensor([AFTER_ATOM, AFTER_RING, AFTER_OPEN, AFTER_CLOSE,
                                                                AFTER_DOT])
        then[:, BOND] = BRANCH_BOND
        then[[AFTER_ATOM, AFTER_RING], BOND] = CHAIN_BOND
        self.then = then
        self.needs_atom = torch.zeros(8, dtype=torch.bool)
        self.needs_atom[list(NEEDS_ATOM)] = True
        self.on_atom = torch.zeros(8, dtype=torch.bool)
        self.on_atom[list(ON_ATOM)] = True

    def to(self, device: torch.device) -> "SmilesGrammar":
        moved = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, name, value.to(device))
        return moved

    def start(self, rows: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        def full(*shape: int, value: int = -1, dtype: torch.dtype = torch.long) -> torch.Tensor:
            return torch.full((rows, *shape), value, dtype=dtype, device=device)

        labels = len(self.labels)
        return (full(value=START), full(value=0), full(labels), full(labels), full(), full(), full(MAX_DEPTH),
                full(value=0), full(value=0), full(labels, value=0),
                full(value=0), full(MAX_DEPTH, value=0), full(labels, value=0),
                full(value=0), full(MAX_DEPTH, value=0), full(labels, value=0))

    def advance(self, state: tuple[torch.Tensor, ...], token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (kind, depth, opener, linked, atom, parent, roots, count, pending, ring_order,
         free, root_free, open_free, aromatic, root_aromatic, open_aromatic) = state
        role = self.roles[token]
        rows = torch.arange(len(token), device=token.device)
        is_atom, is_open, is_close, is_dot = role == ATOM, role == OPEN, role == CLOSE, role == DOT
        hit = self.ring[token][:, None] == self.labels                                   # (B, R) the label written
        closing, opening = hit & (opener >= 0), hit & (opener < 0)
        order = torch.where(pending > 0, pending, 1)                                     # (B,) this token's bond
        closed_order = torch.where(pending > 0, pending, (ring_order * closing).sum(1))  # a closure's bond
        # units spent: on the current atom by an atom joined to it or a ring bond; on a ring's opener by a closure
        # written with a higher order than the ring was opened with
        attached = is_atom & (atom >= 0)
        bond = torch.where(attached | opening.any(1), order, torch.where(closing.any(1), closed_order, 0))
        spent = torch.where(bond > 0, bond_cost(aromatic, bond), 0)
        extra = (bond_cost(open_aromatic, closed_order[:, None]) - bond_cost(open_aromatic, ring_order))
        extra = (extra.clamp(min=0) * closing).sum(1)
        closed_opener = torch.where(closing, opener, -1).amax(1)                     # (B,) -1: none
        free, root_free, open_free = self._spend(atom, spent, free, root_free, open_free, roots, opener)
        _, root_free, open_free = self._spend(closed_opener, extra, free, root_free, open_free, roots, opener)
        # the ring labels: opened on the current atom with its units left, or closed
        linked = torch.where(is_atom[:, None], -1, torch.where(closing, opener, linked))
        opener = torch.where(closing, -1, torch.where(opening, atom[:, None], opener))
        ring_order = torch.where(opening, order[:, None], torch.where(closing, 0, ring_order))
        open_free = torch.where(opening, free[:, None], open_free)
        open_aromatic = torch.where(opening, aromatic[:, None], open_aromatic)
        # branches: ( keeps the current atom as a root, ) makes it current again
        slot = (depth - is_close.long()).clamp(0, MAX_DEPTH - 1)
        roots, root_free, root_aromatic = roots.clone(), root_free.clone(), root_aromatic.clone()
        roots[rows, slot] = torch.where(is_open, atom, roots[rows, slot])
        root_free[rows, slot] = torch.where(is_open, free, root_free[rows, slot])
        root_aromatic[rows, slot] = torch.where(is_open, aromatic, root_aromatic[rows, slot])
        # the current atom: a new one, a branch's root after ), none after .
        new_aromatic = self.aromatic[token]
        new_free = self.capacity[token] - torch.where(attached, bond_cost(new_aromatic, order), 0)
        parent = torch.where(is_atom, atom, torch.where(is_dot, -1, parent))
        atom = torch.where(is_atom, count, torch.where(is_close, roots[rows, slot], torch.where(is_dot, -1, atom)))
        free = torch.where(is_atom, new_free, torch.where(is_close, root_free[rows, slot], free))
        aromatic = torch.where(is_atom, new_aromatic, torch.where(is_close, root_aromatic[rows, slot], aromatic))
        depth = depth + is_open.long() - is_close.long()
        pending = torch.where(role == BOND, self.order[token], 0)
        return (self.then[kind, role], depth, opener, linked, atom, parent, roots, count + is_atom.long(), pending,
                ring_order, free, root_free, open_free, aromatic, root_aromatic, open_aromatic)

    @staticmethod
    def _spend(atom: torch.Tensor, units: torch.Tensor, free: torch.Tensor, root_free: torch.Tensor,
               open_free: torch.Tensor, roots: torch.Tensor, opener: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``units (B,)`` taken from atom ``atom (B,)`` (``-1``: none) wherever it is kept: as the current atom,
        an open branch's root, an open ring's opener."""
        held = (atom >= 0)[:, None]
        return (free - units, root_free - units[:, None] * (held & (roots == atom[:, None])),
                open_free - units[:, None] * (held & (opener == atom[:, None])))

    def _blocked(self, opener: torch.Tensor, linked: torch.Tensor, atom: torch.Tensor,
                 parent: torch.Tensor) -> torch.Tensor:
        """bool ``(B, R)``: open rings that may not close on the current atom (class doc)."""
        joined = (opener[:, :, None] == linked[:, None, :]).any(-1)
        return (opener >= 0) & ((opener == atom[:, None]) | (opener == parent[:, None]) | joined)

    def allowed(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """bool ``(B, V)``: the syntax's next tokens that the atoms' units and aromatic orders allow and that leave a
        molecule that can still be finished (:meth:`_alive_after`)."""
        (kind, depth, opener, linked, atom, parent, _, _, pending, ring_order,
         free, root_free, open_free, aromatic, _, open_aromatic) = state
        allowed = self.kind_allowed[kind]                                                 # (B, V)
        order = torch.where(pending > 0, pending, 1)                                       # (B,)
        takes = bond_fits(free, aromatic, order)                                          # (B,) the atom
        attach = ~self.on_atom[kind] | takes                                               # (B,)
        new_takes = bond_fits(self.capacity, self.aromatic, order[:, None])                # (B, V) the new atom
        roles = self.roles
        allowed &= (roles != ATOM) | (attach[:, None] & new_takes)
        allowed &= (roles != BOND) | bond_fits(free[:, None], aromatic[:, None], self.order)
        allowed[:, self.open_ids] &= ((free >= 1) & (depth < MAX_DEPTH))[:, None]
        allowed[:, self.close_ids] &= (depth > 0)[:, None]
        closed_order = torch.where(pending[:, None] > 0, pending[:, None], ring_order)    # (B, R)
        opening = (opener < 0) & (takes & (order <= 2))[:, None]
        closing = (opener >= 0) & (closed_order <= 2) & bond_fits(free[:, None], aromatic[:, None], closed_order) \
            & ((open_aromatic == 0) | (closed_order <= open_aromatic)) \
            & (open_free >= bond_cost(open_aromatic, closed_order) - bond_cost(open_aromatic, ring_order))
        allowed[:, self.ring_ids] &= (opening | closing) & ~self._blocked(opener, linked, atom, parent)
        allowed[:, self.eos] &= (depth == 0) & (opener < 0).all(1)
        return allowed & self._alive_after(state)

    @staticmethod
    def _spare_root(root_free: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """int64 ``(B,)``: the slot of the innermost open branch (of the ``depth (B,)`` outermost) whose root has a
        unit left, ``-1`` if none."""
        slots = torch.arange(root_free.shape[1], device=depth.device)
        spare = (root_free >= 1) & (slots < depth[:, None])
        return torch.where(spare, slots, -1).amax(1)

    def _alive_after(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """bool ``(B, V)``: tokens after which the molecule can still be finished. It can unless a ring is open,
        the current atom has no unit left (an atom or a ring bond that saturates it, a ``)`` back to a saturated
        root) and no open branch's root has one either (a completion goes back up to such a root and closes the
        rings on fresh atoms from there); bonds, ``(`` and ``.`` lead to an atom, which can take the rings."""
        (kind, depth, opener, _, atom, _, roots, _, pending, ring_order, free, root_free, _, aromatic, _, _) = state
        vocab = self.vocab_size
        order = torch.where(pending > 0, pending, 1)                                       # (B,)
        open_ = opener >= 0
        n_open = open_.sum(1)
        # the current atom's units after each token and the rings open after it
        units = free[:, None].repeat(1, vocab)                                             # (B, V)
        ring_bond = torch.where(open_, torch.where(pending[:, None] > 0, pending[:, None], ring_order), order[:, None])
        units[:, self.ring_ids] -= bond_cost(aromatic[:, None], ring_bond)
        rings = n_open[:, None].repeat(1, vocab)
        rings[:, self.ring_ids] += torch.where(open_, -1, 1)
        joined = ~self.needs_atom[kind] | (kind == CHAIN_BOND) | (kind == BRANCH_BOND) | (kind == AFTER_OPEN)
        new_units = self.capacity - bond_cost(self.aromatic, order[:, None]) * joined[:, None]   # (B, V)
        units = torch.where(self.roles == ATOM, new_units, units)
        parent_slot = (depth - 1).clamp(min=0)[:, None]
        units[:, self.close_ids] = root_free.gather(1, parent_slot)
        # a root to go back to: after ")" one further out; after "(" the atom joined to the root spends it
        joins_root = (depth > 0) & (roots.gather(1, parent_slot)[:, 0] == atom)            # just after ( or (=
        cost = bond_cost(aromatic, order) * joins_root                                # (B,)
        spent = torch.zeros_like(root_free).scatter(1, parent_slot, cost[:, None])
        spare = (self._spare_root(root_free - spent, depth) >= 0)[:, None].repeat(1, vocab)
        spare[:, self.close_ids] = (self._spare_root(root_free, depth - 1) >= 0)[:, None]
        settles = (self.roles == ATOM) | (self.roles == RING) | (self.roles == CLOSE)
        return ~(settles & (rings > 0) & (units < 1) & ~spare)

    def need(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The length of one completion, :data:`~genlab.sampling.token_grammar.NEVER` if there is none.

        With no ring open: an atom if the kind needs one, then a ``)`` per open branch. With rings open, from the
        current atom: first the atoms that free every open ring to close (two if a ring opened on the atom, whose
        next atom is its child; one if the kind needs an atom or a ring is blocked otherwise), then the rings
        closed along a chain of atoms (:meth:`_chain`), then a ``)`` per open branch. Where the current atom has
        no unit for that, the completion first goes back up with ``)`` to the innermost open branch whose root
        has one and starts from there. Some allowed token lowers it by one, or by more in the few aromatic states
        with double ring bonds where the chain overcounts (4 of 400 random walks over MOSES's vocabulary)."""
        (kind, depth, opener, linked, atom, parent, roots, _, pending, ring_order,
         free, root_free, _, aromatic, _, _) = state
        open_ = opener >= 0
        n_open = open_.sum(1)
        widest = torch.where(open_, ring_order, 1).amax(1) if open_.shape[1] else torch.ones_like(n_open)  # (B,)
        groups = self._groups(opener)
        kind_atom = self.needs_atom[kind] | ((kind == AFTER_CLOSE) & (n_open > 0))
        here = (open_ & (opener == atom[:, None])).any(1)
        blocked = self._blocked(opener, linked, atom, parent).any(1) | ((aromatic > 0) & (widest > aromatic))
        first = torch.maximum(2 * here.long(), (kind_atom | blocked).long())
        on_current = first == 0
        joined = torch.where(pending > 0, pending, 1)                  # the bond the first fresh atom comes by
        first_units = torch.where(on_current, free, torch.where(first == 1, self.fresh + 1 - joined, self.fresh))
        chain = self._chain(groups, widest, first_units, torch.where(on_current, bond_cost(aromatic, widest), widest))
        reaches = on_current | ~self.on_atom[kind] | (free >= 1)
        from_here = torch.where(reaches & (chain > 0), first + chain - 1 + n_open + depth, NEVER)
        from_here = torch.where(n_open > 0, from_here, self.needs_atom[kind].long() + depth)
        slot = self._spare_root(root_free, depth)
        root = roots.gather(1, slot.clamp(min=0)[:, None])[:, 0]
        root_first = 1 + (open_ & (opener == root[:, None])).any(1).long()
        fresh = self._chain(groups, widest, torch.full_like(free, self.fresh), widest)
        from_root = torch.where(self.on_atom[kind] & (slot >= 0) & (fresh > 0),
                                depth + root_first + fresh - 1 + n_open, NEVER)
        return torch.where(from_here < NEVER, from_here, from_root)

    def _groups(self, opener: torch.Tensor) -> torch.Tensor:
        """int64 ``(B, R)``: the open rings of each opening atom, once per atom (0 for the other labels), largest
        first."""
        open_ = opener >= 0
        same = (opener[:, :, None] == opener[:, None, :]) & open_[:, :, None] & open_[:, None, :]   # (B, R, R)
        first_of_group = open_ & ~(same & self.earlier).any(2)
        return torch.where(first_of_group, same.sum(2), 0).sort(1, descending=True).values

    def _chain(self, groups: torch.Tensor, widest: torch.Tensor, units: torch.Tensor,
               cost: torch.Tensor) -> torch.Tensor:
        """int64 ``(B,)``: the atoms of the shortest chain that closes every open ring, 0 where none does.

        ``groups (B, R)``: the open rings per opening atom (:meth:`_groups`). The chain's first atom has ``units
        (B,)`` left and a closure takes ``cost (B,)`` of them (the current atom, or a fresh one after the bond that
        joins it); every later atom is fresh (:attr:`fresh` units, ``widest`` a closure). An atom closes at most one
        ring per opening atom (two would be one bond) and as many as its units allow, keeping one for the next atom
        unless it is the last; each round closes the opening atoms with the most rings left first, which needs the
        fewest rounds (Hu's rule for chains of unit tasks)."""
        labels = groups.shape[1]
        fresh_last, fresh_next = self.fresh // widest, (self.fresh - 1) // widest           # (B,)
        last = units.clamp(min=0) // cost
        next_ = torch.where(units >= 1, (units - 1) // cost, -1)
        columns = torch.arange(labels, device=groups.device)
        length = torch.zeros_like(widest)
        done = torch.zeros(len(widest), dtype=torch.bool, device=groups.device)
        left = groups
        for step in range(labels + 2):
            finish = ~done & ((left > 0).sum(1) <= last) & ((left[:, 0] if labels else length) <= 1)
            length, done = torch.where(finish, step + 1, length), done | finish
            if bool(done.all()):
                break
            goes_on = ~done & (next_ >= 0)
            left = (left - ((columns < next_[:, None]) & (left > 0) & goes_on[:, None]).long()).sort(
                1, descending=True).values
            done = done | ~goes_on   # a chain that cannot go on ends without closing its rings (length 0)
            last, next_ = fresh_last, fresh_next
        return length

    def need_after(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:meth:`need` of the state after each id: every row advanced by every id at once, ``(B, V)``."""
        rows, vocab = len(state[0]), self.vocab_size
        tiled = tuple(part.repeat_interleave(vocab, 0) for part in state)
        tokens = torch.arange(vocab, device=state[0].device).repeat(rows)
        after = self.need(self.advance(tiled, tokens)).view(rows, vocab)
        after[:, self.eos] = 0
        return after
