"""``python -m genlab`` (and ``torchrun -m genlab``) runs the CLI."""

from genlab.cli.app import main

main()
