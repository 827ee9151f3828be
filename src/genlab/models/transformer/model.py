"""The autoregressive family: a decoder-only transformer (GPT) trained by next-token maximum likelihood.

    p(x) = prod_t p(x_t | x_<t),        loss = -1/T sum_t log p(x_t | x_<t)

The network is GPT-2 (Radford et al. 2019, "Language models are unsupervised multitask learners"):
token + learned position embeddings, pre-LayerNorm blocks of causal self-attention (Vaswani et al.
2017) and a GELU MLP, a final LayerNorm and an output head tied to the token embedding (Press & Wolf
2017). Parameter names follow Hugging Face's ``GPT2LMHeadModel`` so :meth:`TransformerModel.to_hf` and
:meth:`TransformerModel.from_hf` are a rename plus a transpose of its ``Conv1D`` weights.

Any modality with a token codec works: text and code (a character or byte-level BPE tokenizer, see
:mod:`genlab.data.text`), images as pixel sequences of quantised intensities, points as binned
coordinates. Records of a fixed length start with a start token, which is the class token for labelled
data (replaced by the plain start token with probability ``label_dropout`` so the same model also
samples unconditionally). Sampling options are those of
:class:`~genlab.sampling.decoding.GenerationConfig` plus ``prompt`` (text only).

Tables (:class:`~genlab.data.table_tokens.TableTokenCodec`): one token per column, each column with its
own id range, numbers as quantile bins decoded by a uniform draw inside the bin. The network is trained
as an *order-agnostic* autoregressive model (Uria et al. 2014, "A deep and tractable density
estimator", Sec. 3; the any-order idea of sigma-GPT, Pannatier et al. 2024): every training row shows
its columns in a fresh random order, all at the same position embedding, so a prefix is a *set* of
known columns; because the id ranges are disjoint, the logits after a prefix restricted to column
``j``'s range are ``p(x_j | known columns)`` for every unknown ``j`` at once, and the loss averages
``-log p(x_j | prefix)`` over all unknown columns at every prefix (an unbiased estimate of the
order-averaged negative log-likelihood per column). Sampling puts the conditioned columns' tokens first
and draws the others one by one, each from its own id range, so a condition on *any* set of columns
is native and exact as a factorisation, ``p(rest | condition) = prod_j p(x_j | condition, x_<j)``, with
no rejection; its quality is only the network's fit of those conditionals. What is not exact: a number
in a condition is seen by the network as its bin (the other columns follow ``p(. | x in bin)``), while
the returned rows hold the exact value. Every returned row satisfies the condition.

Grammars: a codec whose records have a grammar offers it (``codec.grammar()``: chorales, SMILES), and
sampling adds it as the last logits processor (:class:`~genlab.sampling.token_grammar.GrammarProcessor`)
unless ``constrain="none"``: a token the grammar does not allow next gets ``-inf``, so every sample keeps the
format by construction, and near ``max_new_tokens`` only tokens that still let the sample finish in time are
allowed, so a sample cut by the budget ends where the format lets it end (a chorale at a bar line after a whole
bar). A budget shorter than the shortest sample is a ConfigError. Chorales also keep their style's first rule
by default, no parallel fifths or octaves (:class:`~genlab.sampling.voice_leading.VoiceLeading`, a checked
constraint: the drawn token is judged, the distribution renormalised over the allowed ones), and SMILES their
aromatic rings' Kekulé check (:mod:`genlab.data.smiles_kekule`, whose grammar names the plain SMILES grammar as its
``syntax``); ``constrain="syntax"`` keeps the grid's or the SMILES grammar alone.

Molecules: each training molecule starts with one token per RDKit property bin (``<qed:high> <logp:any> ...``,
:mod:`genlab.data.smiles`), so ``sample(n, condition={"qed": "high", "logp": "low"})`` writes that prefix after the
start token and draws the molecule after it: conditioning by prefix tokens, the properties not named (and all of
them without a condition) ``any``, which training shows in place of each bin half the time.

Captions: fitted on captioned images (``shapes``), the model is a captioner, ``p(caption | image)`` through an
image prefix (:mod:`genlab.models.transformer.captioning`); ``sample(n, image=...)`` returns caption strings.

Harmonisation: a chorale model given ``melody=`` (a soprano line as a melody string, :mod:`genlab.data.melody`)
draws alto, tenor and bass under it: the melody's bar lines, soprano tokens and the final ``eos`` are forced at
their positions of the grid and the lower voices drawn, inside their fitted ranges unless ``constrain="none"``
(:class:`~genlab.sampling.layout.LayoutProcessor`) and free of parallel fifths and octaves unless it is
``"syntax"`` or ``"none"``, so every sample keeps the melody note for note, parses, and is as long as the melody.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, fields, replace
from typing import Any, Iterator

import torch
from torch import nn

from genlab.config import from_dict
from genlab.data.codecs import ImageTokenCodec, PointTokenCodec, TokenCodec
from genlab.data.melody import harmony_layout
from genlab.data.music import ChoraleCodec
from genlab.data.smiles import SmilesCodec
from genlab.data.table_tokens import TableTokenCodec
from genlab.data.text import BPECodec, CharCodec, TextCodec
from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, NotSupportedError, unknown_choice
from genlab.models.base import DataInfo, GenerativeModel
from genlab.models.options import SampleOption
from genlab.models.transformer.config import TransformerConfig
from genlab.models.transformer.gpt import GPT, next_token_loss
from genlab.models.transformer.guidance import MOLECULE_GUIDANCE, guide
from genlab.models.transformer.hf import gpt_from_hf, gpt_to_hf
from genlab.models.transformer.captioning import ImageCaptioning
from genlab.models.transformer.likelihood import TextLikelihood
from genlab.models.transformer.tabular import TabularTransformer
from genlab.sampling.constraint import checked
from genlab.sampling.decoding import GenerationConfig, generate, stream
from genlab.sampling.layout import LayoutProcessor
from genlab.sampling.token_grammar import GrammarProcessor
from genlab.sampling.voice_leading import VoiceLeading
from genlab.train import Batch, Losses, Phase, TrainConfig

logger = logging.getLogger(__name__)
#: Values of the ``constrain`` option: the codec's grammar where it has one, with the style's rules (the default:
#: chorales also keep clear of parallel fifths and octaves), the format's syntax alone, or none.
GRAMMAR_CHOICES = ("grammar", "syntax", "none")
#: A captioner's defaults (captioned images): a small prefix LM; its encoder, caption noise, guidance, width and
#: depth were compared at equal time in benchmarks/captioning.py (docs/text_to_image.md), batch and lr were not.
CAPTIONER_MODEL = {"n_layer": 2, "n_head": 4, "n_embd": 128}
CAPTIONER_TRAIN = {"batch_size": 64, "lr": 1e-3}


class TransformerModel(ImageCaptioning, TextLikelihood, TabularTransformer, GenerativeModel):
    """The autoregressive family ``transformer``: ``fit`` by next-token likelihood, ``sample`` by decoding.

    Example:
        >>> model = TransformerModel(block_size=64).fit(genlab.datasets.load("tinyshakespeare", data_dir=d))
        >>> model.sample(2, prompt="ROMEO:", temperature=0.8, top_k=40, generator=g)  # 2 strings
        >>> adult = TransformerModel(n_embd=64).fit(genlab.datasets.load("adult", data_dir=d))
        >>> adult.sample(100, condition={"sex": "Female", "income": ">50K"}, generator=g)  # every row satisfies it
    """

    family = "transformer"
    config_class = TransformerConfig
    supports_tables = True
    sample_options = frozenset({"prompt", "constrain", "melody", "guidance", "image"}
                               | {f.name for f in fields(GenerationConfig)})
    declared_options = {
        "prompt": SampleOption("string", "text every sample starts with", "", modalities=("text",)),
        "temperature": SampleOption("number", "softmax temperature; 0 = greedy", GenerationConfig.temperature, 0, 100),
        "top_k": SampleOption("integer", "sample among the k most likely tokens (null: all)", None, 1, 100_000,
                              nullable=True),
        "top_p": SampleOption("number", "nucleus mass in (0, 1] (null: all tokens)", None, 0, 1, nullable=True),
        "repetition_penalty": SampleOption("number", ">= 1; 1 leaves scores alone",
                                           GenerationConfig.repetition_penalty, 1, 5),
        "num_beams": SampleOption("integer", "beam width; 1 = no beam search", GenerationConfig.num_beams, 1, 64,
                                  modalities=("text", "points", "images", "smiles", "music")),
        "max_new_tokens": SampleOption("integer", "tokens generated after the prompt (a molecule: what the "
                                       "network's context holds after its property prefix)",
                                       GenerationConfig.max_new_tokens, 1, 100_000,
                                       modalities=("text", "smiles", "music")),
        "constrain": SampleOption("string", "keep every sample inside the format's grammar and, for chorales, free of "
                                  "parallel fifths and octaves, for SMILES with aromatic rings that kekulise "
                                  "('grammar'), inside the grammar only ('syntax'), "
                                  "or not ('none')", "grammar", choices=GRAMMAR_CHOICES,
                                  modalities=("smiles", "music")),
        "stop": SampleOption("array", "strings that end a sample (cut before them)", (), modalities=("text",)),
        "melody": SampleOption("string", "a soprano line to harmonise ('| 67 _ 69 _ ...': bar lines and a pitch, _ "
                               "or R per eighth note); every sample keeps it note for note and is as long", None,
                               nullable=True, modalities=("music",)),
        "guidance": SampleOption("number", "classifier-free guidance on the property condition (1 = plain "
                                 "conditional; genlab.models.transformer.guidance)", MOLECULE_GUIDANCE, 0, 20,
                                 modalities=("smiles",)),
    }

    def default_train_config(self) -> TrainConfig:
        """nanoGPT's small character-level settings (AdamW, beta2 0.99, weight decay 0.1, warm-up 100) with
        twice its learning rate: on Tiny Shakespeare in nanoGPT's CPU config, best validation loss 1.883 and
        1.894 at lr 1e-3 (seeds 0, 1) against 1.811 and 1.804 at 2e-3 (benchmarks/transformer_shakespeare.py)."""
        return TrainConfig(steps=2000, batch_size=12, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1,
                           warmup_steps=100, min_lr_ratio=0.1, grad_clip=1.0)

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Text and tables keep nanoGPT's small CPU settings (above). Points and images are short
        sequences of many records: a 2-layer, 64-wide GPT at batch 64 and lr 3e-3, with a context of one
        whole record, and points binned into 64 levels so that a bin centre lies inside a mode of ring8
        (tests/test_learning.py: 97.7 % high-quality samples). SMILES and chorales take the settings of
        benchmarks/molecules.py (block 64, a MOSES molecule is at most 57 characters) and
        benchmarks/music.py (block 128: 32 eighth-note steps of four voices; each training piece also in the two
        keys next to its own on the circle of fifths, which triples the pieces and keeps Bach's pitch classes,
        where all twelve keys flatten them: :func:`genlab.data.music.key_shifts`)."""
        if info.modality == "smiles":
            return DataDefaults(model={"block_size": 64}, train={"batch_size": 64},
                                why="benchmarks/molecules.py: MOSES molecules fit a 64-token context")
        if info.modality == "music":
            return DataDefaults(model={"block_size": 128, "augment": 3}, train={"batch_size": 32},
                                why="benchmarks/music.py: 16 beats of four voices per context, each training "
                                    "piece also a fifth up and down")
        if info.captioned:
            return DataDefaults(model=CAPTIONER_MODEL, train=CAPTIONER_TRAIN,
                                why="a captioner: a 2-layer prefix LM over an 8x8 image map (benchmarks/captioning.py)")
        if info.modality not in ("points", "images"):
            return DataDefaults()
        model: dict[str, Any] = {"n_layer": 2, "n_head": 4, "n_embd": 64}
        if info.modality == "points":
            model["levels"] = 64
        length = math.prod(info.shape)
        if length > 64:
            model["block_size"] = length
        return DataDefaults(model=model, train={"batch_size": 64, "lr": 3e-3},
                            why="short records: a small GPT with one record per context")

    # ------------------------------------------------------------------ family hooks
    def _make_codec(self, data: DataInfo) -> TokenCodec:
        config = self.config
        if (captions := self._caption_codec(data)) is not None:   # a captioner (captioning.py)
            return captions
        if data.modality == "tables":
            return super()._make_codec(data)
        if data.modality == "smiles":
            if config.tokenizer == "bpe":
                raise ConfigError("smiles takes tokenizer 'smiles' (or 'char', the same atom-level tokens), "
                                  "'kekule' or 'selfies', not 'bpe'")
            return SmilesCodec(context=config.block_size + 1, selfies=config.tokenizer == "selfies",
                               kekule=config.tokenizer == "kekule", augment=config.augment,
                               properties=config.properties, property_dropout=config.property_dropout,
                               property_molecules=config.property_molecules)
        if data.modality == "music":
            if config.augment > 12:
                raise ConfigError(f"music takes augment 1-12 (keys each training piece is written in), "
                                  f"got {config.augment}")
            return ChoraleCodec(context=config.block_size + 1, keys=config.augment)
        if data.modality == "text":
            context = config.block_size + 1
            return CharCodec(context=context) if config.tokenizer == "char" else \
                BPECodec(context=context, vocab_size=config.vocab_size)
        codec = (ImageTokenCodec if data.modality == "images" else PointTokenCodec)(data.shape, config.levels)
        if codec.sequence_length > config.block_size:
            raise ConfigError(f"records of shape {data.shape} are {codec.sequence_length} tokens; "
                              f"block_size {config.block_size} must be at least that")
        return codec

    @staticmethod
    def _n_classes(data: DataInfo) -> int:
        """Class tokens after the codec's ids: one per label (text is unlabelled; a table's target is one
        of its columns, conditioned like any other)."""
        return 0 if data.modality in ("text", "tables", "smiles", "music") else data.n_classes

    @property
    def token_count(self) -> int:
        """How many token ids the network reads and writes: the codec's vocabulary, then one class token
        per label of a class-conditional model (a logits processor's width, e.g. a text watermark's)."""
        self._check_fitted()
        return self.codec_.vocab_size + self._n_classes(self.data_)

    def _build_network(self, data: DataInfo) -> GPT:
        config = self.config
        if self.reads_captions:
            return self._caption_network(data)
        return GPT(self.codec_.vocab_size + self._n_classes(data), config.block_size, config.n_layer,
                   config.n_head, config.n_embd, config.dropout, bias=config.bias)

    def parse_condition(self, condition: Any) -> Any:
        """Molecules take ``{property: bin}`` (:meth:`~genlab.data.smiles.SmilesCodec.parse_condition`); other
        modalities as the base contract says."""
        self._check_fitted()
        if isinstance(self.codec_, SmilesCodec):
            return self.codec_.parse_condition(condition)
        return super().parse_condition(condition)

    def _phases(self) -> list[Phase]:
        if self.reads_captions:
            return self._caption_phases()
        if isinstance(self.codec_, TableTokenCodec):
            return [Phase("model", self.network_, self._table_loss)]
        bos, first_class = self.codec_.bos, self.codec_.vocab_size
        label_dropout = self.config.label_dropout if self._n_classes(self.data_) else 0.0

        def negative_log_likelihood(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # batch.x: (B, L) int64 rows that start with bos; batch.y: (B,) labels or None
            tokens = batch.x
            if batch.y is not None and label_dropout < 1:
                keep = torch.rand(len(tokens), generator=generator, device=generator.device) >= label_dropout
                start = torch.where(keep.to(tokens.device), first_class + batch.y, torch.full_like(batch.y, bos))
                tokens = torch.cat([start[:, None], tokens[:, 1:]], dim=1)
            nll = next_token_loss(module, tokens)
            return Losses(nll, {"nll": float(nll.detach())})

        return [Phase("model", self.network_, negative_log_likelihood)]

    def _sample_network(self, n: int, condition: int | None, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
        prompt = options.pop("prompt", None)
        constrain = options.pop("constrain", "grammar")
        melody = options.pop("melody", None)
        guidance = float(options.pop("guidance", MOLECULE_GUIDANCE))
        if melody is not None:
            if prompt is not None:
                raise ConfigError("a harmonisation starts with its melody: prompt and melody do not go together")
            return self._harmonise(n, melody, constrain, options, generator)
        if isinstance(self.codec_, SmilesCodec) and "max_new_tokens" not in options:
            options["max_new_tokens"] = self.molecule_budget()
        config = self._constrained(from_dict(GenerationConfig, options, what="generation"), constrain)
        if isinstance(self.codec_, TableTokenCodec):
            if prompt is not None or config.stop or config.num_beams > 1 or "max_new_tokens" in options:
                raise ConfigError("a table row has one token per column: prompt, stop, num_beams and "
                                  "max_new_tokens are not table options; use condition={column: value}")
            return self._sample_table(n, condition, config, generator)
        if isinstance(self.codec_, SmilesCodec):   # each molecule starts with its property prefix (module doc)
            network = guide(self.network_, self.codec_.unconditioned_ids(), guidance, config) if condition else None
            return self._sample_text(n, prompt, config, generator, prefix=self.codec_.prefix(condition),
                                     network=network)
        if isinstance(self.codec_, TextCodec):
            return self._sample_text(n, prompt, config, generator)
        if prompt is not None or config.stop or "max_new_tokens" in options:
            raise ConfigError(f"{self.data_.modality} records have a fixed length of "
                              f"{self.codec_.sequence_length} tokens: prompt, stop and max_new_tokens are for text")
        start = self.codec_.bos if condition is None or not self._n_classes(self.data_) else self.codec_.vocab_size + condition
        config = GenerationConfig(**{**asdict(config), "max_new_tokens": self.codec_.sequence_length})
        rows = generate(self.network_, [[start]] * n, config, generator=generator, vocab_limit=self.codec_.levels)
        return torch.tensor(rows, dtype=torch.long)

    def molecule_budget(self) -> int:
        """The default ``max_new_tokens`` of a molecule: what the network's context holds after the start token and
        the property prefix (block 64: 59 tokens), as long as the longest molecule it was trained on can be. Past
        it the network no longer sees the molecule's start, and a sample that has run into a ring the Kekulé check
        refuses to close would wander on as a chain (measured on a 300-s MOSES model, 2,000 samples: with text's
        budget of 256, 165 of them were over 60 characters and the descriptor Fréchet distance 87; with this one
        32 and 4.7)."""
        return self.network_.block_size - 1 - len(self.codec_.prefix(None))

    def _sample_text(self, n: int, prompt: str | list[str] | None, config: GenerationConfig,
                     generator: torch.Generator | None, *, prefix: list[int] | None = None,
                     network: torch.nn.Module | None = None) -> torch.Tensor:
        codec: TextCodec = self.codec_
        prompts = _prompts(prompt, n)
        prompt_ids = [[codec.eos, *(prefix or [])] + codec.tokenize(p) for p in prompts]

        tail_tokens = 8 * max(map(len, config.stop), default=1)
        constraints = checked(config.logits_processors)
        kept: dict[int, str] = {}   # the text of each sample a constraint ended (it cuts it, as a stop string)

        def ended(row: int, ids: list[int]) -> bool:
            for constraint in constraints:
                if (text := constraint.ends(row, ids[-1])) is not None:
                    kept[row] = text
                    return True
            tail = codec.detokenize(ids[-tail_tokens:]) if config.stop else ""   # once per step, not per stop string
            return any(s in tail for s in config.stop)

        new = generate(network or self.network_, prompt_ids, config, generator=generator, eos=codec.eos,
                       ended=ended if config.stop or constraints else None)
        _log_grammar(config)
        rows = [ids[1:] + continuation for ids, continuation in zip(prompt_ids, new)]
        for row, (ids, p) in enumerate(zip(rows, prompt_ids)):
            if row in kept or config.stop:
                text = kept[row] if row in kept else _cut(codec.detokenize(ids[len(p) - 1:]), config.stop)
                rows[row] = ids[:len(p) - 1] + codec.tokenize(text)
        width = max(map(len, rows)) + 1
        return torch.tensor([r + [codec.eos] * (width - len(r)) for r in rows], dtype=torch.long)

    def _harmonise(self, n: int, melody: str, constrain: str, options: dict[str, Any],
                   generator: torch.Generator | None) -> torch.Tensor:
        """``n`` chorales that harmonise ``melody`` (module doc): int64 ``(n, L)`` ids, ``L`` the melody's bar
        lines plus four tokens a step."""
        codec = self.codec_
        if not isinstance(codec, ChoraleCodec):
            raise ConfigError(f"a melody is harmonised by a model of chorales (music); this model makes "
                              f"{self.data_.modality}")
        if constrain not in GRAMMAR_CHOICES:
            raise unknown_choice("constrain", constrain, GRAMMAR_CHOICES)
        if "max_new_tokens" in options or options.get("stop"):
            raise ConfigError("a harmonisation is as long as its melody: it takes no max_new_tokens or stop")
        layout = harmony_layout(melody, codec, grammar=constrain != "none")
        config = from_dict(GenerationConfig, {**options, "max_new_tokens": layout.length}, what="generation")
        processor = LayoutProcessor(layout.allowed, layout.previous, layout.hold, layout.sounding)
        rules = (VoiceLeading.for_codec(codec),) if constrain == "grammar" else ()
        config = replace(config, logits_processors=(*config.logits_processors, processor, *rules))
        rows = generate(self.network_, [[codec.eos]] * n, config, generator=generator, eos=codec.eos)
        return torch.tensor(rows, dtype=torch.long)

    def _constrained(self, config: GenerationConfig, constrain: str) -> GenerationConfig:
        """``config`` with the codec's grammar as its last logits processors (module doc), unless ``constrain``
        is ``"none"`` or the codec offers none; ``"grammar"`` adds a chorale's voice leading and keeps a SMILES
        grammar's Kekulé check, ``"syntax"`` neither."""
        if constrain not in GRAMMAR_CHOICES:
            raise unknown_choice("constrain", constrain, GRAMMAR_CHOICES)
        grammar = getattr(self.codec_, "grammar", None)
        grammar = grammar() if grammar is not None and constrain != "none" else None
        if constrain == "syntax":
            grammar = getattr(grammar, "syntax", grammar)   # SMILES without its Kekulé check
        if grammar is None:
            return config
        processors = [GrammarProcessor(grammar, max_new_tokens=config.max_new_tokens)]
        if constrain == "grammar" and isinstance(self.codec_, ChoraleCodec):
            processors.append(VoiceLeading.for_codec(self.codec_))
        return replace(config, logits_processors=(*config.logits_processors, *processors))

    # ------------------------------------------------------------------ text extras
    def stream(self, prompt: str = "", *, generator: torch.Generator | None = None, **options: Any) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece as it is generated (text models only).

        ``options`` are :class:`~genlab.sampling.decoding.GenerationConfig` fields.
        """
        self._check_fitted()
        if not isinstance(self.codec_, TextCodec):
            raise NotSupportedError(f"streaming is for text; this model makes {self.data_.modality}")
        constrain = options.pop("constrain", "grammar")
        config = self._constrained(from_dict(GenerationConfig, options, what="generation"), constrain)
        ids = [self.codec_.eos] + self.codec_.tokenize(prompt)
        with torch.no_grad():
            yield from stream(self.network_, ids, config, self.codec_.detokenize, generator=generator,
                              eos=self.codec_.eos)
        _log_grammar(config)

    # ------------------------------------------------------------------ Hugging Face interop
    def to_hf(self):
        """The same weights as a Hugging Face ``transformers.GPT2LMHeadModel`` (eval mode, CPU copy)."""
        self._check_fitted()
        return gpt_to_hf(self.network_)

    @classmethod
    def from_hf(cls, hf_model, codec: TokenCodec, *, class_names: tuple[str, ...] | None = None) -> "TransformerModel":
        """A fitted model from a ``GPT2LMHeadModel`` and the token codec whose ids it was trained on."""
        hf = hf_model.config
        model = cls(n_layer=hf.n_layer, n_head=hf.n_head, n_embd=hf.n_embd, block_size=hf.n_positions,
                    dropout=float(hf.resid_pdrop))
        model.codec_ = codec
        model.data_ = DataInfo(codec.modality, codec.shape, class_names)
        model.network_ = gpt_from_hf(hf_model).eval()
        if model.network_.wte.num_embeddings != codec.vocab_size + model._n_classes(model.data_):
            raise ConfigError(f"the Hugging Face model has {model.network_.wte.num_embeddings} tokens; the codec "
                              f"and classes need {codec.vocab_size + model._n_classes(model.data_)}")
        return model


def _log_grammar(config: GenerationConfig) -> None:
    """Log what the grammar did: a warning when a row left it (a prompt outside it)."""
    for processor in config.logits_processors:
        if isinstance(processor, GrammarProcessor):
            level = logging.WARNING if processor.off_grammar or processor.fallbacks else logging.DEBUG
            logger.log(level, processor.summary())


def _prompts(prompt: str | list[str] | tuple[str, ...] | None, n: int) -> list[str]:
    if prompt is None:
        return [""] * n
    if isinstance(prompt, str):
        return [prompt] * n
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt) and len(prompt) == n:
        return list(prompt)
    raise ConfigError(f"prompt must be a string or a list of n={n} strings, got {prompt!r}")


def _cut(text: str, stop: tuple[str, ...]) -> str:
    cuts = [text.find(s) for s in stop if s in text]
    return text[:min(cuts)] if cuts else text
