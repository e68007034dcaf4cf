"""Bytes on the wire, never trusted: bounded HTTP reads, the shared websocket, capped and verified files."""
