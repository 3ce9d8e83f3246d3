"""Evaluation harness: golden questions against a running gateway, metrics, reports, a gate."""
