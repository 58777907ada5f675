"""Command line client of the RAG platform."""
