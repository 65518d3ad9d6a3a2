"""The app graph: its pydantic model, validation, and (with the run engine) the pure executor."""
