"""`python -m billing_reconciler.cli`: the console script without its wrapper."""

from . import main

main(prog_name="billing-reconciler")
