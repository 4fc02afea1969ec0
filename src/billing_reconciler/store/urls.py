"""Store URLs: the spellings people write, turned into the one SQLAlchemy opens, and shown with
the password hidden.

`postgres://` and `postgresql://` (what hosting providers hand out) mean PostgreSQL through
psycopg 3, the driver installed with this package: `postgresql+psycopg://`. Another driver
(`postgresql+psycopg2://`) is named and corrected instead of failing as a SQLAlchemy plugin
error. Every message here is safe to print: it never holds the password.
"""

from __future__ import annotations

import re

DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = ("postgres", "postgresql")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd|pwd|sslpassword)=)[^&#]*")
HIDDEN = "***"


class StoreUrlError(ValueError):
    """A store URL that cannot be opened; the message names the fix and hides the password."""


def normalize(url: str) -> str:
    """The URL SQLAlchemy opens, or StoreUrlError saying what to write instead."""
    match = _SCHEME.match(url)
    if match is None:
        hint = f"sqlite:///{url}" if url and "://" not in url else "sqlite:///.billing-reconciler/state.db"
        raise StoreUrlError(f"{display(url)} is not a store URL; write sqlite:///PATH (e.g. {display(hint)}) "
                            f"or {DRIVER}://USER:PASSWORD@HOST[:PORT]/DATABASE")
    scheme = match.group(1)
    base, _, driver = scheme.lower().partition("+")
    if base == "sqlite":
        if driver:
            raise StoreUrlError(f"{display(url)}: the SQLite driver '{driver}' is not supported; "
                                f"write sqlite:///PATH")
        if url[match.end():] == "/":
            raise StoreUrlError(f"{url} names no file; write sqlite:///PATH, e.g. sqlite:///.billing-reconciler/state.db")
        return url
    if base not in _POSTGRES_SCHEMES:
        raise StoreUrlError(f"{display(url)}: unsupported store '{scheme}'; use sqlite:///PATH or "
                            f"{DRIVER}://USER:PASSWORD@HOST[:PORT]/DATABASE")
    rest = url[match.end():]
    fixed = f"{DRIVER}://{rest}"
    if driver and driver != "psycopg":
        raise StoreUrlError(f"{display(url)}: the PostgreSQL driver '{driver}' is not installed; this program "
                            f"uses psycopg 3: write {display(fixed)}")
    _check_authority(fixed, url)
    return fixed


def _check_authority(fixed: str, url: str) -> None:
    """A malformed host or port of `url` (rewritten as `fixed`), said plainly: SQLAlchemy's own
    message can quote the URL, password included."""
    from sqlalchemy.engine import make_url

    userinfo = _authority(url)[0]
    if "@" in userinfo:  # SQLAlchemy would split at the first '@' and take the rest of the password as the host
        raise StoreUrlError(f"{display(url)}: the user name or password holds '@'; write it percent-encoded "
                            "as %40")
    try:
        parsed = make_url(fixed)
    except ValueError:
        port = _authority(url)[1].rpartition(":")[2]
        raise StoreUrlError(f"{display(url)}: the port '{port}' is not a number; write HOST:PORT, "
                            "e.g. localhost:5432") from None
    except Exception:  # noqa: BLE001 - sqlalchemy.exc.ArgumentError: the URL does not parse at all
        raise StoreUrlError(f"{display(url)} is not a valid PostgreSQL URL; write "
                            f"{DRIVER}://USER:PASSWORD@HOST[:PORT]/DATABASE") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise StoreUrlError(f"{display(url)}: the port {parsed.port} is out of range (1-65535)")
    if not parsed.database:
        raise StoreUrlError(f"{display(url)} names no database; write {DRIVER}://USER:PASSWORD@HOST/DATABASE")


def _authority(url: str) -> tuple[str, str]:
    """(user info, host and port) of a URL, read by hand so that a malformed one still splits."""
    rest = url.split("://", 1)[1] if "://" in url else url
    at = rest.rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    return userinfo, re.split(r"[/?#]", hostpart, maxsplit=1)[0]


def password(url: str) -> str | None:
    userinfo = _authority(url)[0]
    if ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1] or None


def display(url: str) -> str:
    """The URL with its password (in the user info or the query string) shown as ***."""
    if not url:
        return url
    secret = password(url)
    shown = url
    if secret is not None:
        userinfo = _authority(url)[0]
        user = userinfo.split(":", 1)[0]
        head, _, tail = url.partition(userinfo + "@")
        shown = f"{head}{user}:{HIDDEN}@{tail}"
    return _QUERY_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, shown)


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with the URL's password hidden wherever it appears."""
    secret = password(url)
    if secret:
        text = text.replace(url, display(url)).replace(secret, HIDDEN)
        from urllib.parse import unquote

        if unquote(secret) != secret:
            text = text.replace(unquote(secret), HIDDEN)
    for found in _QUERY_PASSWORD.finditer(url):
        value = found.group(0)[len(found.group(1)):]
        if value:
            text = text.replace(value, HIDDEN)
    return text
