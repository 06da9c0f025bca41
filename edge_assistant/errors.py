"""One error family. Every message says what went wrong *and* what to do next.

Core code raises these; the CLI prints ``str(error)`` as one line on stderr and
exits with ``error.exit_code``; the chat app shows it as a notification.
"""

from __future__ import annotations


class EdgeAssistantError(Exception):
    """Base of every error the user may see. The message names the next step."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} — {hint}")


class UsageError(EdgeAssistantError):
    """The command line or an argument value is wrong."""

    exit_code = 2


class SettingsError(EdgeAssistantError):
    """The settings file or an EDGE_ASSISTANT_* variable is invalid."""


class BundleError(EdgeAssistantError):
    """A bundle is missing, malformed or unsafe."""


class ManifestError(BundleError):
    """manifest.json does not follow the bundle format."""


class IntegrityError(BundleError):
    """A file's bytes do not match what the manifest promises."""


class DiskSpaceError(BundleError):
    """Not enough free disk space for an operation."""


class ModelError(EdgeAssistantError):
    """The base model could not be loaded or run."""


class ModifierError(EdgeAssistantError):
    """A modifier (LoRA adapter) is unknown, unreadable or bound to another base."""


class TemplateError(EdgeAssistantError):
    """The chat template is missing, invalid or tried to leave its sandbox."""


class RouterError(EdgeAssistantError):
    """The router's data is missing or invalid."""


class HistoryError(EdgeAssistantError):
    """The chat history database cannot be used."""


class HubError(EdgeAssistantError):
    """Downloading from or uploading to a model hub failed."""


class BuildError(EdgeAssistantError):
    """A build stage failed."""


class RecipeError(BuildError):
    """A build recipe or its data is invalid."""


class ConversionError(BuildError):
    """A model or adapter cannot be turned into GGUF: unsupported, malformed or not fitting its base."""
