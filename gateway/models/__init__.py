"""Model management: models.yaml, the live model set, hot reload, reindex and its gate."""
