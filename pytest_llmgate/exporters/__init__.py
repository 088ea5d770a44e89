"""exporters: see docs/architecture.md."""
