"""Traces, metrics and structured logs for the gateway. Nothing here records user text."""
