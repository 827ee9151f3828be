"""One decoding step of a GPT-2-layout network over many sequences at once, every row bit-identical to
the step that sequence takes alone.

Why not simply stack the rows: a matrix product over ``B`` rows is not ``B`` products of one row. The
BLAS picks its kernel, and so the order of the float32 sums, by the matrix shape, so on torch 2.13 with
MKL the logits of a row in a batch of 8 differ in their last bits from the same row's logits alone, at
every layer size tried (16 to 1536 wide). Sampling from such logits would, once in a while, draw another
token than the request draws alone, and the text would fork from there. So every operation of the step
runs batched only where that gives each row exactly the bits it gets alone, and row by row elsewhere:

- a linear layer as ``torch.bmm`` of the rows with the shared weight (a batch of one-row products, the
  product a lone row gets) where a probe at construction finds it bit-identical to the layer applied to
  one row, for every batch size ``1 .. max_rows``; otherwise (e.g. layers under 400 multiply-adds, where
  torch's ``bmm`` uses its own loop; a quantised layer) the layer's own forward row by row;
- layer norms batched where the same probe finds them row-exact (their kernel works row by row), else
  row by row;
- the GELU batched only where the structure makes it exact: torch computes an elementwise function in
  vector chunks with a scalar tail, and the two paths differ in the last bit for *some* inputs (so a
  probe on random values can miss it). A row of a multiple of :data:`CHUNK` values, in calls of at
  most :data:`GRAIN` values (one thread, no split of the range), goes through the vector path in every
  element, alone or batched; other widths run row by row;
- attention in one call over every sequence: the keys and values live in one
  :class:`~genlab.nn.attention.SlotCache`, a row per sequence, and ``scaled_dot_product_attention`` reads
  the first ``R`` rows and the first whole blocks of :data:`~genlab.nn.attention.DECODE_ALIGN` slots that
  the longest sequence needs, under a mask that hides each row's unwritten slots. A lone sequence decodes
  through the same block-aligned read (:meth:`~genlab.nn.attention.KVCache.read_length`), and the kernel
  computes each (row, head) on its own and gives the same bits for more masked blocks, so every row gets
  the bits it gets alone. Where the check below finds otherwise (another kernel; torch 2.13's CPU kernel
  with more than one thread, which splits a lone row's keys among the threads and a batch's not),
  attention runs row by row, each over its own blocks, exactly the lone call;
- embeddings and residual sums batched: a gather and an IEEE addition are exact at any batch size.

Windows (a prompt, or the last half-context once a sequence's cache is full) are encoded by the network's
own ``forward``. Several windows of the same length ``T`` go through it in one call
(:meth:`RowExactStep.encode`) where that gives each the logits and the keys and values it gets alone: at one
thread (no kernel splits its range by the batch), where ``T`` times the MLP width is whole :data:`CHUNK`
values (the GELU of each window then runs through the vector path in every element, as alone), and where a
probe of that shape ``(B, T)``, run once, finds every window bit-identical to its encode alone (the products
over ``B * T`` rows against ``T`` rows). Elsewhere each window is encoded alone.

The summation order of the products and norms depends on shapes, not on values, so a probe on random
values stands for all values of those shapes (a different kernel changes most of the outputs). A last
check runs the whole step against the network's own ``forward`` on each row alone; a network that fails
it, or whose layout differs from :class:`genlab.models.transformer.GPT`'s (``wte, wpe, h[i].{ln_1,
attn.{qkv, proj, n_head}, ln_2, mlp.{fc, proj}}, ln_f, lm_head``), is refused with
:class:`~genlab.errors.NotSupportedError`, and the caller decodes one sequence at a time.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import NotSupportedError
from genlab.nn.attention import DECODE_ALIGN, KVCache, SlotCache, round_up

Rows = Callable[[torch.Tensor], torch.Tensor]


class RowOp:
    """``f`` applied to ``x (B, 1, D)``: batched for the batch sizes where that is row-exact, else row by row.

    Args:
        one: ``f`` itself, applied to a single row ``(1, 1, D)`` (what the lone sequence calls).
        batched: the same maths for ``(B, 1, D)`` at once, or ``None`` (always row by row).
        exact: batch sizes at which ``batched`` gives every row the bits ``one`` gives it.
    """

    def __init__(self, one: Rows, batched: Rows | None, exact: frozenset[int]) -> None:
        self.one, self.batched, self.exact = one, batched, exact

    @classmethod
    def probed(cls, one: Rows, batched: Rows | None, width: int, max_rows: int, *,
               generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> "RowOp":
        """A RowOp whose ``exact`` sizes are those where ``batched`` matched ``one`` bit for bit on random rows."""
        if batched is None:
            return cls(one, None, frozenset())
        x = torch.randn(max_rows, 1, width, generator=generator).mul_(3).to(device=device, dtype=dtype)
        alone = torch.cat([one(x[i:i + 1].clone()) for i in range(max_rows)])
        exact = frozenset(b for b in range(1, max_rows + 1) if torch.equal(batched(x[:b]), alone[:b]))
        return cls(one, batched, exact)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, D) -> (B, 1, D')
        if self.batched is not None and x.shape[0] in self.exact:
            return self.batched(x)
        # a fresh (aligned) row, as the lone sequence's input is: a BLAS may choose its kernel by alignment
        return torch.cat([self.one(x[i:i + 1].clone()) for i in range(x.shape[0])])


def _linear_rows(layer: nn.Module) -> Rows | None:
    """``layer`` as a batch of one-row products, where it is a plain ``nn.Linear``."""
    if type(layer) is not nn.Linear:
        return None
    weight_t, bias = layer.weight.t(), layer.bias
    stacked: dict[int, torch.Tensor] = {}   # batch size -> the weight's view repeated (no copy), made once

    def rows(x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, in) -> (B, 1, out)
        B = x.shape[0]
        if B not in stacked:
            stacked[B] = weight_t.expand(B, *weight_t.shape)
        y = torch.bmm(x, stacked[B])
        return y if bias is None else y.add_(bias)   # in place: the same sum, one allocation fewer

    return rows


def _norm_rows(norm: nn.Module) -> Rows:
    """``norm`` on ``(B, 1, D)``: the layer norm's function itself where it is a plain ``nn.LayerNorm`` (the same
    kernel, without the module call: a tenth of the Python time of a 16-row step went to module calls)."""
    if type(norm) is not nn.LayerNorm:
        return norm
    shape, weight, bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)


#: Values below which torch runs an elementwise kernel on one thread (``at::internal::GRAIN_SIZE``).
GRAIN = 32768
#: Values per vector chunk, rounded up over CPU instruction sets (AVX-512 unrolled twice: 32 floats).
CHUNK = 64


def _elementwise_rows(function: Rows, width: int) -> Rows | None:
    """``function`` on ``(B, 1, width)`` in calls of at most GRAIN values, where ``width`` is whole chunks."""
    if width % CHUNK:
        return None
    group = max(1, GRAIN // width)

    def rows(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= group:
            return function(x)
        return torch.cat([function(x[start:start + group]) for start in range(0, x.shape[0], group)])

    return rows


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")   # GPT-2's MLP (genlab.models.transformer.gpt.MLP)


class _Layer:
    """The row ops of one block."""

    def __init__(self, block: nn.Module, make: Callable[[Rows, Rows | None, int], RowOp], n_embd: int) -> None:
        attn, mlp = block.attn, block.mlp
        self.attn = attn
        self.n_head = attn.n_head
        self.ln_1 = make(block.ln_1, _norm_rows(block.ln_1), n_embd)
        self.qkv = make(attn.qkv, _linear_rows(attn.qkv), n_embd)
        self.proj = make(attn.proj, _linear_rows(attn.proj), n_embd)
        self.ln_2 = make(block.ln_2, _norm_rows(block.ln_2), n_embd)
        hidden = mlp.fc(block.ln_2.weight.new_zeros(1, 1, n_embd)).shape[-1]
        self.hidden = hidden
        self.fc = make(mlp.fc, _linear_rows(mlp.fc), n_embd)
        self.gelu = make(_gelu, _elementwise_rows(_gelu, hidden), hidden)
        self.mlp_proj = make(mlp.proj, _linear_rows(mlp.proj), hidden)


class RowExactStep:
    """One token for each of ``B`` sequences, each row's logits bit-identical to its step alone (module doc).

    Args:
        network: a GPT-2-layout network in eval mode (:class:`genlab.models.transformer.GPT`).
        max_rows: the largest batch the step will be given; row-exactness is probed for ``1 .. max_rows``.
        seed: of the probe's random rows (the probe's verdict does not depend on it).

    Raises:
        NotSupportedError: the network has another layout, is training, or fails the whole-step check
            (at construction, or at a call after the process changed its thread count and the probe re-ran).
    """

    def __init__(self, network: nn.Module, *, max_rows: int, seed: int = 0) -> None:
        if network.training:
            raise NotSupportedError("the network is in training mode (dropout): decode in eval mode")
        self.network, self.max_rows, self.seed = network, max_rows, seed
        self._probe()

    def _probe(self) -> None:
        """Decide batched or row by row for every op, then check the whole step (module doc). Kernels may
        split work by the thread count, so the verdict holds for :attr:`threads` threads only."""
        network = self.network
        self.threads = torch.get_num_threads()
        self._encodes: dict[tuple[int, int], bool] = {}   # (windows, length) -> encoded together exactly
        try:
            weight = network.wte.weight
            n_embd = weight.shape[1]
            generator = torch.Generator().manual_seed(self.seed)
            device, dtype = weight.device, weight.dtype

            def make(one: Rows, batched: Rows | None, width: int) -> RowOp:
                return RowOp.probed(one, batched, width, self.max_rows, generator=generator, device=device,
                                    dtype=dtype)

            wte, wpe = network.wte, network.wpe
            if all(type(e) is nn.Embedding and e.max_norm is None for e in (wte, wpe)):   # a gather, as the module
                self._embed = lambda tokens, positions: (F.embedding(tokens[:, None], wte.weight)
                                                         + F.embedding(positions[:, None], wpe.weight))
            else:
                self._embed = lambda tokens, positions: wte(tokens[:, None]) + wpe(positions[:, None])
            with torch.inference_mode():
                self.layers = [_Layer(block, make, n_embd) for block in network.h]
                self.ln_f = make(network.ln_f, _norm_rows(network.ln_f), n_embd)
                self.lm_head = make(network.lm_head, _linear_rows(network.lm_head), n_embd)
        except AttributeError as error:
            raise NotSupportedError(f"the network does not have GPT-2's layout ({error})") from None
        self.check(generator)

    @property
    def batched_ops(self) -> dict[str, int]:
        """How many batch sizes each kind of op runs batched at (the rest row by row): for logs and tests."""
        ops = {"ln_f": self.ln_f, "lm_head": self.lm_head}
        for index, layer in enumerate(self.layers):
            for name in ("ln_1", "qkv", "proj", "ln_2", "fc", "gelu", "mlp_proj"):
                ops[f"h.{index}.{name}"] = getattr(layer, name)
        return {name: len(op.exact) for name, op in ops.items()}

    def new_cache(self) -> SlotCache:
        """An empty :class:`~genlab.nn.attention.SlotCache` for this network's sequences (up to its context)."""
        network = self.network
        weight, n_head = network.wte.weight, self.layers[0].n_head
        return SlotCache(len(self.layers), n_head, network.block_size, weight.shape[1] // n_head,
                         device=weight.device, dtype=weight.dtype)

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, cache: SlotCache, slots: list[int],
                 lengths: list[int]) -> torch.Tensor:
        """Logits ``(B, V)`` of the token after ``tokens (B,)`` at ``positions (B,)``.

        Row ``b`` continues the sequence in slot ``slots[b]`` of ``cache``, which holds ``lengths[b]``
        positions; its keys and values are written there at position ``lengths[b]``, as
        ``network(token[None, None], cache=row, positions=position[None, None])`` writes them into a lone
        block-aligned cache ``row`` of that length; like that call, this leaves counting the new position
        to the caller.
        """
        if torch.get_num_threads() != self.threads:
            self._probe()
        device = tokens.device
        index, length = torch.tensor([slots, lengths], device=device).unbind(0)        # (B,) each
        x = self._embed(tokens, positions)                                             # (B, 1, C)
        B, _, C = x.shape
        R, S = max(slots) + 1, round_up(max(lengths) + 1, cache.align)                 # rows, slots read
        seen = torch.arange(S, device=device)[None] <= length[:, None]                # (B, S) written slots
        dense = slots == list(range(B))   # rows 0 .. B-1 in order: no idle row to fill in
        if not dense:
            # idle rows (free slots, or sequences encoding this step) get a query that sees slot 0: their
            # output is dropped, and an all-masked row would be NaN
            idle = torch.zeros(R, S, dtype=torch.bool, device=device)
            idle[:, 0] = True
            seen = idle.index_put((index,), seen)                                     # (R, S)
        mask = seen[:, None, None, :]                                                  # (R or B, 1, 1, S)
        for layer_index, layer in enumerate(self.layers):
            hs = C // layer.n_head
            # the views split(C, dim=2), view and transpose(1, 2) give, in one permute
            q, k, v = layer.qkv(layer.ln_1(x)).view(B, 1, 3, layer.n_head, hs).permute(2, 0, 3, 1, 4)  # (B, nh, 1, hs)
            keys, values = cache.keys[layer_index], cache.values[layer_index]         # (N, nh, S_max, hs)
            keys[index, :, length] = k[:, :, 0]
            values[index, :, length] = v[:, :, 0]
            if self.batched_attention:
                if not dense:
                    q = q.new_zeros(R, layer.n_head, 1, hs).index_put((index,), q)    # (R, nh, 1, hs)
                y = F.scaled_dot_product_attention(q, keys[:R, :, :S], values[:R, :, :S],
                                                   attn_mask=mask)                    # (R, nh, 1, hs)
                y = y if dense else y[index]                                          # (B, nh, 1, hs)
            else:   # each row alone over its own blocks: the lone sequence's very call
                rows = []
                for row, (slot, n) in enumerate(zip(slots, lengths)):
                    read = round_up(n + 1, cache.align)
                    mask = (torch.arange(read, device=device) <= n)[None, None, None]   # (1, 1, 1, read)
                    rows.append(F.scaled_dot_product_attention(q[row:row + 1], keys[slot:slot + 1, :, :read],
                                                               values[slot:slot + 1, :, :read], attn_mask=mask))
                y = torch.cat(rows)                                                   # (B, nh, 1, hs)
            y = y.transpose(1, 2).reshape(B, 1, C)
            x = x + layer.proj(y)
            x = x + layer.mlp_proj(layer.gelu(layer.fc(layer.ln_2(x))))
        return self.lm_head(self.ln_f(x))[:, -1]                                       # (B, V)

    def encodes_together(self, windows: int, length: int) -> bool:
        """Whether ``windows`` windows of ``length`` tokens encode in one :meth:`encode`, each bit-identical to
        its encode alone (module doc; probed once per shape)."""
        if torch.get_num_threads() != self.threads:
            self._probe()
        if windows == 1:
            return True
        if self.threads != 1 or any(length * layer.hidden % CHUNK for layer in self.layers):
            return False
        key = (windows, length)
        if key not in self._encodes:
            self._encodes[key] = self._probe_encode(windows, length)
        return self._encodes[key]

    def _probe_encode(self, windows: int, length: int) -> bool:
        """Random windows ``(windows, length)`` encoded together and each alone: the same bits?"""
        network, device = self.network, self.network.wte.weight.device
        generator = torch.Generator().manual_seed(self.seed)
        tokens = torch.randint(network.wte.weight.shape[0], (windows, length), generator=generator).to(device)
        cache = self.new_cache()
        slots = [cache.acquire() for _ in range(windows + 1)][1:]   # not from slot 0: slots are gathered
        with torch.inference_mode():
            together = self.encode(tokens, cache, slots)                               # (W, V)
            for row, slot in enumerate(slots):
                alone = self.new_cache()
                logits = network(tokens[row:row + 1], cache=alone.row(0),
                                 positions=torch.arange(length, device=device)[None], mask=None)[:, -1]
                if not torch.equal(logits, together[row:row + 1]) or not all(
                        torch.equal(a[slot:slot + 1, :, :length], b[:1, :, :length])
                        for a, b in zip(cache.keys + cache.values, alone.keys + alone.values)):
                    return False
        return True

    @torch.inference_mode()
    def encode(self, tokens: torch.Tensor, cache: SlotCache, slots: list[int]) -> torch.Tensor:
        """Logits ``(W, V)`` of the token after each window ``tokens (W, T)`` (positions ``0 .. T-1``), its keys
        and values written to positions ``0 .. T-1`` of slot ``slots[w]`` of ``cache``: what
        ``network(window[None], cache=cache.row(slot), positions=arange(T)[None])`` gives and writes alone,
        where :meth:`encodes_together` says so for this shape."""
        W, T = tokens.shape
        network = self.network
        # a cache of the slot rows' shape (a lone encode's reads are the same strided views), then copied in;
        # left unfilled, as an encode reads only the positions it writes (zeroing it cost more than the encode)
        shape = (W, cache.n_head, cache.length, cache.head_size)
        scratch = KVCache(*([torch.empty(shape, device=cache.device, dtype=cache.dtype) for _ in self.layers]
                            for _ in range(2)), align=cache.align)
        positions = torch.arange(T, device=tokens.device)[None].expand(W, T)         # (W, T)
        logits = network(tokens, cache=scratch, positions=positions, mask=None)[:, -1]   # (W, V)
        index = torch.tensor(slots, device=tokens.device)
        for buffer, written in zip(cache.keys + cache.values, scratch.keys + scratch.values):
            buffer[index, :, :T] = written[:, :, :T]
        return logits

    def check(self, generator: torch.Generator, lengths: tuple[int, ...] = (1, 3, 20, 7, 35, 1, 4)) -> None:
        """Raise NotSupportedError unless the step gives each row exactly the logits of ``network`` run on
        that row alone through a block-aligned cache, at several batch sizes, with rows that read different
        numbers of blocks and an idle row among them (catches a layout or a kernel that computes
        differently). Tries attention in one call first, then row by row (module doc)."""
        network, device = self.network, self.network.wte.weight.device
        vocab, block = network.wte.weight.shape[0], network.block_size
        lengths = tuple(min(n, block - 1) for n in lengths[:self.max_rows])
        with torch.inference_mode():
            prompts = [torch.randint(vocab, (1, n), generator=generator).to(device) for n in lengths]
            tokens = torch.randint(vocab, (len(prompts),), generator=generator).to(device)
            positions = torch.tensor(lengths, device=device)
            alone = []
            for i, prompt in enumerate(prompts):
                row = network.new_cache(1, block, align=DECODE_ALIGN)
                network(prompt, cache=row)
                row.advance(prompt.shape[1])
                alone.append(network(tokens[i].view(1, 1), cache=row, positions=positions[i].view(1, 1))[:, -1])
            alone = torch.cat(alone)                                                   # (n, V)
            cache = self.new_cache()
            slots = [cache.acquire() for _ in range(len(prompts) + 1)]
            cache.release(slots.pop(1))   # an idle row between taken ones
            for slot, prompt in zip(slots, prompts):
                row = cache.row(slot)
                network(prompt, cache=row)
            sizes = sorted({1, 2, len(prompts)})
            differences = []
            for batched_attention in (True, False):
                self.batched_attention = batched_attention
                differences = []
                for size in sizes:
                    batched = self(tokens[:size], positions[:size], cache, slots[:size], list(lengths[:size]))
                    if not torch.equal(batched, alone[:size]):
                        differences.append((size, float((batched - alone[:size]).abs().max())))
                if not differences:
                    return
            size, largest = differences[0]
            raise NotSupportedError(f"a batched step of {size} rows differs from the rows decoded alone "
                                    f"(largest difference {largest:.3g})")
