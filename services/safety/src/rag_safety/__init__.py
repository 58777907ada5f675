"""Safety service."""
