"""Embedding service."""
