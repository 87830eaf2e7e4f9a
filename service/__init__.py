"""The HTTP service and the command line: ranked, cited passages for a query."""
