"""Text and code: datasets of documents, and the tokenizers that turn them into token streams.

A text :class:`~genlab.data.dataset.Dataset` holds documents: ``x_train`` and ``x_test`` are object
arrays ``(n,)`` of ``str``. Sources:

- a ``.txt`` (or other text) file: one document, the first 90% of its characters for training and the
  last 10% for testing (nanoGPT's split of Tiny Shakespeare);
- a folder of text or code files: one document per file, split 80/20 by file with the fixed split;
- ``pystdlib``: the ``.py`` sources of the running interpreter's standard library (test folders
  excluded), split by file. It differs between Python versions; the version is in the dataset name;
- ``tinyshakespeare``: ``tinyshakespeare.txt`` (Karpathy's char-rnn corpus) from the data folder.

Tokenizers (codecs): :class:`CharCodec`, one token per character, and :class:`BPECodec`, byte-level
byte-pair encoding (Sennrich et al. 2016; byte-level as in GPT-2, Radford et al. 2019) trained with the
Hugging Face ``tokenizers`` library. Both encode the documents as one stream
``eos doc_1 eos doc_2 ... eos`` and cut it into every window of ``context`` tokens (a stride-1 view,
no copy), the training rows of a language model; ``eos`` separates documents and starts generation.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from abc import abstractmethod
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from genlab.data.codecs import TokenCodec
from genlab.data.dataset import Dataset, fixed_split
from genlab.data.images import _data_file
from genlab.errors import DataError

#: Suffixes read as text (case-insensitive), alone or as the files of a folder.
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".c", ".h", ".cpp", ".js", ".ts", ".java", ".go", ".rs",
                 ".sh", ".toml", ".yaml", ".yml", ".json", ".tex", ".html", ".css")
SHAKESPEARE_FILE = "tinyshakespeare.txt"
#: Share of a single text file's characters held out for testing.
TEXT_TEST_FRACTION = 0.1
#: Folders of the standard library left out of ``pystdlib``.
_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3"}


def string_array(texts: Sequence[str]) -> np.ndarray:
    """Object array ``(n,)`` of the strings (``np.array`` would make a fixed-width unicode array, or
    split nothing but guess a shape); the record type of text-like modalities."""
    array = np.empty(len(texts), dtype=object)
    array[:] = list(texts)
    return array


def text_file(path: str | os.PathLike, name: str | None = None) -> Dataset:
    """One text file as one document: first 90% of characters to train, last 10% to test.

    Raises:
        DataError: the file is not UTF-8 or holds fewer than 10 characters.
    """
    path = Path(path)
    text = _read_text(path)
    if len(text) < 10:
        raise DataError(f"{path} holds {len(text)} characters; a text dataset needs at least 10")
    cut = int(len(text) * (1 - TEXT_TEST_FRACTION))
    return Dataset(name=name or str(path), modality="text", x_train=string_array([text[:cut]]),
                   x_test=string_array([text[cut:]]))


def text_folder(root: str | os.PathLike) -> Dataset:
    """Every text file under ``root`` (suffixes :data:`TEXT_SUFFIXES`, sorted by path) as one document,
    split by file with :func:`~genlab.data.dataset.fixed_split`.

    Raises:
        DataError: fewer than 2 readable text files.
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    return _split_documents(str(root), [_read_text(p) for p in files])


def pystdlib() -> Dataset:
    """The running interpreter's standard library ``.py`` files (no test folders), split by file."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if not _STDLIB_SKIP.intersection(p.relative_to(root).parts[:-1]))
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue   # a handful of stdlib files are deliberately not UTF-8 (encoding tests)
    return _split_documents(f"pystdlib-{sys.version_info.major}.{sys.version_info.minor}", texts)


def tinyshakespeare(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Tiny Shakespeare (1,115,394 characters) from ``tinyshakespeare.txt`` in ``data_dir`` or
    ``$GENLAB_DATA``: first 90% train, last 10% validation, as in nanoGPT."""
    path = _data_file(SHAKESPEARE_FILE, data_dir, what="tinyshakespeare", keys=("plain text",))
    return text_file(path, name="tinyshakespeare")


