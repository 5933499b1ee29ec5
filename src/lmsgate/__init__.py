"""lmsgate: a self-hosted unified LMS API, wire-compatible with StackOne's."""

__version__ = "0.1.0"
