"""Tokenizers for a closed world vocabulary, built deterministically in code.

The `tokenizers` BPE trainer is not reproducible across processes (shared notes), so the merges
are computed here by plain BPE with fixed tie-breaking: rebuilding gives the same files. Every
world word becomes one token; letters stay in the vocabulary, so unknown words still tokenize
(the closed-vocabulary check lives in the generation API, which names the unknown word).
"""

from __future__ import annotations

from transformers import CLIPTokenizer, T5Tokenizer

CLIP_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def clip_tokenizer(words: list[str], max_length: int) -> CLIPTokenizer:
    """A CLIP BPE tokenizer whose merges spell every word of ``words`` as one token."""
    vocab: dict[str, int] = {}
    for token in [*LETTERS, *(c + "</w>" for c in LETTERS)]:
        vocab.setdefault(token, len(vocab))
    merges = bpe_merges(words)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    for special in CLIP_SPECIALS:
        vocab.setdefault(special, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def bpe_merges(words: list[str]) -> list[tuple[str, str]]:
    """Plain BPE training on the word list, with deterministic tie-breaking.

    Merging the most frequent adjacent pair until every word is one token guarantees that
    applying the merges by rank (what the tokenizer does) reproduces whole-word tokens.
    """
    segmentations = [list(w[:-1]) + [w[-1] + "</w>"] for w in words]
    merges: list[tuple[str, str]] = []
    while any(len(seg) > 1 for seg in segmentations):
        counts: dict[tuple[str, str], int] = {}
        for seg in segmentations:
            for pair in zip(seg, seg[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        segmentations = [_merge(seg, best) for seg in segmentations]
    return merges


def _merge(segments: list[str], pair: tuple[str, str]) -> list[str]:
    merged, j = [], 0
    while j < len(segments):
        if j + 1 < len(segments) and (segments[j], segments[j + 1]) == pair:
            merged.append(segments[j] + segments[j + 1])
            j += 2
        else:
            merged.append(segments[j])
            j += 1
    return merged


def t5_tokenizer(words: list[str], max_length: int) -> T5Tokenizer:
    """A T5 Unigram tokenizer with one piece per word (plus letters for unknown text); also what
    UMT5 encoders (Wan) read."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + w, -1.0) for w in words]
    pieces += [(c, -10.0) for c in LETTERS] + [("\u2581", -10.0)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)
