"""A small client for the Kubo RPC API (also spoken by js-ipfs), enough to store and fetch updates.

Every byte fetched is bounded (`max_bytes`), every lookup of a CID is bounded in time, and every block of a
file is found before the file is read, because CIDs come from the chain, i.e. from anyone: a missing, partly
missing or huge object must fail fast and clearly, as the content's fault (IpfsError). When the node itself
does not answer, the error is IpfsUnavailableError, and nothing is known about the content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx
from multiformats import CID

from marketplace.errors import CommitmentMismatchError, IpfsError, ServiceUnavailableError

DEFAULT_API_URL = "http://127.0.0.1:5001"
UNREACHABLE_HINT = "start a local node with `fedmarket`, or check --ipfs-api"

# Options that make `add` give the same CIDv1 as Kubo's `ipfs add --cid-version=1 --raw-leaves`.
ADD_OPTIONS: dict[str, str] = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "cid-base": "base32",
    "pin": "true",
    "wrap-with-directory": "false",
    "progress": "false",
}


MIN_FETCH_RATE = 1 << 20  # bytes/s a node is given to gather a file's blocks before a missing one is blamed


class IpfsUnavailableError(IpfsError, ServiceUnavailableError):
    """The node itself failed us (no answer, a timeout, a broken connection), as opposed to refusing a request or
    lacking a CID: nothing is known about the content, so callers retry instead of judging it."""


class IpfsUnreachableError(IpfsUnavailableError):
    """No IPFS node answers at the configured address."""


def normalize_cid(cid: str) -> str:
    """Return `cid` as a base32 CIDv1 string, the one form stored on chain and compared everywhere."""
    try:
        decoded = CID.decode(cid.strip())
    except (ValueError, KeyError, TypeError) as exc:
        raise IpfsError(f"{cid!r} is not a valid CID: {exc}") from exc
    return str(decoded.set(base="base32", version=1))


def api_url_from_multiaddr(multiaddr: str) -> str:
    """Turn a Kubo-style API address such as `/ip4/127.0.0.1/tcp/5001` into an HTTP URL."""
    parts = multiaddr.strip().strip("/").split("/")
    if len(parts) < 4 or parts[0] not in ("ip4", "ip6", "dns", "dns4", "dns6") or parts[2] != "tcp":
        raise IpfsError(f"{multiaddr!r} is not an IPFS API address", "use http://HOST:PORT or /ip4/HOST/tcp/PORT")
    host = f"[{parts[1]}]" if parts[0] == "ip6" else parts[1]
    scheme = "https" if "https" in parts[4:] else "http"
    return f"{scheme}://{host}:{parts[3]}"


def normalize_api_url(api_url: str) -> str:
    """Accept the API address as a URL, HOST:PORT, or a multiaddr; return a URL without trailing slash."""
    api_url = api_url.strip()
    if api_url.startswith("/"):
        return api_url_from_multiaddr(api_url)
    if "://" not in api_url:
        api_url = f"http://{api_url}"
    return api_url.rstrip("/")


def _error_message(response: httpx.Response) -> str:
    """Extract the node's own error text (Kubo and js-ipfs answer {"Message": ...})."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and "Message" in body:
        return str(body["Message"])
    return response.text.strip()[:300]


def _seconds(value: float) -> str:
    """Render a duration the way the RPC `timeout` option expects it."""
    return f"{max(value, 0.001):.3f}s"


