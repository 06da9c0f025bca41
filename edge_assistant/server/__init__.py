"""OpenAI-compatible HTTP API over the assistant (stdlib HTTP server, loopback by default)."""
