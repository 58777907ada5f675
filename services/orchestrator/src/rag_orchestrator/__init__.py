"""Orchestrator service."""
