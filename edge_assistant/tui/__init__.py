"""The Textual chat app: the only package that imports textual.

Build it with :func:`edge_assistant.tui.app.make_app` (the CLI and the tests use
the same factory).
"""
