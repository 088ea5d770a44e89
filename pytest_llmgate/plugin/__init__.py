"""plugin: see docs/architecture.md."""
