"""The ingestion pipeline: parse, chunk, redact, embed, index. Composes ports from ``services``."""
