"""Rich renderings shared by the CLI (and later the TUI). Layer 5: may import rich."""
