"""BM25 as sparse vectors: Qdrant applies the IDF (`Modifier.IDF`), we supply the term-frequency part.

Terms are lower-cased words without English stop words, Snowball-stemmed, hashed to 32-bit ids, as
in Qdrant's own BM25 (fastembed), so no vocabulary has to be stored or shared between processes.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from functools import lru_cache

import snowballstemmer

K1 = 1.2
B = 0.75
AVERAGE_DOCUMENT_TERMS = 100.0

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves""".split()
)
_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def terms(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1]


@lru_cache(maxsize=100_000)
def term_id(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def document_vector(
    text: str, average_terms: float = AVERAGE_DOCUMENT_TERMS
) -> tuple[list[int], list[float]]:
    """The BM25 term-frequency weight of each term of a document.

    BM25 normalises by the corpus' average length, which a stream of upserts cannot know; a fixed
    `average_terms` close to a typical chunk's term count (800 characters is ~100 terms) stands in.
    """
    counts = Counter(terms(text))
    length_norm = K1 * (1 - B + B * sum(counts.values()) / average_terms)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        weights[term_id(term)] = weights.get(term_id(term), 0.0) + tf * (K1 + 1) / (tf + length_norm)
    return list(weights), list(weights.values())


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Each distinct query term once; Qdrant multiplies by its IDF."""
    ids = sorted({term_id(term) for term in terms(text)})
    return ids, [1.0] * len(ids)
