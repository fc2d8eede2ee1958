"""`python -m rolescope` runs the command line."""

# ruff: noqa: A005  (ruff names this module after its folder, `platform`; it is installed as rolescope.__main__)
from rolescope.cli import main

main()
