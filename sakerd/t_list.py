"""Keyspace commands (filled in by the keyspace work)."""

COMMANDS = []
