"""Aromatic rings whose electrons pair up: the Kekulé check that :class:`KekuleGrammar` adds to the SMILES
grammar, so that a sample's aromatic rings are ones RDKit can kekulise.

RDKit reads an aromatic ring by writing it back as alternating single and double bonds (kekulisation). Every
aromatic atom that needs a double bond must get exactly one, over an aromatic bond to a neighbour that needs one
too: the atoms that need one must be covered by a *matching* of the aromatic bonds. Which atoms need one
(:func:`needs_pi`, checked against RDKit in the tests): ``c`` unless it carries a double bond outside the ring
(``O=c1cc[nH]cc1``), ``n`` with two bonds (pyridine's) but not with three (``Cn1cccc1``), never ``o``, ``s`` or
``[nH]`` (their lone pair is the ring's two electrons); an atom this module does not model (``[n+]``, ``b``,
``[se]``) may or may not take one. ``c1ccnc1`` fails (five atoms that need a double bond on a five-ring: one is
left over) where ``c1cc[nH]c1`` kekulises. 98 % of the invalid samples of two MOSES models failed this way (224 of
229 and 465 of 474, 300-s fits, sampled inside the SMILES grammar alone).

Whether a matching exists depends on the whole ring system, but a SMILES string finishes an atom's bonds as it
goes: once the string has moved past an atom that is not the current one, not the root of an open branch and
opens no ring still open, no bond can reach it any more (it is *final*; the others can gain as many bonds as
their units left and open rings say, :class:`_Later`). So the check refuses a token after which the final atoms
that need a double bond can no longer all get one, over aromatic bonds that can still lie on a ring, or an
aromatic atom can no longer lie on a ring (:func:`kekulises`; the atoms not yet final are free to take a double
bond or not, and what is still to be written stands for any completion). That condition is necessary for the
finished molecule to kekulise, so the check never refuses a molecule RDKit reads but for one with a double or
triple bond between two aromatic atoms (RDKit reads some and not others; none of MOSES's first 200,000 training
molecules has one). At the end of a molecule every atom is final and the check is exact for the atoms it models
(an aromatic bond pairs only on a ring, ``c1cccc1c1cccc1`` fails; every aromatic atom lies on one), but for a
rare kind of large ring of aromatic and other atoms that RDKit refuses though the atoms pair (the tests' random
walks meet two in 300). The check looks one token ahead, so a string can run into a corner no token gets out of
(``O=c1c2cnccn2``: its ``n`` gains a third bond from the chain that must go on); the processor then keeps that
row inside the syntax alone (:meth:`KekuleGrammar.syntax_allowed`).

The state adds, per row, the first :data:`MAX_ATOMS` atoms' kind, bond count, whether a double bond outside the
ring was written on them, and their aromatic neighbours and all neighbours as bit masks; a longer molecule is
not checked past that atom. The check itself runs in Python, row by row, one matching search (over a few dozen
atoms) per kind of move.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Sequence

import torch

from genlab.data.smiles_grammar import ATOM, BOND, BRACKET, CLOSE, DOT, END, OPEN, SmilesGrammar, smiles_role

#: Atoms a row's Kekulé check follows (bits of an int64 neighbour mask).
MAX_ATOMS = 63
#: An atom's kind for kekulisation: aliphatic (or none), a ``c`` (needs a double bond unless it carries one
#: outside the ring), an ``n`` (needs one with two bonds), a lone-pair atom (``o``, ``s``, ``[nH]``: never), or an
#: aromatic atom this module does not model (may take one or not).
ALIPHATIC, PI_CARBON, PI_NITROGEN, LONE_PAIR, UNMODELLED = range(5)
#: What a bond token makes of a bond: implicit (aromatic between aromatic atoms), single, double or more,
#: aromatic (``:``).
IMPLICIT, SINGLE, MULTIPLE, AROMATIC = range(4)
BOND_KIND = {"-": SINGLE, "/": SINGLE, "\\": SINGLE, "=": MULTIPLE, "#": MULTIPLE, "$": MULTIPLE, ":": AROMATIC}


def pi_kind(token: str) -> int:
    """The kekulisation kind of an atom token (module doc): ``c``/``[cH]`` a carbon, ``n``/``[n]`` a nitrogen,
    ``o``, ``s``, ``[nH]``, ``[o]``, ``[s]`` lone-pair atoms, an uppercase atom aliphatic, any other aromatic atom
    (charged, ``b``, ``p``, ``[se]``) unmodelled."""
    if token.startswith("["):
        match = BRACKET.fullmatch(token)
        if match is None or not match["symbol"][0].islower():
            return ALIPHATIC
        hydrogens = 0 if match["h"] is None else int(match["h"] or 1)
        plain = {("c", 0): "c", ("c", 1): "c", ("n", 0): "n", ("n", 1): "[nH]", ("o", 0): "o", ("s", 0): "s"}
        token = "?" if match["charge"] or "@" in token else plain.get((match["symbol"], hydrogens), "?")
    return {"c": PI_CARBON, "n": PI_NITROGEN, "o": LONE_PAIR, "s": LONE_PAIR, "[nH]": LONE_PAIR}.get(
        token, ALIPHATIC if token[:1].isupper() or token == "*" else UNMODELLED)


def needs_pi(kind: int, bonds: int, outside: bool) -> bool:
    """Whether a final atom of kekulisation ``kind`` with ``bonds`` bonds, ``outside`` marking a double bond outside
    its ring, needs a double bond in the ring (module doc)."""
    return not outside and (kind == PI_CARBON or (kind == PI_NITROGEN and bonds <= 2))


def may_take_pi(kind: int, bonds: int, outside: bool) -> bool:
    """Whether an atom may take a double bond in its ring: one that needs one (final or not: one not yet final may
    keep that need, or gain a bond that ends it), or an unmodelled one."""
    return kind == UNMODELLED or needs_pi(kind, bonds, outside)


def _bits(mask: int):
    """The indices of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def covering_matching(required: int, able: int, neighbours: Sequence[int]) -> bool:
    """Whether some matching of the graph ``neighbours`` (atom ``i``'s neighbours as a bit mask) restricted to the
    atoms in ``able`` covers every atom in ``required`` (bit masks; ``required`` within ``able``).

    A depth-first search: the required atom with the fewest free neighbours is paired first (none: fail), each of
    its neighbours in turn; visited ``(required, able)`` pairs are remembered. Aromatic systems have a few dozen
    atoms at most, each at most three aromatic neighbours."""
    seen: set[tuple[int, int]] = set()

    def search(required: int, able: int) -> bool:
        if not required:
            return True
        if (required, able) in seen:
            return False
        seen.add((required, able))
        atom = min(_bits(required), key=lambda i: bin(neighbours[i] & able).count("1"))
        rest = able & ~(1 << atom)
        return any(search(required & ~(1 << atom) & ~(1 << other), rest & ~(1 << other))
                   for other in _bits(neighbours[atom] & rest))

    return search(required, able)


