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


def learn_merges(words: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """BPE merges learned from `words` (each counted once) until every word is one token.

    Standard BPE training: repeatedly merge the most frequent adjacent pair (ties broken by the
    pair itself, so the result is deterministic). Applied by rank, as CLIP's tokenizer does, the
    merges turn each training word into a single token; other text still falls back to bytes.
    """
    byte_chars = bytes_to_unicode()
    seqs = []
    for word in sorted(set(words)):
        chars = [byte_chars[b] for b in word.lower().encode("utf-8")]
        seqs.append(chars[:-1] + [chars[-1] + END_OF_WORD])
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for seq in seqs:
            for pair in zip(seq, seq[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for k, seq in enumerate(seqs):
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[k] = out


def build_vocab(words: tuple[str, ...] = ()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id, CLIP's order: bytes, bytes+</w>, merges, specials) and merges.

    words: a corpus to learn merges from (the shapes-world model's caption words); without it, the
    random test model's handful of fixed merges."""
    chars = list(bytes_to_unicode().values())
    merges = learn_merges(words) if words else list(_MERGES)
    merged = list(dict.fromkeys(a + b for a, b in merges))  # a merge result joins the vocabulary once
    tokens = chars + [c + END_OF_WORD for c in chars] + [t for t in merged if t not in chars] + [BOS_TOKEN, EOS_TOKEN]
    tokens = list(dict.fromkeys(tokens))
    return {tok: i for i, tok in enumerate(tokens)}, merges


def write_tokenizer(path: Path, words: tuple[str, ...] = ()) -> Path:
    """Write the tokenizer files into `path` (created if needed) and return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab(words)
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


def vocab_size(words: tuple[str, ...] = ()) -> int:
    return len(build_vocab(words)[0])


def special_token_ids(words: tuple[str, ...] = ()) -> tuple[int, int]:
    """(bos id, eos id) of the demo vocabulary; the text encoder's config needs them."""
    vocab, _ = build_vocab(words)
    return vocab[BOS_TOKEN], vocab[EOS_TOKEN]
