"""Workflows as data: load, trace, fill and validate API-format graphs (no I/O but reading files)."""
