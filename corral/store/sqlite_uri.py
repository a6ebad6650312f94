"""SQLite `file:` URIs for a store path, so that a read can say `mode=ro` (never create, never write).

In a URI, `?` starts the parameters, `#` the fragment and `%HH` is an escape
(https://www.sqlite.org/uri.html): a root named `a?b` unescaped is the file
`a` with a parameter `b`, and `x?mode=memory` would not be a file at all.
Those three characters are escaped and nothing else needs to be; an absolute
path gets the empty authority (`file:///...`), so that a path beginning with
`//` is not read as a host name. Written by hand (three replacements) rather
than with urllib.parse: the one-shot CLI path imports this and avoids `re`.
"""

from __future__ import annotations


def file_uri(path: str, mode: str, *, immutable: bool = False) -> str:
    """`path` as a `file:` URI opened with `mode` (`ro` or `rw`), optionally `immutable`."""
    escaped = path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    if escaped.startswith("/"):
        escaped = "//" + escaped
    return f"file:{escaped}?mode={mode}" + ("&immutable=1" if immutable else "")
