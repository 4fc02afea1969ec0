"""`python -m billing_reconciler`: the console script without its wrapper."""

from .cli import main

main(prog_name="billing-reconciler")
