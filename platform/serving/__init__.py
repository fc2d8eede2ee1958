"""The role service's composition root: builds every part, wires them once, runs them in one lifespan."""
