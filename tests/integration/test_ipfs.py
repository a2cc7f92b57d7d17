"""The IPFS client against a real offline js-ipfs node: CIDs, limits, errors, node lifecycle."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from multiformats import CID, multihash
from protocol_support.outage import garbling_node, silent_node
from protocol_support.unixfs import CHUNK_SIZE, balanced_file_cid, file_root_block, raw_leaf_cid

from marketplace.errors import CommitmentMismatchError, IpfsError, ToolchainError
from marketplace.ipfs import IpfsClient, LocalIpfsNode, normalize_cid
from marketplace.ipfs.client import IpfsUnavailableError

pytestmark = pytest.mark.integration

DESIGN_35_BYTE_CID = "bafkreicqitnkmeeay6cfgvkw3nd6y753j6dhbg2mziwx2xy3tgddpmpkaq"
ABSENT_CID = str(CID("base32", 1, "raw", multihash.digest(b"never added to any node", "sha2-256")))


@pytest.fixture(scope="module")
def node() -> Iterator[LocalIpfsNode]:
    with LocalIpfsNode() as running:
        yield running


@pytest.fixture
def ipfs(node: LocalIpfsNode) -> Iterator[IpfsClient]:
    with node.client() as client:
        yield client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- CIDs ----------------------------------------------------------------------------------------


def test_normalize_cid_turns_base58_forms_into_base32_v1() -> None:
    empty_dir_v0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    empty_dir_v1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    assert normalize_cid(empty_dir_v0) == empty_dir_v1
    assert normalize_cid(empty_dir_v1) == empty_dir_v1
    base58_v1 = str(CID.decode(DESIGN_35_BYTE_CID).set(base="base58btc"))
    assert base58_v1.startswith("z")
    assert normalize_cid(f" {base58_v1}\n") == DESIGN_35_BYTE_CID
    with pytest.raises(IpfsError, match="not a valid CID"):
        normalize_cid("not-a-cid")


def test_design_reference_cid_is_a_single_raw_sha256_block() -> None:
    reference = CID.decode(DESIGN_35_BYTE_CID)
    assert (reference.version, reference.codec.name, reference.hashfun.name) == (1, "raw", "sha2-256")
    assert len(reference.raw_digest) == 32


@pytest.mark.parametrize("size", [0, 1, 35, 1000, CHUNK_SIZE])
def test_single_chunk_content_gets_its_raw_leaf_cid(ipfs: IpfsClient, size: int) -> None:
    data = (hashlib.sha256(b"fedmarket").digest() * (size // 32 + 1))[:size]
    assert ipfs.add(data) == raw_leaf_cid(data)


def test_35_byte_file_has_the_cid_kubo_gives(ipfs: IpfsClient) -> None:
    data = b"fedmarket: thirty-five bytes here.\n"
    assert len(data) == 35
    cid = ipfs.add(data)
    assert cid == raw_leaf_cid(data)
    assert cid.startswith("bafkrei")  # same form as the Kubo cross-check in DESIGN.md §4


@pytest.mark.parametrize("size", [CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_multi_chunk_content_round_trips_with_the_unixfs_root_cid(ipfs: IpfsClient, size: int) -> None:
    data = os.urandom(size)
    cid = ipfs.add(data)
    assert cid == balanced_file_cid(data)
    assert ipfs.cat(cid, max_bytes=size) == data


def test_cids_the_node_answers_in_base58_normalise_to_what_add_returned(ipfs: IpfsClient, node: LocalIpfsNode) -> None:
    cid = ipfs.add(b"block/stat answers in base58btc")
    answer = httpx.post(f"{node.api_url}/api/v0/block/stat", params={"arg": cid}).json()
    assert answer["Key"] != cid
    assert normalize_cid(answer["Key"]) == cid


# -- add, cat, pin -------------------------------------------------------------------------------


def test_add_then_cat_round_trips(ipfs: IpfsClient) -> None:
    data = b"a model update, sealed to the aggregator"
    cid = ipfs.add(data)
    assert cid.startswith("b")
    assert ipfs.has(cid)
    assert ipfs.cat(cid, max_bytes=len(data)) == data
    assert ipfs.cat(str(CID.decode(cid).set(base="base58btc")), max_bytes=len(data)) == data


def test_client_accepts_the_api_address_as_multiaddr_or_host_port(node: LocalIpfsNode) -> None:
    host_port = node.api_url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    for address in (f"/ip4/{host}/tcp/{port}/http", host_port, node.api_url + "/"):
        with IpfsClient(address) as client:
            assert client.api_url == node.api_url
            assert client.version()


def test_version_names_the_node_software(ipfs: IpfsClient) -> None:
    assert ipfs.version()[0].isdigit()


def test_cat_refuses_content_over_max_bytes(ipfs: IpfsClient) -> None:
    small = os.urandom(10_000)
    small_cid = ipfs.add(small)
    assert ipfs.cat(small_cid, max_bytes=10_000) == small
    with pytest.raises(IpfsError, match="more than the allowed 9999 bytes"):
        ipfs.cat(small_cid, max_bytes=9_999)
    big_cid = ipfs.add(os.urandom(4 * CHUNK_SIZE))
    with pytest.raises(IpfsError, match="more than the allowed"):
        ipfs.cat(big_cid, max_bytes=CHUNK_SIZE)


def test_cat_checks_the_committed_sha256(ipfs: IpfsClient) -> None:
    data = b"weights the chain committed to"
    cid = ipfs.add(data)
    digest = hashlib.sha256(data).digest()
    assert ipfs.cat(cid, max_bytes=100, expected_sha256=digest) == data
    assert ipfs.cat(cid, max_bytes=100, expected_sha256="0x" + digest.hex()) == data
    with pytest.raises(CommitmentMismatchError, match=cid):
        ipfs.cat(cid, max_bytes=100, expected_sha256=hashlib.sha256(b"something else").digest())


def test_absent_cid_fails_within_seconds(ipfs: IpfsClient, node: LocalIpfsNode) -> None:
    started = time.monotonic()
    with pytest.raises(IpfsError, match=f"CID {ABSENT_CID} is not on the IPFS node at {node.api_url}"):
        ipfs.cat(ABSENT_CID, max_bytes=1000)
    assert time.monotonic() - started < 5.0
    assert not ipfs.has(ABSENT_CID, timeout=0.5)
    with pytest.raises(IpfsError, match="is not on the IPFS node"):
        ipfs.pin(ABSENT_CID, timeout=0.5)


def test_pin_keeps_held_content(ipfs: IpfsClient) -> None:
    cid = ipfs.add(b"pin me")
    ipfs.pin(cid)
    assert ipfs.has(cid)


def test_unreachable_node_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with IpfsClient(url) as client, pytest.raises(IpfsError, match=f"{url} is unreachable") as caught:
        client.add(b"nobody listens")
    assert time.monotonic() - started < 2.0
    assert "--ipfs-api" in str(caught.value)


def test_a_file_with_a_block_nobody_holds_is_refused_and_the_node_stays_up(
    ipfs: IpfsClient, node: LocalIpfsNode
) -> None:
    """Its root is on the node, one chunk is nowhere: a `cat` would wait for that chunk, and js-ipfs exits when
    such a wait is cut off, so the client finds the hole first and refuses the file within its lookup time."""
    chunks = [os.urandom(CHUNK_SIZE), b"a chunk nobody stores" * 8]
    ipfs.add(chunks[0])  # the first chunk is held: only the second is missing
    root = file_root_block(chunks)
    answer = httpx.post(f"{node.api_url}/api/v0/block/put", params={"cid-codec": "dag-pb", "mhtype": "sha2-256"},
                        files={"file": ("root", root)})  # fmt: skip
    cid = normalize_cid(answer.json()["Key"])
    with IpfsClient(node.api_url, lookup_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(IpfsError, match=f"a block of CID {cid} is not on the IPFS node") as caught:
            client.cat(cid, 2 * CHUNK_SIZE)
        assert not isinstance(caught.value, IpfsUnavailableError)  # the content's fault, not the node's
        assert time.monotonic() - started < 5.0
    assert node.is_running() and ipfs.version()
    assert ipfs.cat(ipfs.add(b"still serving"), 100) == b"still serving"


def test_a_node_that_never_answers_is_unavailable_not_missing_the_cid(ipfs: IpfsClient) -> None:
    """A stalled node says nothing about the content: `has` must not answer False, `cat` must not blame the CID."""
    cid = ipfs.add(b"held by the working node")
    with silent_node() as stalled:  # accepts connections, never answers
        with pytest.raises(IpfsUnavailableError, match=f"{stalled.api_url} did not answer block/stat in time"):
            stalled.has(cid)
        with pytest.raises(IpfsUnavailableError, match="did not answer"):
            stalled.cat(cid, 100)
    with IpfsClient(f"http://127.0.0.1:{closed_port()}") as gone, pytest.raises(IpfsUnavailableError):
        gone.has(cid)


def test_a_node_that_answers_garbage_is_unavailable_not_the_uploaders_fault(ipfs: IpfsClient) -> None:
    """A refs answer that is not JSON says the node is broken, not the content: the round waits, nobody is refused."""
    cid = ipfs.add(b"held by the working node")
    with garbling_node() as broken, pytest.raises(IpfsUnavailableError, match="answered refs with '<html>oops'"):
        broken.cat(cid, 100)


# -- node lifecycle ------------------------------------------------------------------------------


def test_second_node_runs_beside_the_first_and_stop_ends_it(node: LocalIpfsNode, ipfs: IpfsClient) -> None:
    other = LocalIpfsNode().start()
    pid, repo_dir, url = other.pid, other.repo_dir, other.api_url
    assert pid is not None and repo_dir is not None
    assert other.startup_seconds is not None and other.startup_seconds < 10.0
    try:
        assert url != node.api_url
        with other.client() as other_client:
            cid = other_client.add(b"only on the second node")
        assert not ipfs.has(cid, timeout=0.5)
    finally:
        other.stop()
    assert not process_exists(pid)
    assert not repo_dir.exists()
    assert not other.is_running()
    with IpfsClient(url) as gone, pytest.raises(IpfsError, match="unreachable"):
        gone.version()
    assert ipfs.version()


def test_kept_repo_survives_a_restart_and_a_crash(tmp_path: Path) -> None:
    repo_dir = tmp_path / "ipfs"
    with LocalIpfsNode(repo_dir) as first, first.client() as client:
        cid = client.add(b"still here after a restart")
        pid = first.pid
        with pytest.raises(ToolchainError, match=f"pid {pid}"):
            LocalIpfsNode(repo_dir).start()
    assert pid is not None and not process_exists(pid)
    assert (repo_dir / "daemon.log").exists()

    crashing = LocalIpfsNode(repo_dir).start()
    assert crashing.pid is not None
    os.kill(crashing.pid, signal.SIGKILL)
    crashing.stop()
    with LocalIpfsNode(repo_dir) as restarted, restarted.client() as client:
        assert client.cat(cid, max_bytes=100) == b"still here after a restart"


def test_daemon_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    failing = tmp_path / "failing-daemon"
    failing.write_text("#!/bin/sh\necho 'cannot open repo: lock held' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(ToolchainError, match=r"exited with code 3(.|\n)*lock held"):
        LocalIpfsNode(jsipfs_bin=failing).start()


def test_missing_js_ipfs_is_a_toolchain_error(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="npm install"):
        LocalIpfsNode(jsipfs_bin=tmp_path / "no-jsipfs").start()
    with pytest.raises(ToolchainError, match="not running"):
        _ = LocalIpfsNode().api_url
