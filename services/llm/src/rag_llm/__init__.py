"""LLM service."""
