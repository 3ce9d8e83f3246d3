"""The `holdfast` command line, one module per command group."""
