"""Shadow mirroring in the role service: a sampled share of requests also goes to a candidate."""