class IpfsClient:
    """Talks to one IPFS node over its RPC API; use it as a context manager to close the connection."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 3.0,
        lookup_timeout: float = 3.0,
    ) -> None:
        """`api_url` is a URL or multiaddr; `timeout` bounds silence during a transfer;
        `lookup_timeout` bounds finding a CID's first block (js-ipfs offline waits that long for a missing one).
        """
        self.api_url = normalize_api_url(api_url)
        self.lookup_timeout = lookup_timeout
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v0/",
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

    def __enter__(self) -> IpfsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------------------------

    @contextmanager
    def _stream(
        self,
        command: str,
        params: dict[str, str],
        *,
        files: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """POST one RPC command; turn transport failures and node errors into IpfsError."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            request = self._http.build_request("POST", command, params=params, files=files, **extra)
            response = self._http.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise IpfsUnreachableError(
                f"the IPFS node at {self.api_url} is unreachable: {exc}", UNREACHABLE_HINT
            ) from exc
        except httpx.TimeoutException as exc:
            raise IpfsUnavailableError(f"the IPFS node at {self.api_url} did not answer {command} in time") from exc
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(f"talking to the IPFS node at {self.api_url} failed: {exc}") from exc
        try:
            if response.status_code != 200:
                response.read()
                reason = _error_message(response)
                raise IpfsError(f"the IPFS node at {self.api_url} refused {command}: {reason}")
            yield response
        except httpx.TimeoutException as exc:
            raise IpfsUnavailableError(f"the IPFS node at {self.api_url} stalled during {command}") from exc
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(f"the IPFS node at {self.api_url} broke off {command}: {exc}") from exc
        finally:
            response.close()

    def _call(self, command: str, params: dict[str, str] | None = None, *, timeout: float | None = None) -> Any:
        """POST a command whose answer is one small JSON document."""
        with self._stream(command, params or {}, timeout=timeout) as response:
            body = response.read()
        try:
            return json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            raise IpfsError(f"the IPFS node at {self.api_url} answered {command} with non-JSON") from exc

    # -- commands ---------------------------------------------------------------------------

    def version(self) -> str:
        """The node's software version as it reports it (js-ipfs 0.66.1 reports its core, '0.18.1')."""
        return str(self._call("version").get("Version", ""))

    def add(self, data: bytes) -> str:
        """Store and pin `data`; return its base32 CIDv1 (raw leaves, as Kubo computes it)."""
        files = {"file": ("blob", data, "application/octet-stream")}
        with self._stream("add", ADD_OPTIONS, files=files) as response:
            lines = [line for line in response.iter_lines() if line.strip()]
        try:
            added = [json.loads(line) for line in lines]
        except json.JSONDecodeError as exc:
            raise IpfsError(f"the IPFS node at {self.api_url} answered add with non-JSON") from exc
        hashes = [entry["Hash"] for entry in added if isinstance(entry, dict) and "Hash" in entry]
        if not hashes:
            raise IpfsError(f"the IPFS node at {self.api_url} did not return a CID for add: {lines[-3:]}")
        return normalize_cid(hashes[-1])

    def has(self, cid: str, timeout: float | None = None) -> bool:
        """Whether the node holds the CID's root block locally; never fetches, answers within `timeout`.

        Kubo honours `offline` and answers at once; js-ipfs ignores it and, offline, needs the timeout.
        """
        limit = self.lookup_timeout if timeout is None else timeout
        params = {"arg": normalize_cid(cid), "offline": "true", "timeout": _seconds(limit)}
        try:
            self._call("block/stat", params, timeout=limit + 2.0)
        except IpfsUnavailableError:
            raise
        except IpfsError:
            return False
        return True

    def require(self, cid: str, timeout: float | None = None) -> None:
        """Make sure the node can serve the CID's root block, fetching it for at most `timeout` seconds."""
        cid = normalize_cid(cid)
        limit = self.lookup_timeout if timeout is None else timeout
        try:
            self._call("block/stat", {"arg": cid, "timeout": _seconds(limit)}, timeout=limit + 2.0)
        except IpfsUnavailableError:
            raise
        except IpfsError as exc:
            raise IpfsError(
                f"CID {cid} is not on the IPFS node at {self.api_url}",
                "the uploader's node must keep it pinned and reachable",
            ) from exc

    def require_every_block(self, cid: str, max_bytes: int, timeout: float | None = None) -> None:
        """Make sure the node holds every block of the file at `cid` before anything reads it whole.

        A `cat` that waits for a block nobody holds stalls, and when it is then cut off js-ipfs 0.66 exits on the
        rejection its block exchange leaves unhandled: one CID with a missing block could stop the node for
        everyone. A recursive `refs` loads the same blocks and reports a missing one as an error line when the
        node's own timeout ends the wait (lookup time plus MIN_FETCH_RATE for the file's size). It also bounds
        the number of blocks (one per KiB of `max_bytes`; the usual chunks are 256 KiB)."""
        cid = normalize_cid(cid)
        self.require(cid, timeout)
        limit = (self.lookup_timeout if timeout is None else timeout) + max_bytes / MIN_FETCH_RATE
        allowed = max(64, max_bytes // 1024 + 2)
        params = {"arg": cid, "recursive": "true", "timeout": _seconds(limit)}
        seen = 0
        with self._stream("refs", params, timeout=limit + 2.0) as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:  # refs lines are made by the node, never by the content: a garbled one is the node's fault
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    entry = None
                if not isinstance(entry, dict):
                    raise IpfsUnavailableError(f"the IPFS node at {self.api_url} answered refs with {line[:80]!r}")
                if entry.get("Err"):
                    raise IpfsError(f"a block of CID {cid} is not on the IPFS node at {self.api_url}: {entry['Err']}",
                                    "the uploader's node must keep the whole file pinned and reachable")  # fmt: skip
                seen += 1
                if seen > allowed:
                    raise IpfsError(f"CID {cid} spans more than {allowed} blocks for at most {max_bytes} bytes")

    def cat(
        self,
        cid: str,
        max_bytes: int,
        *,
        expected_sha256: bytes | str | None = None,
        lookup_timeout: float | None = None,
    ) -> bytes:
        """Fetch the file at `cid`, refusing more than `max_bytes`; optionally check its SHA-256."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        cid = normalize_cid(cid)
        self.require_every_block(cid, max_bytes, lookup_timeout)
        too_big = IpfsError(f"CID {cid} holds more than the allowed {max_bytes} bytes")
        chunks: list[bytes] = []
        received = 0
        # `length` makes the node stop after one byte too many, so an oversized file costs nothing.
        with self._stream("cat", {"arg": cid, "length": str(max_bytes + 1)}) as response:
            announced = _announced_size(response)
            if announced is not None and announced > max_bytes:
                raise too_big
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise too_big
                chunks.append(chunk)
        if announced is not None and received != announced:
            raise IpfsError(f"the IPFS node at {self.api_url} sent {received} of {announced} bytes of {cid}")
        data = b"".join(chunks)
        if expected_sha256 is not None:
            _check_sha256(cid, data, expected_sha256)
        return data

    def pin(self, cid: str, timeout: float | None = None) -> None:
        """Pin the CID so the node keeps it; the node must already hold or be able to fetch it."""
        cid = normalize_cid(cid)
        self.require(cid, timeout)
        self._call("pin/add", {"arg": cid})


def _announced_size(response: httpx.Response) -> int | None:
    """The file size Kubo announces before streaming (js-ipfs does not), used to catch truncation."""
    value = response.headers.get("X-Content-Length", "")
    return int(value) if value.isdigit() else None


def _check_sha256(cid: str, data: bytes, expected: bytes | str) -> None:
    """Compare fetched content with the digest committed elsewhere (e.g. on chain)."""
    want = expected.hex() if isinstance(expected, bytes) else expected.lower().removeprefix("0x")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise CommitmentMismatchError(f"content of CID {cid} has SHA-256 {got}, the commitment says {want}")
