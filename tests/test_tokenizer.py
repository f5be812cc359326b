"""motion_clip_jax.core.tokenizer against OpenAI's own tokenizer (openai-clip, loaded by file path)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import random

import numpy as np
import pytest

from motion_clip_jax.core import tokenizer as tok
from motion_clip_jax.core.classnames import load_classnames

VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


@pytest.fixture(scope="module")
def reference():
    """OpenAI's SimpleTokenizer; `import clip` needs torchvision, so load the one file by path."""
    path = importlib.metadata.distribution("openai-clip").locate_file("clip/simple_tokenizer.py")
    spec = importlib.util.spec_from_file_location("openai_clip_simple_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleTokenizer()


def reference_tokenize(ref, texts, context_length=77, truncate=False) -> np.ndarray:
    """`clip.tokenize` (clip/clip.py, which imports torchvision) restated with numpy."""
    if isinstance(texts, str):
        texts = [texts]
    sot, eot = ref.encoder["<|startoftext|>"], ref.encoder["<|endoftext|>"]
    result = np.zeros((len(texts), context_length), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = [sot] + ref.encode(text) + [eot]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = eot
        result[i, : len(tokens)] = tokens
    return result


PROMPTS = ("a video of a person {}.", "human action of {}.", "a photo of {}", "{}")

UNICODE = [
    "café naïve résumé Ångström",
    "e\u0301 combining accent",
    "日本語のテキスト",
    "中文字符 混合 English",
    "한국어 문장",
    "Привет, мир",
    "ΣΊΣΥΦΟΣ σοφία",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "🎉👍🏽 party",
    "👨‍👩‍👧 family emoji",
    "🏳️‍🌈 flag",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "ﬁne ﬂow ligatures",
    "İstanbul ıi",
    "STRASSE straße",
    "it'ſ long s",
    "\u212a kelvin sign",
    "don’t “curly” quotes",
    "mojibake cafÃ©",
    "\u00a0nbsp\u00a0inside\u00a0",
    "line\u2028separator\u2029paragraph",
    "ideographic\u3000space",
    "zero\u200bwidth",
    "control\x00chars\x1c\x1d\x1e\x1fhere",
    "bell\x07 and del\x7f",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math",
    "½ ² ⅷ ٣ numbers",
]
HTML = [
    "rock &amp; roll",
    "&quot;quoted&quot;",
    "&amp;amp; double",
    "&amp;amp;amp; triple",
    "&lt;b&gt;bold&lt;/b&gt;",
    "it&#39;s &#x27;hex&#x27;",
    "&nbsp;&copy;&eacute;",
    "&notanentity; &amp",
    "AT&T and Q&A",
    "&amp;quot;nested&amp;quot;",
    # With a literal < or > ftfy leaves entities alone, so CLIP's own two unescapes act.
    "x < y &amp;amp; z",
    "<p>&amp;amp;amp;quot;</p>",
    "a > b &quot;q&quot; &#38;amp;",
    "<br> &#28;&#x1f; entity controls",
]
WHITESPACE = [
    "",
    " ",
    "   \t\n  ",
    "a  b",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\nmixed",
    "\x0b\x0cvertical",
]
PUNCTUATION = [
    "1234567890",
    "3.14159 and 2,718",
    "$100,000.00 (USD)",
    "!!!???...",
    "--- *** ___",
    "can't won't I'm you're they've we'll he'd",
    "CAN'T WON'T I'M",
    "C++ / C# / F#",
    "#hashtag @user user@example.com",
    "http://example.com/a?b=1&c=2",
    "<|startoftext|>",
    "<|endoftext|>",
    "a<|endoftext|>b",
    "</w> inside",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "CamelCaseWords ApplyEyeMakeup",
    "snake_case_words brush_hair",
    "x" * 300,
]


def random_texts(seed: int, count: int) -> list[str]:
    """Seeded random strings over ASCII, Latin-1, CJK, emoji, combining marks and spaces."""
    rng = random.Random(seed)
    alphabet = (
        [chr(c) for c in range(32, 127)] * 4
        + [chr(c) for c in range(0xA0, 0x180)]
        + [
            "的",
            "是",
            "人",
            "日",
            "本",
            "ア",
            "한",
            "글",
            "😀",
            "🎬",
            "\u0301",
            "\u200d",
            "\t",
            "\n",
        ]
    )
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(count)]


def class_prompts() -> list[str]:
    names = []
    for dataset in ("hmdb51", "ucf101", "kinetics400"):
        names += load_classnames(dataset) + load_classnames(dataset, raw=True)
    names = list(dict.fromkeys(names))
    return [prompt.format(name) for prompt in PROMPTS for name in names]


def test_vendored_vocab_is_clips(reference):
    path = tok._default_vocab()
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == VOCAB_SHA256
    ref_path = importlib.metadata.distribution("openai-clip").locate_file(
        "clip/bpe_simple_vocab_16e6.txt.gz"
    )
    assert data == open(ref_path, "rb").read()


def test_constants_match_reference(reference):
    assert tok.SOT_TOKEN == reference.encoder["<|startoftext|>"]
    assert tok.EOT_TOKEN == reference.encoder["<|endoftext|>"]
    assert tok.VOCAB_SIZE == len(reference.encoder) == len(reference.decoder)


def test_vocabulary_identical(reference):
    mine = tok.get_tokenizer()
    assert mine._string_to_id == reference.encoder
    assert mine._merge_rank == reference.bpe_ranks
    assert mine._byte_to_char == reference.byte_encoder


@pytest.mark.parametrize(
    "group", ["classes", "unicode", "html", "whitespace", "punctuation", "random"]
)
def test_tokenize_matches_reference(reference, group):
    texts = {
        "classes": class_prompts,
        "unicode": lambda: UNICODE,
        "html": lambda: HTML,
        "whitespace": lambda: WHITESPACE,
        "punctuation": lambda: [t for t in PUNCTUATION if len(t) < 200],
        "random": lambda: random_texts(seed=0, count=300),
    }[group]()
    assert len(texts) >= 7
    if group == "classes":  # 3 x (51 + 101 + 400) names, raw and readable, in every prompt
        assert len(texts) > len(PROMPTS) * 600
    ours = tok.tokenize(texts)
    theirs = reference_tokenize(reference, texts)
    assert ours.dtype == np.int32 and ours.shape == (len(texts), 77)
    mismatched = [t for t, a, b in zip(texts, ours, theirs) if not np.array_equal(a, b)]
    assert not mismatched, mismatched[:5]


def test_encode_decode_match_reference(reference):
    mine = tok.get_tokenizer()
    texts = UNICODE + HTML + WHITESPACE + PUNCTUATION + random_texts(seed=1, count=200)
    for text in texts:
        ids = mine.encode(text)
        assert ids == reference.encode(text), text
        assert mine.decode(ids) == reference.decode(ids), text
    # Ids that are not whole UTF-8 sequences decode with replacement characters, as OpenAI's.
    partial = mine.encode("😀")[:1] + mine.encode("é")
    assert mine.decode(partial) == reference.decode(partial)
    assert mine.decode(np.array([tok.SOT_TOKEN, 320, tok.EOT_TOKEN])) == reference.decode(
        [tok.SOT_TOKEN, 320, tok.EOT_TOKEN]
    )


def test_special_token_text_becomes_special_id():
    ids = tok.tokenize("a<|endoftext|>b")[0]
    a, b = tok.tokenize("a")[0, 1], tok.tokenize("b")[0, 1]
    assert list(ids[:6]) == [tok.SOT_TOKEN, a, tok.EOT_TOKEN, b, tok.EOT_TOKEN, 0]


@pytest.mark.parametrize("context_length", [1, 2, 3, 5, 8, 16, 77])
def test_context_lengths_and_truncation(reference, context_length):
    texts = ["", "a", "a video of a person brush hair.", "human action of " + "jump " * 20]
    ours = tok.tokenize(texts, context_length=context_length, truncate=True)
    theirs = reference_tokenize(reference, texts, context_length=context_length, truncate=True)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.shape == (4, context_length)
    # Every truncated row still ends in EOT.
    lengths = [len(reference.encode(t)) + 2 for t in texts]
    for row, n in zip(ours, lengths):
        if n >= context_length:
            assert row[-1] == tok.EOT_TOKEN
    for text, n in zip(texts, lengths):
        if n > context_length:
            with pytest.raises(RuntimeError, match="too long for context length"):
                reference_tokenize(reference, text, context_length=context_length)
            with pytest.raises(RuntimeError) as raised:
                tok.tokenize(text, context_length=context_length)
            assert str(raised.value).startswith(
                f"Input {text} is too long for context length {context_length}"
            )
        else:
            np.testing.assert_array_equal(
                tok.tokenize(text, context_length=context_length),
                reference_tokenize(reference, text, context_length=context_length),
            )


def test_overlong_text(reference):
    texts = ["x" * 400, "a " * 100, "🎉" * 200, "&amp;" * 80, "日本" * 100]
    for text in texts:
        assert len(reference.encode(text)) + 2 > 77
        with pytest.raises(RuntimeError, match="too long for context length 77"):
            tok.tokenize(text)
        with pytest.raises(RuntimeError, match="too long"):
            reference_tokenize(reference, text)
    ours = tok.tokenize(texts, truncate=True)
    np.testing.assert_array_equal(ours, reference_tokenize(reference, texts, truncate=True))
    assert (ours[:, -1] == tok.EOT_TOKEN).all()
    # Texts that fit exactly (75 tokens + SOT + EOT) do not raise; one token more does.
    for exact in [" ".join(["a"] * 75), "x" * 300]:
        assert len(reference.encode(exact)) == 75
        np.testing.assert_array_equal(tok.tokenize(exact), reference_tokenize(reference, exact))
    with pytest.raises(RuntimeError):
        tok.tokenize(" ".join(["a"] * 76))


def test_shapes_and_input_checks():
    assert tok.tokenize([]).shape == (0, 77)
    assert tok.tokenize("a").shape == (1, 77)
    assert tok.tokenize(("a", "b"), context_length=5).dtype == np.int32
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        tok.tokenize(["a", 3])
    with pytest.raises(TypeError, match="bytes"):
        tok.tokenize(b"abc")
    with pytest.raises(ValueError, match="context_length"):
        tok.tokenize("a", context_length=0)
    with pytest.raises(ValueError, match="49408"):
        tok.get_tokenizer().decode([49408])


def test_bad_vocab_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="missing.txt.gz"):
        tok.Tokenizer(tmp_path / "missing.txt.gz")
    not_gzip = tmp_path / "plain.txt.gz"
    not_gzip.write_text("hello")
    with pytest.raises(ValueError, match="plain.txt.gz"):
        tok.Tokenizer(not_gzip)
    short = tmp_path / "short.txt.gz"
    with gzip.open(short, "wt") as f:
        f.write("#version\ni n\nt h\n")
    with pytest.raises(ValueError, match="short.txt.gz.*48894"):
        tok.Tokenizer(short)
