"""Bundles: what the builder writes and the runtime loads (see shared/DESIGN.md)."""
