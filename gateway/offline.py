"""Environment that keeps every dependency from reaching out (see shared OFFLINE-NOTES).

Applied by the CLI and the app factory before any vendor library is imported, and passed to every
child process, so the stack behaves the same with or without a network.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_ENV: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no remote cost map on import
    "HF_HUB_OFFLINE": "1",  # models load from folders only
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",  # unstructured and others
    "ANONYMIZED_TELEMETRY": "False",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",  # Presidio's tldextract: bundled list only
    "TOKENIZERS_PARALLELISM": "false",
}


def enforce_offline_env(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the offline defaults without overriding what an operator set on purpose."""
    target = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        target.setdefault(key, value)
