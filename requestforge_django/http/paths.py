"""``excluded_paths`` (settings: ``EXCLUDED_PATHS``): one normaliser and one matching rule for every auth hook.

Every auth hook (bearer, API key, Basic, composite, the token hooks of OAuth and
pipeline clients) and the settings checks use these functions, so a path is excluded
the same way whatever authenticates the client.

**Entries** (:func:`normalize_excluded_paths`): a URL path such as ``"/health"``; a bare
string is one entry, never its characters. Surrounding whitespace is dropped, a missing
leading ``/`` is added, ``.``/``..`` segments are resolved and trailing slashes are
dropped, so ``"/public/"``, ``"/public"`` and ``"public"`` are the same entry. Refused
(:class:`~.exceptions.ConfigurationError`, field ``excluded_paths``): anything but a
string, an empty entry, one with a scheme (``://``), a query (``?``), a fragment (``#``)
or whitespace inside, and an entry that is the root (``"/"``), which would send every
request without credentials.

**The request path** (:func:`request_path`): the path of the URL the request is made
with. For the usual relative URL (``client.get("/public/x")``) that is the path relative
to ``BASE_URL``, whose own path is not part of it; an absolute URL is matched by its
whole path. The query and fragment are ignored, a missing leading ``/`` is added and
``.``/``..`` segments are resolved (as ``urllib3`` does before sending). Nothing is
percent-decoded and case matters (``/Public`` is not ``/public``).

**Matching** (:func:`is_excluded_path`): entry ``E`` matches path ``P`` when ``P == E``
or ``P`` starts with ``E + "/"``: ``"/public"`` (or ``"/public/"``) matches ``/public``,
``/public/`` and ``/public/x``, never ``/publicity`` or ``/api/public``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from .exceptions import ConfigurationError

__all__ = ["excluded_path_problem", "is_excluded_path", "normalize_excluded_paths", "request_path", "should_send_credentials"]

_FIELD = "excluded_paths"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path (``/a/./b/../c`` -> ``/a/c``)."""
    if "/." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _normalized(value: object) -> tuple[str | None, str | None]:
    """``(entry, None)`` for a usable entry, ``(None, why not)`` otherwise; the reason never quotes the value."""
    if not isinstance(value, str) or not value.strip():
        return None, "must be a URL path such as '/health'"
    text = value.strip()
    if "://" in text or any(char in text for char in "?#") or any(char.isspace() for char in text):
        return None, "must be a URL path such as '/health' (no scheme, host, query, fragment or whitespace)"
    path = _remove_dot_segments(text if text.startswith("/") else "/" + text).rstrip("/")
    if not path:
        return None, "may not be the root path '/': it would send every request without credentials (remove AUTH instead)"
    return path, None


def excluded_path_problem(value: object) -> str | None:
    """Why ``value`` is not a usable entry (``None`` if it is one); used by the settings checks."""
    return _normalized(value)[1]


def _entry(value: object) -> str:
    entry, problem = _normalized(value)
    if entry is None:
        shown = repr(value) if isinstance(value, str) and len(value) <= 200 else type(value).__name__
        raise ConfigurationError(f"entries must be URL paths: an entry {problem}, got {shown}", field=_FIELD)
    return entry


def normalize_excluded_paths(paths: Iterable[str] | str | None) -> tuple[str, ...]:
    """``("/health", "/public")``: every entry normalised (see the module doc), duplicates dropped, order kept."""
    if paths is None:
        return ()
    if isinstance(paths, str):
        paths = (paths,)
    try:
        entries = list(paths)
    except TypeError:
        raise ConfigurationError(f"must be a list of URL paths, got {type(paths).__name__}", field=_FIELD) from None
    return tuple(dict.fromkeys(_entry(path) for path in entries))


def request_path(url: str) -> str:
    """The path an excluded entry is compared with (see the module doc)."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        url = rest[cut:]
    path = url.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    return _remove_dot_segments(path)


@lru_cache(maxsize=512)
def _lenient_entry(value: str) -> str | None:
    """An entry set directly on a hook (never normalised): normalised, or ``None`` (ignored) if it is not one."""
    return _normalized(value)[0]


def is_excluded_path(path: str, excluded: Iterable[str]) -> bool:
    """Whether request path ``path`` (from :func:`request_path`) is at or below one of ``excluded``."""
    for value in excluded:
        entry = _lenient_entry(value) if isinstance(value, str) else None
        if entry is not None and (path == entry or path.startswith(entry + "/")):
            return True
    return False


def should_send_credentials(url: str, excluded: Iterable[str]) -> bool:
    """``False`` when ``url``'s path is excluded: what every auth hook's ``should_authenticate`` asks."""
    return not excluded or not is_excluded_path(request_path(url), excluded)
