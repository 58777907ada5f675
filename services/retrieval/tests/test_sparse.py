from __future__ import annotations

from rag_retrieval import sparse


def test_terms_are_stemmed_lowercased_and_without_stop_words() -> None:
    assert sparse.terms("The Libraries are classifying BOOKS") == ["librari", "classifi", "book"]


def test_repeated_terms_weigh_more_but_saturate() -> None:
    ids_once, once = sparse.document_vector("retrieval")
    _, twice = sparse.document_vector("retrieval retrieval")
    _, many = sparse.document_vector(" ".join(["retrieval"] * 50))
    assert once[0] < twice[0] < many[0] < sparse.K1 + 1
    assert ids_once == [sparse.term_id("retriev")]


def test_query_vector_has_each_term_once_with_unit_weight() -> None:
    ids, weights = sparse.query_vector("search search engines")
    assert len(ids) == 2
    assert weights == [1.0, 1.0]


def test_term_ids_are_stable_across_processes() -> None:
    assert sparse.term_id("librari") == int.from_bytes(
        __import__("hashlib").blake2b(b"librari", digest_size=4).digest(), "little"
    )
