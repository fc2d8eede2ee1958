"""Opt-in shadow-traffic capture in the role service (`rolescope serve --capture PATH`)."""
