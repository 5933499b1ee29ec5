"""Use cases. Shared by the HTTP API, the CLI and (later) the delivery workers. No HTTP, no SQL."""
