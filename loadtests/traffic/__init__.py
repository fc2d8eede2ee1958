"""Bundled shadow traffic: `sample.jsonl`, the default input of every traffic and load command."""
