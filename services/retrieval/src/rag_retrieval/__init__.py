"""Retrieval service."""
