"""Retrieval eval over the Python 3.11 documentation: question set, baselines, product arms."""
