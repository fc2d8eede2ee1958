"""Reliability runs against a real service process: soak, crash and restart chaos, fault injection."""