def _split_documents(name: str, texts: list[str]) -> Dataset:
    texts = [t for t in texts if t]
    if len(texts) < 2:
        raise DataError(f"{name}: need at least 2 non-empty text files ({', '.join(TEXT_SUFFIXES[:6])}, ...), "
                        f"found {len(texts)}")
    train, test = fixed_split(len(texts))
    documents = string_array(texts)
    return Dataset(name=name, modality="text", x_train=documents[train], x_test=documents[test])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


# ---------------------------------------------------------------------------------------------- codecs
class TextCodec(TokenCodec):
    """Documents <-> token streams; ``encode`` gives every window of ``context`` tokens.

    Args:
        context: tokens per training row (a language model's block size + 1).
    """

    modality = "text"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int) -> None:
        super().__init__(shape)
        if context < 2:
            raise ValueError(f"context must be at least 2 tokens, got {context}")
        self.context = context

    @property
    def bos(self) -> int:
        """The end-of-document token, which also starts every generation."""
        return self.eos

    @property
    @abstractmethod
    def eos(self) -> int:
        """The end-of-document token id."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (no ``eos``)."""

    @abstractmethod
    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of token ids (``eos`` ids are dropped)."""

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`tokenize` of every text."""
        return [self.tokenize(text) for text in texts]

    def check_records(self, x: Any, what: str = "documents") -> np.ndarray:
        """Return ``x`` as an object array ``(n,)`` of ``str``, or raise a DataError."""
        array = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
        if array.ndim != 1 or not all(isinstance(doc, str) for doc in array):
            raise DataError(f"{what} must be a 1-D sequence of strings; got {array.dtype} of shape {array.shape}")
        return array

    def stream(self, x: np.ndarray) -> torch.Tensor:
        """int64 ``(N,)``: ``eos doc_1 eos doc_2 ... eos``."""
        documents = self.check_records(x)
        pieces = [[self.eos]]
        for ids in self.tokenize_batch(list(documents)):
            pieces.append(ids)
            pieces.append([self.eos])
        return torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces]))

    def encode(self, x: np.ndarray) -> torch.Tensor:
        """Every window of the documents' stream: int64 ``(N - context + 1, context)``, a view."""
        stream = self.stream(x)
        if len(stream) < self.context:
            raise DataError(f"the documents hold {len(stream)} tokens; training rows need {self.context}")
        return stream.unfold(0, self.context, 1)

    def decode(self, z: torch.Tensor | Sequence[Sequence[int]]) -> np.ndarray:
        """Token rows ``(n, L)`` -> object array ``(n,)`` of ``str``, each cut at its first ``eos``."""
        rows = z.tolist() if isinstance(z, torch.Tensor) else [list(r) for r in z]
        texts = []
        for row in rows:
            end = row.index(self.eos) if self.eos in row else len(row)
            texts.append(self.detokenize(row[:end]))
        return string_array(texts)

    def _state(self, **fields: Any) -> dict[str, Any]:
        return {"codec": self.name, "modality": self.modality, "shape": [], "context": self.context, **fields}


class VocabularyCodec(TextCodec):
    """A text codec over a fitted list of string tokens (atoms of a molecule, events of a score): id ``i``
    is ``tokens[i]`` and ``eos`` comes last, so ``vocab_size = len(tokens) + 1``. Subclasses split text
    into tokens and join them back."""

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, tokens: Sequence[str] | None = None) -> None:
        super().__init__(shape, context=context)
        self.tokens: list[str] | None = None
        self._ids: dict[str, int] | None = None
        if tokens is not None:
            self._set_tokens(tokens)

    def _set_tokens(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens) + 1

    @property
    def eos(self) -> int:
        return len(self.tokens)


