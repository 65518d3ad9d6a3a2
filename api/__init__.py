"""The HTTP API: FastAPI app, routes, schemas, auth, and (later) the public pages."""
