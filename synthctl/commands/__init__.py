"""One module per CLI command; `synthctl.cli` registers them."""
