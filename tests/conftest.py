"""Every test runs with the offline environment the CLI and the app factory set, before any
vendor library is imported: LiteLLM, for one, would otherwise try to fetch its model cost map
over the network on import (and retry for seconds where there is none)."""

from gateway.offline import enforce_offline_env

enforce_offline_env()
