"""The Metronome API as a backend, through the official `metronome-sdk` client.

Every call goes through the SDK's client (`client.get/post/put` with our own bodies and
`cast_to=httpx.Response`), configured from the SDK's own variables (`METRONOME_BEARER_TOKEN`,
`METRONOME_BASE_URL`). Three things differ from the SDK's defaults, on purpose:

- Bodies are sent as canonical JSON bytes, Decimals as exact JSON numbers (the SDK's typed
  methods take amounts as float: 0.1 + 0.2 would arrive as 0.30000000000000004), and responses
  are parsed with Decimals (`canonical.loads`).
- The SDK's retries are off (`max_retries=0`): it re-sends POSTs on 409/5xx and connection errors,
  which duplicates a create whose response was lost. Ours: 429 always (honouring Retry-After),
  5xx / timeouts / connection errors only for requests that are safe to send again (reads, PUT,
  set-style updates, archives, and bodies carrying a `uniqueness_key`). A create without a key is
  never re-sent after a lost answer: the apply stops, and the next refresh matches it.
- The token lives in the client's auth header only: no message, log line or repr names it.

`get(kind, id)` and `list(kind)` return objects in the shape the embedded emulator keeps (what
`plan.readers` read): a rate card with its `rates`, a customer with its billing provider
configurations, a contract as `v2/contracts/get` returns it.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ... import canonical
from ...plan.api_body import CREDIT_TYPE
from ...plan.operations import Request
from . import BackendError

DEFAULT_BASE_URL = "https://api.metronome.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 6
PAGE_LIMIT = 100

log = logging.getLogger(__name__)

# Requests whose effect is the same when sent twice (besides reads, PUT and keyed bodies).
REPEATABLE_PATHS = ("/setName", "/setIngestAliases", "/customFields/setValues", "/customFields/deleteValues",
                    "/archive", "/rate-cards/update", "/archiveCustomerBillingProviderConfigurations")


class CredentialsError(BackendError):
    """No token, or the API refused it (401/403)."""


class OutcomeUnknown(BackendError):
    """The request was sent but no answer came (timeout, lost connection, 5xx): it may have been applied."""


class AlreadyDone(BackendError):
    """409 on a `uniqueness_key`: an earlier sending of this very request was applied."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before attempt `attempt + 1`: Retry-After if the server gave one, else
        exponential backoff with jitter."""
        given = parse_retry_after(retry_after)
        if given is not None:
            return min(given, self.max_delay * 6)
        return min(self.max_delay, self.base_delay * (2 ** attempt)) * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def base_url_from_env() -> str:
    return os.environ.get("METRONOME_BASE_URL") or DEFAULT_BASE_URL


def api_host(base_url: str) -> str:
    """What the plan names as its target: scheme://host[:port][/path], never credentials."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def repeatable(request: Request) -> bool:
    if request.method in ("GET", "PUT"):
        return True
    if isinstance(request.body, dict) and request.body.get("uniqueness_key"):
        return True
    return request.path.endswith(REPEATABLE_PATHS)


