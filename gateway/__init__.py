"""The composition root: settings, the FastAPI app, the CLI. Nothing imports this package."""
