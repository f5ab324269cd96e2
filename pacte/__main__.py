"""`python -m pacte` is the `pacte` command."""

from pacte.cli import main

main()
