"""Allocations and bytes per request (memray totals ÷ requests), baselines and their comparison."""