class CharCodec(TextCodec):
    """One token per character of the training text (sorted by code point), then ``eos`` last."""

    name = "char"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, chars: str | None = None) -> None:
        super().__init__(shape, context=context)
        self.chars = chars
        self._codes = None if chars is None else np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    @property
    def eos(self) -> int:
        return len(self.chars)

    def fit(self, x: np.ndarray) -> "CharCodec":
        documents = self.check_records(x, "training documents")
        self.chars = "".join(sorted(set().union(*map(set, documents))))
        self._codes = np.frombuffer(self.chars.encode("utf-32-le"), dtype=np.uint32)
        return self

    def tokenize(self, text: str) -> list[int]:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._codes, codes)            # the vocabulary is sorted by code point
        known = (ids < len(self._codes)) & (self._codes[np.minimum(ids, len(self._codes) - 1)] == codes)
        if not known.all():
            unknown = sorted({chr(c) for c in codes[~known]})
            raise DataError(f"characters {unknown[:10]} are not in this model's vocabulary of "
                            f"{len(self.chars)} characters")
        return ids.tolist()

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # one lookup for all the texts: a character is a token, so each text's ids are its slice
        ids = self.tokenize("".join(texts))
        starts = np.cumsum([0, *map(len, texts)]).tolist()
        return [ids[start:end] for start, end in zip(starts, starts[1:])]

    def detokenize(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids if i != self.eos)

    #: The text of ``ids + more`` is the text of ``ids``, then of ``more`` (a character a token): streaming
    #: extends the text token by token instead of rebuilding it (:class:`genlab.sampling.text_pieces.TextPieces`).
    detokenize.additive = True

    def state(self) -> dict[str, Any]:
        return self._state(chars=self.chars)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "CharCodec":
        return cls(context=state["context"], chars=state["chars"])


class BPECodec(TextCodec):
    """Byte-level BPE (GPT-2's scheme, Radford et al. 2019) trained with ``tokenizers`` to ``vocab_size``
    ids, ``<|endoftext|>`` first. Every byte is in the alphabet, so any text can be encoded.

    Before the merges, text is split into pieces by :attr:`SPLIT`. It differs from GPT-2's split in
    where a space goes: GPT-2 puts it before a word (``"def f"`` is ``def``, `` f``), so a prompt that
    ends in a space (``"def "``) ends in a lone space token the training text almost never holds, and
    the model continues from a state it has not learnt. Here a word keeps the one space after it
    (``def `` is a token, as in the training text), and a newline keeps the indentation after it
    (``"\n    "``), the unit of Python's block structure. Measured on ``pystdlib`` with 1,024 ids: 2.61
    characters a token against GPT-2's 2.62.
    """

    name = "bpe"
    EOS_TEXT = "<|endoftext|>"
    #: Pre-tokenization pieces: a word or a number or a run of punctuation, each with one following
    #: space; a newline with the indentation after it; other runs of spaces and tabs; any other whitespace.
    SPLIT = r"[\p{L}_][\p{L}\p{N}_]* ?|\p{N}+ ?|[^\s\p{L}\p{N}_]+ ?|\n[ \t]*|[ \t]+|\s"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, vocab_size: int = 512,
                 tokenizer: dict[str, Any] | None = None) -> None:
        super().__init__(shape, context=context)
        if vocab_size < 257:
            raise ValueError(f"a byte-level BPE vocabulary needs at least 257 ids, got {vocab_size}")
        self.target_vocab_size = vocab_size
        self._tokenizer = None if tokenizer is None else _tokenizer_from_json(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    @property
    def eos(self) -> int:
        return self._tokenizer.token_to_id(self.EOS_TEXT)

    def fit(self, x: np.ndarray) -> "BPECodec":
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        documents = self.check_records(x, "training documents")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(self.SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),   # bytes -> symbols only
        ])
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=self.target_vocab_size, special_tokens=[self.EOS_TEXT],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tokenizer.train_from_iterator(list(documents), trainer)
        self._tokenizer = tokenizer
        return self

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer.encode(text).ids

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode([i for i in ids if i != self.eos])

    def state(self) -> dict[str, Any]:
        return self._state(vocab_size=self.target_vocab_size, tokenizer=json.loads(self._tokenizer.to_str()))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "BPECodec":
        return cls(context=state["context"], vocab_size=state["vocab_size"], tokenizer=state["tokenizer"])


def _tokenizer_from_json(state: dict[str, Any]):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(state))
