"""Adapters to the backing services: typed records in and out, no settings, no HTTP routes."""
