"""edge-assistant: a local, offline AI assistant for the terminal."""

__version__ = "0.1.0"
