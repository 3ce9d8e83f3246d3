"""Who may call: API keys, JWT, rate limits and the secrets Holdfast generates."""
