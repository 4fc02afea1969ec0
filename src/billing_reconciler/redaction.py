"""Secrets: which values are credentials, and how every output hides them. The one definition.

A value is secret when a field on its way down is named like a credential, or when its
manifest lists the field under `metadata.sensitive`. Names are matched by word, after splitting
`api_key`, `clientSecret`, `webhook-url` into words, so that `task` is not `sk` and `author` is
not `auth`. Our own `key` (the key of a keyed list item) and the identifiers named `*_key`
(`group_key`, `aggregation_key`, `uniqueness_key`...) are not secrets; other `*_key` compounds
(`api_key`, `private_key`, `access_key`) are.

Every command's stdout and stderr show a secret as "(sensitive)"; a changed secret stays
visible as a change, "(sensitive)" before and after. Plan files (`--out`) and the store's
history (`edits` rows) never hold a secret either: they hold "(sensitive) hmac-sha256:<hex>", a
digest keyed with the store's own random key (`state.digest_key`, made at init). Two plans of
the same secret against the same store compare equal, a changed secret compares different, and
someone holding only the plan file cannot test guesses of a short secret against it (a plain
hash of "hunter2" can be found by trying words; a keyed one cannot without the key). `apply FILE`
re-derives the real request bodies from the manifests and the environment.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SENSITIVE = "(sensitive)"
DIGEST_SCHEME = "hmac-sha256"

# Words that make a field a credential wherever they appear in its name.
SECRET_WORDS = frozenset({
    "pwd", "pass", "password", "passwd", "passphrase", "auth", "authorization", "bearer", "dsn", "jwt",
    "session", "sk", "pin", "secret", "secrets", "token", "tokens", "credential", "credentials", "cookie",
    "signature", "otp", "apikey", "privatekey", "accesskey", "secretkey", "signingkey",
})
# Stems long enough to find inside run-together words (`apitoken`, `dbpassword`, `webhooksecret`).
SECRET_STEMS = re.compile(r"secret|token|passw|passphrase|credential", re.IGNORECASE)
# Word pairs that are credentials together, not apart.
SECRET_PAIRS = frozenset({
    ("connection", "string"), ("conn", "str"), ("webhook", "url"), ("webhook", "uri"), ("otp", "seed"),
    ("database", "url"), ("db", "url"), ("private", "key"), ("client", "assertion"),
})
KEY_WORDS = frozenset({"key", "keys"})
# `<word>_key` is an identifier, not a secret, after these words (group_key, aggregation_key...).
IDENTIFIER_KEYS = frozenset({
    "group", "groups", "aggregate", "aggregation", "uniqueness", "idempotency", "sort", "partition", "dedupe",
    "dedup", "primary", "foreign", "lookup", "cache", "config", "presentation", "pricing", "seat", "item",
    "property", "dimension", "filter", "map", "public",
})
_WORDS = re.compile(r"[_\-.\s/]+|(?<=[a-z0-9])(?=[A-Z])")
_INDEX = re.compile(r"\[[^\]]*\]")
# Keys of a JSON text: without a backslash in the text, every quote delimits a string, and the
# simple pattern is 4x faster (34 us a body against 125 us: 20,000 history rows per large apply).
_JSON_KEY = re.compile(r'"([^"\\]*)":')
_JSON_KEY_ESCAPED = re.compile(r'"((?:[^"\\]|\\.)*)":')


def words(name: str) -> list[str]:
    """`clientSecret` -> [client, secret]; `webhook-url` -> [webhook, url]; `API_KEY` -> [api, key]."""
    return [w.lower() for w in _WORDS.split(name) if w]


@functools.lru_cache(maxsize=8192)  # a plan names the same few hundred fields over and over
def is_secret_name(name: str) -> bool:
    """Whether a field of this name holds a credential, by the built-in rule."""
    parts = words(name)
    if not parts:
        return False
    if any(w in SECRET_WORDS for w in parts) or SECRET_STEMS.search(name):
        return True
    if any(pair in SECRET_PAIRS for pair in zip(parts, parts[1:])):
        return True
    # `*_key` compounds: api_key, private_key, access_key, stripe_api_key; not the bare `key`,
    # and not the identifiers (group_key, bm_group_key_overrides).
    for i, word in enumerate(parts):
        if word in KEY_WORDS and i > 0 and parts[i - 1] not in IDENTIFIER_KEYS:
            return True
    return False


def field_name_of(path: str) -> str:
    """The field a `metadata.sensitive` path points at: `spec.custom_fields.crm_ref` -> crm_ref."""
    return _INDEX.sub("", path).rstrip(".").rsplit(".", 1)[-1]


def path_fields(path: str) -> list[str]:
    """Field names along a change path: `commits[prepaid].custom_fields.x` -> [commits, custom_fields, x]."""
    return [part for part in _INDEX.sub("", path).split(".") if part]


def keyed_digest(value: Any, key: bytes) -> str:
    """`(sensitive) hmac-sha256:<hex>`: what a plan file or the history holds instead of a secret."""
    from . import canonical

    mac = hmac.new(key, canonical.dumps(value).encode(), hashlib.sha256).hexdigest()
    return f"{SENSITIVE} {DIGEST_SCHEME}:{mac}"


@dataclass(frozen=True)
class Redactor:
    """Hides secret values; `marked` are further field names (from `metadata.sensitive`).
    With a `digest_key`, a hidden value is "(sensitive)" plus its keyed digest (files the tool
    writes), else "(sensitive)" alone (what is printed)."""

    marked: frozenset[str] = frozenset()
    digest_key: bytes | None = None

    def hidden(self, value: Any) -> str:
        return SENSITIVE if self.digest_key is None else keyed_digest(value, self.digest_key)

    def is_secret(self, name: Any) -> bool:
        return isinstance(name, str) and bool(name) and (name in self.marked or is_secret_name(name))

    def value(self, value: Any, name: str = "") -> Any:
        """`value` (found under field `name`) with every secret inside it hidden, at any depth."""
        if value is None or isinstance(value, bool):  # nothing to hide in a flag or an absence
            return value
        if name and self.is_secret(name):
            return self.hidden(value)
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def json_text(self, text: str) -> str:
        """A JSON document's text (canonical form) with its secrets hidden; the text itself when it
        names no secret field (most bodies: found by scanning its keys, without parsing it)."""
        keys = (_JSON_KEY_ESCAPED if "\\" in text else _JSON_KEY).findall(text)
        if not any(map(self.is_secret, set(keys))):
            return text
        from . import canonical

        return canonical.dumps(self.value(canonical.loads(text)))

    def path_is_secret(self, path: str) -> bool:
        """`custom_fields.api_token`, `...configuration.credentials.user`: inside a secret field."""
        return any(self.is_secret(part) for part in path_fields(path))

    def at(self, value: Any, path: str) -> Any:
        """A value found at a field path (a field change's before or after), secrets hidden."""
        if value is not None and not isinstance(value, bool) and path and self.path_is_secret(path):
            return self.hidden(value)
        return self.value(value)

    def secret_values(self, value: Any, name: str = "") -> set[str]:
        """The texts of every secret scalar inside `value`: what an error message must not quote."""
        if value is None or isinstance(value, bool):
            return set()
        if isinstance(value, dict):
            return set().union(*(self.secret_values(v, k) for k, v in value.items()))
        if isinstance(value, list):
            return set().union(*(self.secret_values(v, name) for v in value))
        return {str(value)} if name and self.is_secret(name) else set()

    def scrub(self, text: str, source: Any) -> str:
        """`text` (a message from the backend or the store) with any secret of `source` hidden."""
        for secret in sorted(self.secret_values(source), key=len, reverse=True):
            if len(secret) >= 3:  # "1" or "ab" would blank out unrelated words
                text = text.replace(secret, SENSITIVE)
        return text

    def change(self, change: Mapping[str, Any]) -> dict[str, Any]:
        """A change as JSON ({path, before, after, ...}); a secret one says so, and stays a change."""
        path = change.get("path", "")
        out = {**change, "before": self.at(change.get("before"), path), "after": self.at(change.get("after"), path)}
        if path and self.path_is_secret(path):
            out["sensitive"] = True
        return out


NOTHING_MARKED = Redactor()


class AccountSecrets:
    """The redactor of each object: the built-in rule plus what its manifest marks sensitive.
    With a `digest_key` (the store's), hidden values carry their keyed digest (keyed_digest)."""

    def __init__(self, marked: Mapping[str, Iterable[str]] | None = None, digest_key: bytes | None = None):
        self._marked = {address: frozenset(names) for address, names in (marked or {}).items() if names}
        self.digest_key = digest_key
        # One Redactor per object, made once: a plan asks for it once per object it shows.
        self._redactors = {address: Redactor(names, digest_key) for address, names in self._marked.items()}
        self._default = NOTHING_MARKED if digest_key is None else Redactor(frozenset(), digest_key)

    def keyed(self, digest_key: bytes) -> AccountSecrets:
        """The same marks, hiding values as keyed digests (for plan files and the history)."""
        return AccountSecrets(self._marked, digest_key)

    def __call__(self, address: str | None = None) -> Redactor:
        if not address or not self._redactors:
            return self._default
        found = self._redactors.get(address)
        if found is not None:
            return found
        # A sub-item's address (Contract/acme.v2.commits[k]): its owner is a prefix ending before a dot.
        start = address.find("/")
        dot = address.find(".", start)
        while dot != -1:
            found = self._redactors.get(address[:dot])
            if found is not None:
                return found
            dot = address.find(".", dot + 1)
        return self._default

    @classmethod
    def from_manifests(cls, manifests: Iterable[Any]) -> AccountSecrets:
        return cls({m.address: [field_name_of(p) for p in m.sensitive] for m in manifests if getattr(m, "sensitive", ())})


NO_MARKS = AccountSecrets()
