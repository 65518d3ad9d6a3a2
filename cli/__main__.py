"""`python -m cli ...` is `mantle ...` (how tests and benchmarks start Mantle's processes)."""

from cli.main import main

main()
