"""One module per domain: the routes of the builder API."""
