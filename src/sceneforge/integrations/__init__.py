"""Integrations with other frameworks (optional extras): :mod:`.langgraph`."""
