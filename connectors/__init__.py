"""Database and file I/O: registry schema and connector, eligibility, endpoints, trial loaders."""
