"""Options of the transformer family (:class:`TransformerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genlab.data.smiles import PROPERTIES


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Options of the transformer family.

    Attributes:
        n_layer: transformer blocks.
        n_head: attention heads per block.
        n_embd: model width ``C`` (divisible by ``n_head``).
        block_size: the longest context in tokens.
        dropout: dropout on embeddings, attention weights and residual branches.
        tokenizer: text: ``"char"`` (one token per character) or ``"bpe"`` (byte-level BPE); smiles:
            ``"char"`` or ``"smiles"`` (atom-level SMILES tokens), ``"kekule"`` (the same tokens, molecules
            written in Kekulé form: :mod:`genlab.data.smiles`) or ``"selfies"`` (atom-level SELFIES).
        augment: smiles: random SMILES written per training molecule (1: as given); music: the keys each
            training piece is written in, nearest on the circle of fifths (1-12, :func:`genlab.data.music.key_shifts`).
        properties: smiles: the RDKit properties each molecule is conditioned on through prefix tokens
            (``qed``, ``logp``, ``sa``, ``mw``; :mod:`genlab.data.smiles` says why all four by default); empty
            for none. Sampling takes ``condition={"qed": "high", ...}`` (bins ``low``, ``mid``, ``high``).
        property_dropout: smiles: probability that a training prefix token says ``any`` instead of its bin.
        property_molecules: smiles with properties: the most training molecules the network trains on (a
            seeded subset), each with its properties computed (RDKit takes about 1.1 ms a molecule).
        vocab_size: text with ``"bpe"``: the BPE vocabulary size to train.
        levels: images and points: intensity levels / bins per coordinate (17 is lossless for digits).
        bins: tables: the most tokens of a numeric column (its atoms and quantile bins together).
        label_dropout: share of labelled training rows whose class token is replaced by the start token (a
            captioner: share of training images replaced by the null prefix, for guidance).
        captions: captioned images (``shapes``): learn to caption the images (a captioner,
            :mod:`genlab.models.transformer.captioning`); ``False`` models the images' pixels as tokens.
        caption_noise: a captioner: share of the words its decoder reads in training (never the words it
            predicts) replaced by random vocabulary words, so that it reads each word off the image rather than
            off the words before it (:mod:`genlab.models.transformer.captioning`).
        bias: biases in the linear layers and LayerNorms (GPT-2 has them; nanoGPT's default drops them,
            which it reports as "a bit better and faster"). Either way :meth:`TransformerModel.to_hf`
            works: missing biases are zeros in GPT-2's layout.
    """

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    tokenizer: Literal["char", "bpe", "smiles", "kekule", "selfies"] = "char"
    augment: int = 1
    properties: tuple[str, ...] = ("qed", "logp", "sa", "mw")
    property_dropout: float = 0.5
    property_molecules: int = 100_000
    vocab_size: int = 512
    levels: int = 17
    bins: int = 32
    label_dropout: float = 0.1
    captions: bool = True
    caption_noise: float = 0.4
    bias: bool = True

    def __post_init__(self) -> None:
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size) < 1:
            raise ValueError("n_layer, n_head, n_embd and block_size must be at least 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} must be divisible by n_head {self.n_head}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_dropout <= 1:
            raise ValueError("dropout must be in [0, 1) and label_dropout in [0, 1]")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if any(p not in PROPERTIES for p in self.properties) or len(set(self.properties)) != len(self.properties):
            raise ValueError(f"properties must be distinct names among {', '.join(PROPERTIES)}; got "
                             f"{list(self.properties)}")
        if not 0 <= self.caption_noise < 1:
            raise ValueError(f"caption_noise must be in [0, 1), got {self.caption_noise}")
        if not 0 <= self.property_dropout <= 1 or self.property_molecules < 1:
            raise ValueError("property_dropout must be in [0, 1] and property_molecules at least 1")
