"""CLIP's byte-level BPE tokenizer; gives exactly the ids of OpenAI's `clip.tokenize`.

Text is cleaned (ftfy, HTML unescaped twice, whitespace runs collapsed, lower-cased), split into
words by CLIP's pattern, each word's UTF-8 bytes mapped to printable characters, and merged by the
16e6 BPE ranks, with `</w>` marking the end of a word. Rows are [SOT, ids..., EOT, 0, 0, ...].

Only the standard library, numpy, ftfy and regex are imported here (no JAX, no torch): the PyTorch
side of the project uses this module too.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
import os
from collections.abc import Iterable, Sequence

import ftfy
import numpy as np
import regex

SOT_TOKEN = 49406
EOT_TOKEN = 49407
VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77

VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"

_SOT_TEXT = "<|startoftext|>"
_EOT_TEXT = "<|endoftext|>"
_WORD_END = "</w>"
# 256 byte symbols, the same 256 closing a word, the merges, then SOT and EOT.
_NUM_MERGES = VOCAB_SIZE - 2 * 256 - 2

# CLIP's word pattern. IGNORECASE matters even on lower-cased text: Unicode case folding lets
# e.g. "'ſ" (long s) match the "'s" contraction, and OpenAI compiles it this way.
_WORD_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
# `regex`'s \s (Unicode White_Space), not `re`'s (str.isspace): they differ on U+001C..U+001F.
_WHITESPACE = regex.compile(r"\s+")


def _byte_symbols() -> list[tuple[int, str]]:
    """(byte, printable character) pairs in vocabulary order.

    Bytes that are already printable, non-space Latin-1 characters stand for themselves (in code
    point order); the other 68 bytes, ascending, get U+0100, U+0101, ... so no symbol is whitespace
    or a control character.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    taken = set(printable)
    others = [b for b in range(256) if b not in taken]
    return [(b, chr(b)) for b in printable] + [(b, chr(256 + n)) for n, b in enumerate(others)]


