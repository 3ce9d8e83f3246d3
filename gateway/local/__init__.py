"""The local stack: Weaviate, Ollama and the gateway as supervised processes on one host."""
