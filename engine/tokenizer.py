"""An offline CLIP tokenizer for the demo model: byte-level BPE with the real CLIP conventions.

The real SD1.5 tokenizer (49,408 tokens) cannot be fetched here, so the demo model ships a tiny
vocabulary built in code: the 256 byte-level characters, the same with CLIP's end-of-word suffix
"</w>", the results of a few merges and the two special tokens. Written as vocab.json/merges.txt
(plus the two small JSON configs SD1.5 ships), it loads with `CLIPTokenizer.from_pretrained(dir)`
and behaves like CLIP's: lower-casing, "</w>" word ends, <|startoftext|> … <|endoftext|>, padded
with <|endoftext|> to 77.
"""

from __future__ import annotations

import json
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MAX_LENGTH = 77
END_OF_WORD = "</w>"

# A handful of merges so the BPE path is exercised (each merge's result joins the vocabulary).
_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"),
    ("th", "e</w>"),
    ("a", "t</w>"),
    ("c", "at</w>"),
    ("o", "f</w>"),
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def build_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id, CLIP's order: bytes, bytes+</w>, merges, specials) and merges."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + END_OF_WORD for c in chars] + [a + b for a, b in _MERGES] + [BOS_TOKEN, EOS_TOKEN]
    return {tok: i for i, tok in enumerate(tokens)}, list(_MERGES)


def write_tokenizer(path: Path) -> Path:
    """Write the tokenizer files into `path` (created if needed) and return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab()
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    # CLIP's merges.txt starts with a version header that every reader skips.
    (path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    specials = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": EOS_TOKEN, "unk_token": EOS_TOKEN}
    (path / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MAX_LENGTH,
        "do_lower_case": True,
        **specials,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def vocab_size() -> int:
    return len(build_vocab()[0])


def special_token_ids() -> tuple[int, int]:
    """(bos id, eos id) of the demo vocabulary; the text encoder's config needs them."""
    vocab, _ = build_vocab()
    return vocab[BOS_TOKEN], vocab[EOS_TOKEN]
