"""Holdfast's error hierarchy. Adapters translate vendor exceptions into these at their boundary.

HoldfastError
├── InvalidRequestError        400  the caller sent something unusable
├── AuthenticationError        401  no or bad credentials
├── AccessDeniedError          403  authenticated, but not allowed
├── NotFoundError              404
├── InvalidConfigFileError     422  a submitted configuration file is invalid (old one kept)
├── RateLimitedError           429
├── RequestCancelledError      499  the client went away; the work for it was stopped
├── BackendUnavailableError    503  a dependency is down or refused
│   ├── StoreUnavailableError
│   ├── EmbedderUnavailableError
│   ├── ModelUnavailableError
│   ├── RerankerUnavailableError
│   └── RedactorUnavailableError
├── BackendTimeoutError        504  a dependency did not answer in time
└── ConfigError                    invalid configuration, raised at start-up
"""

from __future__ import annotations


class HoldfastError(Exception):
    """Base of every error Holdfast raises on purpose. ``code`` is stable for API clients."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"


class InvalidRequestError(HoldfastError):
    status, code, title = 400, "invalid_request", "Invalid request"


class AuthenticationError(HoldfastError):
    status, code, title = 401, "unauthenticated", "Authentication required"


class AccessDeniedError(HoldfastError):
    status, code, title = 403, "access_denied", "Access denied"


class NotFoundError(HoldfastError):
    status, code, title = 404, "not_found", "Not found"


class InvalidConfigFileError(HoldfastError):
    status, code, title = 422, "invalid_config_file", "The configuration file is invalid"


class RerankerNotConfiguredError(HoldfastError):
    status, code, title = 409, "reranker_not_configured", "No reranker is configured"


class RateLimitedError(HoldfastError):
    status, code, title = 429, "rate_limited", "Too many requests"


class RequestCancelledError(HoldfastError):
    """Nobody reads the response any more (499, as proxies log a client that closed first)."""

    status, code, title = 499, "client_disconnected", "The client closed the request"


class BackendUnavailableError(HoldfastError):
    status, code, title = 503, "backend_unavailable", "A backing service is unavailable"


class StateUnavailableError(BackendUnavailableError):
    """The gateway's own state (keys, jobs, shared state database) cannot be read or written."""

    code, title = "state_unavailable", "The shared state database is unavailable"


class StoreUnavailableError(BackendUnavailableError):
    code, title = "store_unavailable", "The vector store is unavailable"


class EmbedderUnavailableError(BackendUnavailableError):
    code, title = "embedder_unavailable", "The embedding model is unavailable"


class ModelUnavailableError(BackendUnavailableError):
    code, title = "model_unavailable", "The language model is unavailable"


class RerankerUnavailableError(BackendUnavailableError):
    code, title = "reranker_unavailable", "The reranking model is unavailable"


class RedactorUnavailableError(BackendUnavailableError):
    code, title = "redactor_unavailable", "The PII redactor is unavailable"


class BackendTimeoutError(HoldfastError):
    status, code, title = 504, "backend_timeout", "A backing service timed out"


class ConfigError(HoldfastError):
    code, title = "config_error", "Invalid configuration"
