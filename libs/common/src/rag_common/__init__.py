"""Shared building blocks of the RAG platform services."""
