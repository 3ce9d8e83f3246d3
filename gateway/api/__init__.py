"""The HTTP edge: the FastAPI app, its dependencies, problem+json mapping and routes."""