def clean_text(text: str) -> str:
    """The normalisation CLIP applies before splitting: ftfy, HTML unescape x2, spaces, lower."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def _default_vocab():
    """The vendored vocabulary (an importlib.resources Traversable: works from a zip too)."""
    return importlib.resources.files(__package__) / "assets" / VOCAB_FILENAME


def _read_merges(source) -> list[tuple[str, str]]:
    """The first `_NUM_MERGES` merge rules (pairs of symbols) of a gzipped BPE file.

    `source`: a path, or a Traversable from importlib.resources.
    """
    try:
        raw = source.open("rb") if hasattr(source, "open") else open(source, "rb")
        with raw, gzip.open(raw) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read the CLIP BPE vocabulary {source}: {e}") from e
    # Line 0 is a version header; CLIP uses only the first 48,894 merges of the file.
    merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    bad = [i + 2 for i, m in enumerate(merges) if len(m) != 2]
    if len(merges) != _NUM_MERGES or bad:
        raise ValueError(
            f"{source} is not CLIP's BPE vocabulary: expected {_NUM_MERGES} merge lines of two "
            f"symbols after the header, got {len(merges)} (malformed lines: {bad[:5]})"
        )
    return merges


class Tokenizer:
    """CLIP's BPE tokenizer: `encode(text) -> ids` (no SOT/EOT) and `decode(ids) -> text`."""

    def __init__(self, vocab_path: str | os.PathLike | None = None, cache_size: int = 1 << 16):
        merges = _read_merges(_default_vocab() if vocab_path is None else vocab_path)
        byte_symbols = _byte_symbols()
        self._byte_to_char = dict(byte_symbols)
        self._char_to_byte = {c: b for b, c in byte_symbols}

        chars = [c for _, c in byte_symbols]
        strings = chars + [c + _WORD_END for c in chars] + ["".join(m) for m in merges]
        strings += [_SOT_TEXT, _EOT_TEXT]
        self._id_to_string = strings
        # Later ids win on a repeated string, as in OpenAI's dict(zip(vocab, range(...))).
        self._string_to_id = {s: i for i, s in enumerate(strings)}
        if len(strings) != VOCAB_SIZE or self._string_to_id[_SOT_TEXT] != SOT_TOKEN:
            raise ValueError(f"BPE vocabulary has {len(strings)} entries, expected {VOCAB_SIZE}")
        self._merge_rank = {pair: rank for rank, pair in enumerate(merges)}
        # Words repeat a lot (class names in every prompt): cache their merged symbols.
        self._word_symbols = functools.lru_cache(maxsize=cache_size)(self._merge_word)

    def _merge_word(self, word: str) -> tuple[str, ...]:
        """BPE of one byte-mapped word: apply the lowest-ranked merge until none applies."""
        if word in (_SOT_TEXT, _EOT_TEXT):
            return (word,)
        symbols = [*word[:-1], word[-1] + _WORD_END]
        ranks = self._merge_rank
        while len(symbols) > 1:
            best_rank, best_pair = None, None
            for pair in zip(symbols[:-1], symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_pair = rank, pair
            if best_pair is None:
                break
            first, second = best_pair
            merged, i = [], 0
            # Non-overlapping occurrences, left to right ("a a a" + (a, a) -> "aa a").
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(symbols)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without SOT/EOT.

        A literal "<|startoftext|>" / "<|endoftext|>" in the text becomes the special id, as in
        OpenAI's tokenizer.
        """
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer.encode expects str, got {type(text).__name__}: {text!r}")
        ids = []
        for word in _WORD_PATTERN.findall(clean_text(text)):
            mapped = "".join(self._byte_to_char[b] for b in word.encode("utf-8"))
            ids.extend(self._string_to_id[s] for s in self._word_symbols(mapped))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, as OpenAI's decode: each word end becomes a space (so the text ends
        with one), and padding id 0 decodes as "!", so strip padding first."""
        pieces = []
        for i in ids:
            index = int(i)
            if not 0 <= index < VOCAB_SIZE:
                raise ValueError(
                    f"Token id {index} is outside the CLIP vocabulary [0, {VOCAB_SIZE})"
                )
            pieces.append(self._id_to_string[index])
        data = bytearray(self._char_to_byte[c] for c in "".join(pieces))
        return data.decode("utf-8", errors="replace").replace(_WORD_END, " ")


@functools.cache
def get_tokenizer() -> Tokenizer:
    """The shared tokenizer on the vendored vocabulary, loaded on first use."""
    return Tokenizer()


def tokenize(
    texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False
) -> np.ndarray:
    """`clip.tokenize`: int32 (N, context_length) rows [SOT, ids..., EOT, 0...].

    Text longer than the context raises RuntimeError naming it, unless `truncate`, which keeps the
    first `context_length` tokens and makes the last one EOT.
    """
    if isinstance(texts, str):
        texts = [texts]
    elif isinstance(texts, bytes | bytearray):
        raise TypeError(f"tokenize expects str or a sequence of str, got bytes: {texts!r}")
    texts = list(texts)
    if context_length < 1:
        raise ValueError(f"context_length must be >= 1, got {context_length}")
    tokenizer = get_tokenizer()
    result = np.zeros((len(texts), context_length), dtype=np.int32)
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"tokenize: texts[{row}] is {type(text).__name__} ({text!r}), not str")
        ids = [SOT_TOKEN, *tokenizer.encode(text), EOT_TOKEN]
        if len(ids) > context_length:
            if not truncate:
                raise RuntimeError(
                    f"Input {text} is too long for context length {context_length} "
                    f"({len(ids)} tokens with SOT/EOT); pass truncate=True to cut it"
                )
            ids = ids[:context_length]
            ids[-1] = EOT_TOKEN
        result[row, : len(ids)] = ids
    return result
