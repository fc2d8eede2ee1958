"""Committed memory baselines (`rolescope baseline record`); `bundled.json` is the bundled traffic's."""
