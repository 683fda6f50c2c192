"""`python -m sync` is `relance`."""

from sync.cli import main

main()