def ring_bonds(atoms: int, bonds: Sequence[int]) -> set[tuple[int, int]]:
    """The bonds ``(i, j)``, ``i < j``, of the molecule ``bonds`` (atom ``i``'s neighbours as a bit mask, atoms
    ``0 .. atoms-1``) that lie on a ring: those that are not bridges (Tarjan's low-link, iterative)."""
    order, low, on_ring = [-1] * atoms, [0] * atoms, set()
    counter = 0
    for root in range(atoms):
        if order[root] >= 0:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack = [(root, -1, list(_bits(bonds[root])))]
        while stack:
            atom, parent, todo = stack[-1]
            if todo:
                other = todo.pop()
                if other == parent:
                    continue
                if order[other] < 0:
                    order[other] = low[other] = counter
                    counter += 1
                    stack.append((other, atom, list(_bits(bonds[other]))))
                else:
                    low[atom] = min(low[atom], order[other])
                continue
            stack.pop()
            if parent >= 0:
                low[parent] = min(low[parent], low[atom])
    for atom in range(atoms):
        for other in _bits(bonds[atom]):
            if atom < other and not (low[other] > order[atom] or low[atom] > order[other]):
                on_ring.add((atom, other))
    return on_ring


class KekuleGrammar:
    """:class:`~genlab.data.smiles_grammar.SmilesGrammar` with the Kekulé check (module doc): the same counting
    grammar interface (:mod:`genlab.sampling.token_grammar`), its state the SMILES state followed by, rows
    first, ``kind (B, A)``, ``bonds (B, A)``, ``outside (B, A)``, ``pi (B, A)`` (aromatic neighbours, bit mask),
    ``adjacent (B, A)`` (all neighbours, bit mask), ``pending (B,)`` (the kind of a bond just written,
    :data:`BOND_KIND`), ``label_bond (B, R)`` (the bond kind each open ring was opened with) and ``done (B,)``
    (the molecule has ended), ``A`` = :data:`MAX_ATOMS`.

    ``need`` and ``need_after`` are the SMILES grammar's: the check may refuse every token that finishes in time,
    or every token at all where the string has run into a corner no completion gets out of (it looks one token
    ahead); then the row goes on inside the syntax alone (:meth:`syntax_allowed`), counted by the processor.

    Args:
        syntax: the SMILES grammar this one checks further.
        tokens: the codec's tokens (id ``i`` is ``tokens[i]``).
    """

    def __init__(self, syntax: SmilesGrammar, tokens: Sequence[str]) -> None:
        self.syntax = syntax
        self.name, self.vocab_size, self.eos, self.max_rise = \
            "SMILES grammar with Kekulé check", syntax.vocab_size, syntax.eos, syntax.max_rise
        roles = [smiles_role(t) for t in tokens] + [END]
        self.pi_kind = torch.tensor([pi_kind(t) if r == ATOM else ALIPHATIC for t, r in zip(tokens, roles)] + [0])
        self.bond_kind = torch.tensor([BOND_KIND.get(t, IMPLICIT) for t in tokens] + [IMPLICIT])
        kinds = self.pi_kind.tolist()
        atom_ids = [i for i, r in enumerate(roles) if r == ATOM]
        #: atom ids that may pair with an aromatic current atom (over an implicit or ``:`` bond)
        self.pairing_ids = [i for i in atom_ids if kinds[i] in (PI_CARBON, PI_NITROGEN, UNMODELLED)]
        self.atom_ids, self.pairing_set = atom_ids, set(self.pairing_ids)
        self.aromatic_ids = [k != ALIPHATIC for k in kinds]
        #: units each atom id has left after joining by a bond of order 1, 2, 3 (the SMILES grammar's capacities)
        self.units_after = [[int(syntax.capacity[i]) - (1 if int(syntax.aromatic[i]) else o) for o in (1, 2, 3)]
                            for i in range(len(roles))]
        self.single_ids = [i for i, t in enumerate(tokens) if BOND_KIND.get(t) == SINGLE]
        self.double_ids = [i for i, t in enumerate(tokens) if BOND_KIND.get(t) == MULTIPLE]
        self.close_ids = [i for i, r in enumerate(roles) if r == CLOSE]
        self.open_ids = [i for i, r in enumerate(roles) if r == OPEN]
        self.dot_ids = [i for i, r in enumerate(roles) if r == DOT]
        self.label_ids = syntax.ring_ids.tolist()                          # label r's id

    def to(self, device: torch.device) -> "KekuleGrammar":
        moved = copy.copy(self)
        moved.syntax = self.syntax.to(device)
        moved.pi_kind, moved.bond_kind = self.pi_kind.to(device), self.bond_kind.to(device)
        return moved

    def start(self, rows: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        zeros = lambda *shape: torch.zeros(rows, *shape, dtype=torch.long, device=device)   # noqa: E731
        labels = len(self.label_ids)
        return (*self.syntax.start(rows, device), zeros(MAX_ATOMS), zeros(MAX_ATOMS),
                torch.zeros(rows, MAX_ATOMS, dtype=torch.bool, device=device), zeros(MAX_ATOMS), zeros(MAX_ATOMS),
                zeros(), zeros(labels), torch.zeros(rows, dtype=torch.bool, device=device))

    def advance(self, state: tuple[torch.Tensor, ...], token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inner, (kind, bonds, outside, pi, adjacent, pending, label_bond, done) = state[:-8], state[-8:]
        opener, atom, count = inner[2], inner[4], inner[7]
        role = self.syntax.roles[token]
        rows = torch.arange(len(token), device=token.device)
        kind, bonds, outside = kind.clone(), bonds.clone(), outside.clone()
        pi, adjacent = pi.clone(), adjacent.clone()
        hit = self.syntax.ring[token][:, None] == self.syntax.labels                    # (B, R) the label written
        closing, opening = hit & (opener >= 0), hit & (opener < 0)
        is_atom = role == ATOM
        # the bond this token makes: from the current atom to a new atom or to the ring's opener
        other = torch.where(is_atom, count, torch.where(closing.any(1), (opener * closing).sum(1), -1))
        bond = torch.where(closing.any(1) & (pending == IMPLICIT), (label_bond * closing).sum(1), pending)
        here = (atom >= 0) & (atom < MAX_ATOMS)
        there = (other >= 0) & (other < MAX_ATOMS)
        slot = count.clamp(max=MAX_ATOMS - 1)
        kind[rows, slot] = torch.where(is_atom & (count < MAX_ATOMS), self.pi_kind[token], kind[rows, slot])
        joined = here & there                                               # a bond between two followed atoms
        at, to = atom.clamp(0, MAX_ATOMS - 1), other.clamp(0, MAX_ATOMS - 1)
        bonds[rows, at] += (here & (there | opening.any(1) | (is_atom & (count >= MAX_ATOMS)))).long()
        bonds[rows, to] += (is_atom & there & (atom >= 0)).long()
        aromatic_bond = (bond == IMPLICIT) | (bond == AROMATIC)
        aromatic_pair = joined & (kind[rows, at] > 0) & (kind[rows, to] > 0) & aromatic_bond
        pi[rows, at] |= torch.where(aromatic_pair, 1 << to, 0)
        pi[rows, to] |= torch.where(aromatic_pair, 1 << at, 0)
        adjacent[rows, at] |= torch.where(joined, 1 << to, 0)
        adjacent[rows, to] |= torch.where(joined, 1 << at, 0)
        double = bond == MULTIPLE
        outside[rows, at] |= double & here & (there | opening.any(1))
        outside[rows, to] |= double & there & (atom >= 0)
        label_bond = torch.where(opening, pending[:, None], torch.where(closing, 0, label_bond))
        pending = torch.where(role == BOND, self.bond_kind[token], IMPLICIT)
        return (*self.syntax.advance(inner, token), kind, bonds, outside, pi, adjacent, pending, label_bond,
                done | (token == self.eos))

    def need(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.syntax.need(state[:-8])

    def need_after(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.syntax.need_after(state[:-8])

    def allowed(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """bool ``(B, V)``: the SMILES grammar's allowed tokens less those after which the molecule's aromatic rings
        can no longer kekulise (module doc): in Python, row by row, one small search per kind of move
        (:meth:`_refused`); in a molecule without aromatic atoms only the moves that write one."""
        inner, kind, done = state[:-8], state[-8], state[-1]
        allowed = self.syntax.allowed(inner)
        atom, count = inner[4], inner[7]
        rows = torch.nonzero(((kind > 0).any(1) | (atom >= 0)) & (count < MAX_ATOMS) & ~done)[:, 0].tolist()
        for row, values, grant in zip(rows, self._rows(state, rows), allowed[rows].tolist()):
            if self._inside(*values):   # a row the check could not keep (it left no token) has the syntax's
                allowed[row, [i for ids in self._refused(*values, grant) for i in ids]] = False
        return allowed

    def syntax_allowed(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """bool ``(B, V)``: the SMILES grammar's allowed tokens, for a row the check leaves without one
        (:class:`~genlab.sampling.token_grammar.GrammarProcessor`)."""
        return self.syntax.allowed(state[:-8])

    def _rows(self, state: tuple[torch.Tensor, ...], rows: list[int]) -> list[tuple]:
        """``rows`` of ``state`` as plain lists: this grammar's part, then the SMILES grammar's branch depth, ring
        openers, current atom, branch roots, atom count, pending bond order, the current atom's units left and the
        branch roots' (:meth:`_refused`'s arguments but ``grant``)."""
        inner = state[:-8]
        parts = (*state[-8:-1], *(inner[i] for i in (1, 2, 4, 6, 7, 8, 10, 11)))
        return list(zip(*(part[rows].tolist() for part in parts)))

    def _inside(self, kind: list[int], bonds: list[int], outside: list[bool], pi: list[int], adjacent: list[int],
                pending: int, label_bond: list[int], depth: int, opener: list[int], atom: int, roots: list[int],
                count: int, order: int, free: int, root_free: list[int]) -> bool:
        """Whether one row (:meth:`_rows`) can still kekulise."""
        later = _Later(opener, roots, root_free, depth, atom, count)
        count = min(count, MAX_ATOMS)
        return kekulises(kind[:count], bonds[:count], outside[:count], pi[:count], adjacent[:count], later(free))

    def _refused(self, kind: list[int], bonds: list[int], outside: list[bool], pi: list[int], adjacent: list[int],
                 pending: int, label_bond: list[int], depth: int, opener: list[int], atom: int, roots: list[int],
                 count: int, order: int, free: int, root_free: list[int], grant: list[bool]) -> list[list[int]]:
        """The groups of ids, among those ``grant`` allows, after which one row's aromatic atoms can no longer
        kekulise (one row's state, :meth:`_rows`). Each kind of move is one :func:`kekulises` call: the next atom
        (by its kind here and whether it keeps a unit), ``(``, ``-`` and ``=`` (unless a ring may close after them
        instead), a ring opened on an ``n``, ``)``, ``.``, the end of the molecule, and each open ring's closure.

        The atoms that can still gain bonds, and how many (:class:`_Later`); every other atom is final."""
        kind, bonds, outside, pi, adjacent = kind[:count], bonds[:count], outside[:count], pi[:count], adjacent[:count]
        later = _Later(opener, roots, root_free, depth, atom, count)
        branch_roots = later.branch_roots
        refused: list[list[int]] = []

        def refuse(ids: list[int], *check) -> None:
            ids = [i for i in ids if grant[i]]
            if ids and not (check and kekulises(*check)):
                refused.append(ids)

        aromatic = any(kind)
        if 0 <= atom < count < MAX_ATOMS:
            # the next atom (index count) joined to the current one, which then keeps its units left only as a
            # branch's root (after "(") and otherwise only its open rings
            joined, linked = bonds + [1], adjacent + [1 << atom]
            joined[atom] += 1
            linked[atom] |= 1 << count
            doubled = outside + [False]
            doubled[atom] = True
            pairing = kind[atom] > 0 and pending in (IMPLICIT, AROMATIC)
            paired = pi + [1 << atom]
            paired[atom] |= 1 << count
            unpaired = pi + [0]
            left = later(free - 1 if atom in branch_roots else 0)
            cost = min(max(order, 1), 3)
            groups: dict[tuple[int, bool, int], list[int]] = {}   # the next atom's kind, pairing, units left
            for i in self.atom_ids:
                if grant[i] and (aromatic or self.aromatic_ids[i]):   # an aliphatic molecule stays one
                    pairs = pairing and i in self.pairing_set
                    role = (PI_CARBON if i in self.pairing_set else LONE_PAIR) if self.aromatic_ids[i] else ALIPHATIC
                    groups.setdefault((role, pairs, min(max(self.units_after[i][cost - 1], 0), 2)), []).append(i)
            for (role, pairs, units), ids in groups.items():
                if pending == MULTIPLE and kind[atom] and role:   # never between two aromatic atoms (module doc)
                    refuse(ids)
                    continue
                refuse(ids, kind + [role], joined, doubled if pending == MULTIPLE else outside + [False],
                       paired if pairs else unpaired, linked, {**left, count: units})
            if aromatic:
                refuse(self.open_ids, kind + [PI_CARBON], joined, outside + [False], paired if pairing else unpaired,
                       linked, {**later(free - 1), count: 2})
            if aromatic and pending == IMPLICIT:   # a bond leads to an atom or closes a ring: refused if neither can
                for ids, bond, after in ((self.single_ids, SINGLE, outside + [False]),
                                         (self.double_ids, MULTIPLE, doubled)):
                    if any(grant[i] for i in ids) and not kekulises(kind + [ALIPHATIC], joined, after, unpaired,
                                                                   linked, {**left, count: 2}) \
                            and not any(self._closes(label, bond, label_bond, kind, bonds, outside, pi, adjacent,
                                                     opener, later, free, order, atom, depth)
                                        for label, first in enumerate(opener) if first >= 0):
                        refuse(ids)
            if kind[atom] == PI_NITROGEN:   # a ring opened on it is a third bond: it needs no double bond then
                opened = bonds.copy()
                opened[atom] += 1
                units = later(free)
                units[atom] = units.get(atom, 0) + 1
                refuse([self.label_ids[label] for label, first in enumerate(opener) if first < 0],
                       kind, opened, outside, pi, adjacent, units)
        if aromatic:
            if depth > 0:   # ")" and "." leave the current atom; only the end of the molecule finishes every atom
                refuse(self.close_ids, kind, bonds, outside, pi, adjacent, later(0))
            refuse(self.dot_ids, kind, bonds, outside, pi, adjacent, later(0))
            refuse([self.eos], kind, bonds, outside, pi, adjacent, {})
            for label, first in enumerate(opener):
                if first >= 0 and 0 <= atom < count and grant[self.label_ids[label]] \
                        and not self._closes(label, pending, label_bond, kind, bonds, outside, pi, adjacent, opener,
                                             later, free, order, atom, depth):
                    refused.append([self.label_ids[label]])
        return refused

    @staticmethod
    def _closes(label: int, pending: int, label_bond: list[int], kind: list[int], bonds: list[int],
                outside: list[bool], pi: list[int], adjacent: list[int], opener: list[int], later: _Later, free: int,
                order: int, atom: int, depth: int) -> bool:
        """Whether closing ring ``label`` on the current atom ``atom``, after a bond of kind ``pending``, leaves a
        molecule that can kekulise (:meth:`_refused`'s arguments; ``later`` its map of the bonds atoms can still
        gain)."""
        first = opener[label]
        bond = label_bond[label] if pending == IMPLICIT else pending
        joined, closed, paired, linked = bonds.copy(), outside.copy(), pi.copy(), adjacent.copy()
        joined[atom] += 1
        linked[atom] |= 1 << first
        linked[first] |= 1 << atom
        if bond == MULTIPLE:
            if kind[atom] and kind[first]:
                return False   # never between two aromatic atoms (module doc)
            closed[atom] = closed[first] = True
        if kind[first] and kind[atom] and bond in (IMPLICIT, AROMATIC):
            paired[atom] |= 1 << first
            paired[first] |= 1 << atom
        spent = 1 if kind[atom] else max(order, 1)   # an unwritten closure bond is single or the ring's
        if kind[atom] == PI_NITROGEN and depth == 0 and sum(o >= 0 for o in opener) > 1:
            joined[atom] += 1   # no branch to leave by and a ring still open: the chain goes on from this atom
        return kekulises(kind, joined, closed, paired, linked, later(free - spent, without=label))


class _Later:
    """The bonds each atom of one row can still gain (:meth:`KekuleGrammar._refused`): an open ring's opener one per
    ring, the current atom and each open branch's root its units left."""

    def __init__(self, opener: list[int], roots: list[int], root_free: list[int], depth: int, atom: int,
                 count: int) -> None:
        self.rings = Counter(first for first in opener if first >= 0)
        self.branch_roots = {roots[slot]: root_free[slot] for slot in range(min(depth, len(roots))) if roots[slot] >= 0}
        self.opener, self.atom = opener, atom if 0 <= atom < count else -1

    def __call__(self, current_units: int, *, without: int = -1) -> dict[int, int]:
        """Atom -> bonds it can still gain, the current atom with ``current_units`` left and ring ``without`` (a
        label) closed."""
        units = dict(self.branch_roots)
        if self.atom >= 0:
            units[self.atom] = current_units
        left = Counter(self.rings)
        if without >= 0:
            left[self.opener[without]] -= 1
        for held, n in units.items():
            left[held] += max(n, 0)
        return {held: n for held, n in left.items() if n > 0}


def kekulises(kind: Sequence[int], bonds: Sequence[int], outside: Sequence[bool], pi: Sequence[int],
              adjacent: Sequence[int], later: dict[int, int]) -> bool:
    """Whether atoms of these kekulisation kinds, bond counts, double bonds outside their ring, aromatic neighbours
    and all neighbours (bit masks) can still kekulise, ``later`` mapping each atom not yet final to the bonds it
    can still gain (module doc).

    A bond can end up on a ring only if it lies on a cycle once whatever is still to be written stands as two
    joined atoms, every atom not final bonded to the first and an atom with two bonds or more to gain to the
    second as well (a ring can run through the unwritten part, or start and end there): an aromatic atom must
    have such a bond, and only such bonds pair. With every atom final this is RDKit's rule exactly."""
    atoms, later = len(kind), {i: n for i, n in later.items() if n > 0}
    first, second = 1 << atoms, 1 << (atoms + 1)
    graph = [mask | (first if later.get(i, 0) >= 1 else 0) | (second if later.get(i, 0) >= 2 else 0)
             for i, mask in enumerate(adjacent)]
    graph += [sum(1 << i for i in later) | second, sum(1 << i for i, n in later.items() if n >= 2) | first]
    on_ring = ring_bonds(atoms + 2, graph)
    if any(kind[i] and not any((min(i, j), max(i, j)) in on_ring for j in _bits(graph[i])) for i in range(atoms)):
        return False
    pi = [sum(1 << j for j in _bits(pi[i]) if (min(i, j), max(i, j)) in on_ring) for i in range(atoms)]
    required = sum(1 << i for i in range(atoms) if kind[i] and i not in later
                   and needs_pi(kind[i], bonds[i], outside[i]))
    able = sum(1 << i for i in range(atoms) if kind[i] and may_take_pi(kind[i], bonds[i], outside[i]))
    return covering_matching(required, able, pi)
