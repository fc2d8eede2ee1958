"""`rolescope diff`: primary and candidate replies compared field by field, beyond the noise."""
