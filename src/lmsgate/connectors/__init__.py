"""Provider connectors: unified model in, provider calls out, and back."""