class MetronomeBackend:
    name = "metronome"
    remote = True  # not in the store's transaction: applies are journaled (apply/journal.py)

    def __init__(self, *, base_url: str | None = None, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url or base_url_from_env()
        self._token = token if token is not None else os.environ.get("METRONOME_BEARER_TOKEN")
        self.timeout, self.retry, self.sleep = timeout, retry, sleep
        self.page_limit = PAGE_LIMIT
        self.parallelism = int(os.environ.get("BILLING_RECONCILER_PARALLELISM") or 10)  # concurrent reads
        self._client = None

    def __repr__(self) -> str:  # never the token
        return f"MetronomeBackend({self.target!r})"

    @property
    def target(self) -> str:
        return api_host(self.base_url)

    def check_credentials(self) -> None:
        if not self._token:
            raise CredentialsError("no Metronome API token: set METRONOME_BEARER_TOKEN (the SDK's variable) "
                                   f"to a token for {self.target}")

    @property
    def client(self):
        if self._client is None:
            import httpx
            from metronome import Metronome

            self.check_credentials()
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
            # Kept-alive connections (the SDK's httpx pool): against `emulator serve` on httptools
            # a write takes 1.5 ms and a read 0.8 ms that way, a fresh connection per request 1.7/1.1.
            self._client = Metronome(bearer_token=self._token, base_url=self.base_url, max_retries=0,
                                     timeout=timeout)
        return self._client

    def session(self, conn=None) -> MetronomeSession:
        return MetronomeSession(self, conn)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- one request, with our retry policy ------------------------------------------------

    def send(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             params: dict[str, Any] | None = None, repeat: bool | None = None) -> dict[str, Any]:
        """The parsed response (Decimals exact). Raises BackendError (refused), CredentialsError,
        AlreadyDone (409 on a uniqueness key), OutcomeUnknown (no answer, not safe to re-send)."""
        import httpx
        import metronome

        request = Request(method, path, body or {})
        repeat = repeatable(request) if repeat is None else repeat
        keyed = bool(body and body.get("uniqueness_key"))
        content = canonical.dumps(body).encode() if body is not None else None
        options: dict[str, Any] = {"headers": {"Content-Type": "application/json"}}
        if params:
            options["params"] = params
        last = ""
        for attempt in range(self.retry.attempts):
            try:
                if method == "GET":
                    response = self.client.get(path, cast_to=httpx.Response, options=options)
                elif method == "PUT":
                    response = self.client.put(path, cast_to=httpx.Response, content=content, options=options)
                else:
                    response = self.client.post(path, cast_to=httpx.Response, content=content, options=options)
                return _parse(response)
            except metronome.APIStatusError as exc:
                status = exc.status_code
                message = _message(exc.response)
                if status in (401, 403):
                    raise CredentialsError(
                        f"the Metronome API at {self.target} refused the token ({status}): check "
                        "METRONOME_BEARER_TOKEN", status=status) from None
                if status == 409 and keyed:
                    raise AlreadyDone(f"{method} {path}: uniqueness key already used: {message}", status=409) from None
                if status == 429 or (status >= 500 and repeat):
                    last = f"{status} {message}"
                    if attempt + 1 < self.retry.attempts:
                        self.sleep(self.retry.delay(attempt, exc.response.headers.get("retry-after")))
                        continue
                    if status == 429:
                        raise BackendError(f"{method} {path}: still rate limited after {self.retry.attempts} "
                                           f"attempts ({last})", status=status) from None
                    raise OutcomeUnknown(f"{method} {path}: the API failed {self.retry.attempts} times ({last})",
                                         status=status) from None
                if status >= 500:
                    raise OutcomeUnknown(f"{method} {path}: the API answered {status} ({message}); the request "
                                         "may or may not have been applied", status=status) from None
                field = _field(exc.response)
                raise BackendError(f"the API refused {method} {path} ({status}): {message}", status=status,
                                   field=field) from None
            except (metronome.APITimeoutError, metronome.APIConnectionError) as exc:
                what = (f"no answer from {self.target} within {self.timeout:g}s"
                        if isinstance(exc, metronome.APITimeoutError) else f"the connection to {self.target} failed")
                last = what
                if repeat and attempt + 1 < self.retry.attempts:
                    self.sleep(self.retry.delay(attempt, None))
                    continue
                raise OutcomeUnknown(f"{method} {path}: {what}; the request may or may not have been applied"
                                     if not repeat else f"{method} {path}: {what} ({self.retry.attempts} attempts)"
                                     ) from None
        raise OutcomeUnknown(f"{method} {path}: no answer ({last})")  # pragma: no cover - loop returns or raises


def _parse(response) -> dict[str, Any]:
    text = response.text
    if not text.strip():
        return {}
    try:
        value = canonical.loads(text)
    except ValueError as exc:
        raise BackendError(f"the API answered {response.status_code} with a body that is not JSON: {exc}") from None
    return value if isinstance(value, dict) else {"data": value}


def _message(response) -> str:
    try:
        body = canonical.loads(response.text)
    except ValueError:
        return (response.text or response.reason_phrase or "").strip()[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


def _field(response) -> str | None:
    try:
        body = canonical.loads(response.text)
    except ValueError:
        return None
    return body.get("field") if isinstance(body, dict) else None


# --- reads in the embedded emulator's shapes -------------------------------------------------

class MetronomeSession:
    """One apply's or refresh's use of the API. `conn` (the store's, may be None) only serves to
    find a contract's customer, which `v2/contracts/get` needs beside the contract id."""

    def __init__(self, backend: MetronomeBackend, conn=None):
        self.backend, self.conn = backend, conn
        self.contract_customer: dict[str, str] = {}
        self._read: dict[tuple[str, str], dict[str, Any] | None] = {}  # since the last execute
        backend.client  # noqa: B018 - made now, before any thread shares it (and the token checked)
        if conn is not None:
            self._contract_customers_from_store()

    def execute(self, request: Request) -> dict[str, Any]:
        self._read.clear()
        response = self.backend.send(request.method, request.path, request.body)
        body = request.body or {}
        if request.path == "/v1/contracts/create" and isinstance(response.get("data"), dict):
            self.contract_customer[response["data"].get("id", "")] = body.get("customer_id", "")
        return response

    def flush(self) -> dict[str, int]:
        return {}

    def get(self, kind: str, remote_id: str) -> dict[str, Any] | None:
        """The object as the API holds it now; read once between two executes."""
        if (kind, remote_id) not in self._read:
            self._read[(kind, remote_id)] = self._get(kind, remote_id)
        return self._read[(kind, remote_id)]

    def identities(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind as its list endpoint gives it (names, aliases, ids): enough to
        find one by alias or name, without the reads that complete each."""
        if kind == "Customer":
            return self._customers()
        if kind == "RateCard":
            return self._pages("POST", "/v1/contract-pricing/rate-cards/list", {})
        return self.list(kind)

    def _get(self, kind: str, remote_id: str) -> dict[str, Any] | None:
        try:
            if kind == "Customer":
                return self._customer(self.backend.send("GET", f"/v1/customers/{remote_id}")["data"])
            if kind == "BillableMetric":
                return self.backend.send("GET", f"/v1/billable-metrics/{remote_id}")["data"]
            if kind == "Product":
                return _stored("product", self.backend.send("POST", "/v1/contract-pricing/products/get",
                                                            {"id": remote_id}, repeat=True)["data"])
            if kind == "RateCard":
                return self._rate_card(self.backend.send("POST", "/v1/contract-pricing/rate-cards/get",
                                                         {"id": remote_id}, repeat=True)["data"])
            if kind == "Contract":
                customer_id = self.customer_of(remote_id)
                if customer_id is None:
                    return None
                return self.backend.send("POST", "/v2/contracts/get",
                                         {"customer_id": customer_id, "contract_id": remote_id}, repeat=True)["data"]
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        raise KeyError(kind)

    def list(self, kind: str) -> list[dict[str, Any]]:
        if kind == "Customer":
            return [self._customer(c) for c in self._customers()]
        if kind == "BillableMetric":
            return self._pages("GET", "/v1/billable-metrics", None, {"include_archived": "true"})
        if kind == "Product":
            return [_stored("product", p) for p in
                    self._pages("POST", "/v1/contract-pricing/products/list", {"archive_filter": "ALL"})]
        if kind == "RateCard":
            return [self._rate_card(c) for c in self._pages("POST", "/v1/contract-pricing/rate-cards/list", {})]
        if kind == "Contract":
            out = []
            for customer in self._customers():
                out += self.contracts_of(customer["id"])
            return out
        if kind == CREDIT_TYPE:  # made in Metronome's UI: the API only lists them
            return self._pages("GET", "/v1/credit-types/list", None)
        raise KeyError(kind)

    def contracts_of(self, customer_id: str) -> list[dict[str, Any]]:
        contracts = self.backend.send("POST", "/v2/contracts/list",
                                      {"customer_id": customer_id, "include_archived": True}, repeat=True)["data"]
        for contract in contracts:
            self.contract_customer[contract["id"]] = customer_id
        return contracts

    def customer_of(self, contract_id: str) -> str | None:
        """The customer of a contract: known from this session, else from the store's record of
        the contract (its customer's key -> id), else by listing every customer's contracts."""
        if contract_id in self.contract_customer:
            return self.contract_customer[contract_id]
        found = self._customer_from_store(contract_id)
        if found is None:
            for customer in self._customers():
                self.contracts_of(customer["id"])
            found = self.contract_customer.get(contract_id)
        if found is not None:
            self.contract_customer[contract_id] = found
        return found

    def _contract_customers_from_store(self) -> None:
        """Every contract's customer id, from the store's records (one query): reads of contracts
        then need no store access, so they can run in threads."""
        from sqlalchemy import text

        customers = {key: remote_id for key, remote_id in self.conn.execute(
            text("SELECT key, remote_id FROM objects WHERE kind = 'Customer'"))}
        for remote_id, body in self.conn.execute(text("SELECT remote_id, body FROM objects WHERE kind = 'Contract'")):
            customer = customers.get(canonical.loads(body).get("customer"))
            if customer is not None:
                self.contract_customer.setdefault(remote_id, customer)

    def _customer_from_store(self, contract_id: str) -> str | None:
        if self.conn is None:
            return None
        from sqlalchemy import text

        row = self.conn.execute(text("SELECT body FROM objects WHERE kind = 'Contract' AND remote_id = :r"),
                                {"r": contract_id}).first()
        if row is None:
            return None
        customer_key = canonical.loads(row[0]).get("customer")
        row = self.conn.execute(text("SELECT remote_id FROM objects WHERE kind = 'Customer' AND key = :k"),
                                {"k": customer_key}).first()
        return None if row is None else row[0]

    def _customers(self) -> list[dict[str, Any]]:
        live = self._pages("GET", "/v1/customers", None, {})
        archived = self._pages("GET", "/v1/customers", None, {"only_archived": "true"})
        seen = {c["id"] for c in live}
        return live + [c for c in archived if c["id"] not in seen]

    def _pages(self, method: str, path: str, body: dict[str, Any] | None,
               params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**(params or {}), "limit": self.backend.page_limit}
            if cursor:
                query["next_page"] = cursor
            page = self.backend.send(method, path, body, params=query, repeat=True)
            out += page.get("data") or []
            cursor = page.get("next_page")
            if not cursor:
                return out

    def _customer(self, customer: dict[str, Any]) -> dict[str, Any]:
        """The customer with its billing provider configurations (the API lists them apart)."""
        configs = self.backend.send("POST", "/v1/getCustomerBillingProviderConfigurations",
                                    {"customer_id": customer["id"], "include_archived": True}, repeat=True)
        return _stored("customer", customer, configurations=configs.get("data") or [])

    def _rate_card(self, card: dict[str, Any]) -> dict[str, Any]:
        """The rate card with every rate it ever had (the API reads them apart: getRateSchedule)."""
        rates = self._pages("POST", "/v1/contract-pricing/rate-cards/getRateSchedule",
                            {"rate_card_id": card["id"], "starting_at": EPOCH})
        return _stored("rate_card", card, rates=rates)


EPOCH = "1970-01-01T00:00:00Z"


def _stored(type_: str, api: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """What the read endpoints return -> the object in the shape the readers read (one inverse,
    kept beside the shapes the emulator serves)."""
    from ...emulator.api_shapes import stored_shape

    return stored_shape(type_, api, **parts)
