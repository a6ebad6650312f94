"""Container ids: validated before they are ever used in a path, a lock name or SQL."""

from __future__ import annotations

import re

from corral.errors import InvalidID

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_id(container_id: object) -> str:
    """Return `container_id` if it is a valid id, else raise `InvalidID`.

    Ids end up as directory and lock-file names; refusing `/`, `..`, leading dots
    and dashes here is what keeps them from meaning anything to the filesystem or
    to a command line.
    """
    if not isinstance(container_id, str):
        raise InvalidID(container_id, f"must be a string, not {type(container_id).__name__}")
    if not container_id:
        raise InvalidID(container_id, "must not be empty")
    if len(container_id) > MAX_ID_LENGTH:
        raise InvalidID(container_id, f"is {len(container_id)} characters long (at most {MAX_ID_LENGTH})")
    if container_id[0] in ".-":
        raise InvalidID(container_id, f"must not start with {container_id[0]!r}")
    if not _ID_RE.fullmatch(container_id):
        bad = sorted({c for c in container_id if not _ID_RE.fullmatch(c)})
        raise InvalidID(container_id, f"contains {', '.join(repr(c) for c in bad)}")
    return container_id
