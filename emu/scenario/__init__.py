"""Scenarios: TOML files describing machine, kernel settings, processes and their threads."""
