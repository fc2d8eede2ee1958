"""CPU profiles of the role service: py-spy runs, collapsed stacks, speedscope, flame graphs, comparison."""
