"""The API key in an ``Authorization: Basic`` header (the key is the username)."""

from __future__ import annotations

import base64
import binascii

from lmsgate.errors import Unauthorized

__all__ = ["basic_username"]


def basic_username(header: str | None) -> str | None:
    """The username of an ``Authorization: Basic …`` header value; None when there is no header.

    Raises :class:`~lmsgate.errors.Unauthorized` for another scheme or undecodable credentials.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("Unauthorized: use HTTP Basic auth with the API key as the username")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # ValueError: a value with non-ASCII characters; UnicodeDecodeError is one
        raise Unauthorized("Unauthorized: the Basic credentials are not valid base64") from None
    return decoded.partition(":")[0]
