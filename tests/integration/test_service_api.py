"""The service's REST API over an index of a real task run on Anvil and IPFS (see tests/browser/world.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from browser.world import (
    A_OWNERS,
    A_ROUNDS,
    B_OWNERS,
    B_REMOVED_INDEX,
    B_REMOVED_ROUND,
    B_ROUNDS,
    World,
    build_world,
    wait_indexed,
)
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from protocol_support.waiting import wait_for
from web3 import Web3

from marketplace.ipfs import IpfsClient, LocalIpfsNode
from marketplace.service.app import Service
from marketplace.service.server import running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(w3: Web3, accounts: list[LocalAccount], ipfs_node: LocalIpfsNode) -> World:
    return build_world(w3, accounts, ipfs_node.api_url)


@pytest.fixture(scope="module")
def api(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("service") / "index.db"
    with running_service(world.settings(f"sqlite:///{db}", cors_origins=("http://localhost:3000",))) as running:
        wait_indexed(running.url, world.last_block)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield client


def test_health_and_openapi(api: httpx.Client, world: World) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["indexed_block"] >= world.last_block
    assert health["contract"].lower() == world.marketplace.lower() and health["ipfs"] is True
    spec = api.get("/openapi.json").json()
    assert {"/api/tasks", "/api/tasks/{task_id}/rounds", "/api/accounts/{address}"} <= set(spec["paths"])
    assert api.get("/docs").status_code == 200


def test_task_list_names_each_task_once_its_spec_is_read(api: httpx.Client, world: World) -> None:
    # the service's spec thread reads each new task's spec from IPFS; the list takes the name from that cache
    wait_for(lambda: all(t["name"] for t in api.get("/api/tasks").json()["items"]), 30, "task names")
    assert [t["name"] for t in api.get("/api/tasks").json()["items"]] == ["digits-service-test"] * 2
    assert "digits-service-test" in api.get("/").text


def test_task_list_filters_and_pagination(api: httpx.Client, world: World) -> None:
    page = api.get("/api/tasks").json()
    assert [t["task_id"] for t in page["items"]] == [world.task_b, world.task_a] and page["total"] == 2
    assert api.get("/api/tasks", params={"status": "closed"}).json()["total"] == 2
    assert api.get("/api/tasks", params={"status": "active"}).json()["total"] == 0
    assert api.get("/api/tasks", params={"token": "eth"}).json()["total"] == 2
    assert api.get("/api/tasks", params={"token": "0x" + "11" * 20}).json()["total"] == 0
    rich = api.get("/api/tasks", params={"min_reward": str(10**18)}).json()
    assert [t["task_id"] for t in rich["items"]] == [world.task_a]  # 1 ETH vs 0.9 ETH: a numeric comparison
    second = api.get("/api/tasks", params={"limit": 1, "offset": 1}).json()
    assert [t["task_id"] for t in second["items"]] == [world.task_a] and second["limit"] == 1


def test_task_detail_has_terms_spec_and_members(api: httpx.Client, world: World) -> None:
    task = api.get(f"/api/tasks/{world.task_a}").json()
    assert task["status"] == "finished" and task["rounds"] == A_ROUNDS and task["reward"] == str(10**18)
    assert task["spec"]["name"] == "digits-service-test" and task["spec_error"] is None
    assert task["periods"]["submission"] == 3600 and task["rules"]["payout_policy"] == "proportional"
    assert len(task["members"]) == len(A_OWNERS)
    assert all(int(m["earned"]) > 0 and m["withdrawn"] == str(int(m["earned"]) + int(m["stake"]))
               for m in task["members"])  # fmt: skip


def test_rounds_report_accuracy_gas_and_payouts(api: httpx.Client, world: World) -> None:
    rounds = api.get(f"/api/tasks/{world.task_a}/rounds").json()
    assert [r["round"] for r in rounds] == list(range(1, A_ROUNDS + 1))
    for r in rounds:
        assert r["status"] == "settled" and r["submissions"] == len(A_OWNERS)
        assert 0.3 < r["accuracy"] <= 1.0, r["accuracy_error"]
        assert r["gas"]["finalize"] > 50_000 and r["gas"]["settle"] > 50_000
        assert r["proof"] == {"mode": "unverified", "verifier": "0x" + "00" * 20, "proof_bytes": 0,
                              "status": "not-required"}  # fmt: skip
        assert len(r["weights"]) == len(r["reputations"]) == len(r["contributions"]) == len(A_OWNERS)
    assert rounds[-1]["accuracy"] >= rounds[0]["accuracy"] - 0.05
    detail = api.get(f"/api/tasks/{world.task_a}/rounds/1").json()
    assert len(detail["submissions_list"]) == len(A_OWNERS)
    credited = sum(int(p["amount"]) for p in detail["payouts"] if p["kind"] == "reward")
    assert credited == int(detail["credited"]) and credited + int(detail["to_owner"]) == int(detail["pool"])


def test_removal_slash_and_series(api: httpx.Client, world: World) -> None:
    rounds = api.get(f"/api/tasks/{world.task_b}/rounds").json()
    assert [r["removed"] for r in rounds] == [[], [B_REMOVED_INDEX], []]
    assert [r["submissions"] for r in rounds] == [4, 4, 3]
    members = api.get(f"/api/tasks/{world.task_b}/members").json()
    removed = members[B_REMOVED_INDEX]
    assert removed["address"] == world.removed_address and removed["removed_round"] == B_REMOVED_ROUND
    assert int(removed["slashed"]) == int(removed["stake"]) // 2
    slashes = [p for p in api.get(f"/api/tasks/{world.task_b}/rounds/2").json()["payouts"] if p["kind"] == "slash"]
    expected = [(world.removed_address, int(removed["stake"]) // 2)]
    assert [(p["data_owner"], int(p["amount"])) for p in slashes] == expected
    series = api.get(f"/api/tasks/{world.task_b}/series").json()
    assert series["rounds"] == list(range(1, B_ROUNDS + 1)) and len(series["owners"]) == len(B_OWNERS)
    assert series["removals"] == [{"round": B_REMOVED_ROUND, "index": B_REMOVED_INDEX,
                                   "address": world.removed_address}]  # fmt: skip
    assert series["owners"][0]["reputation"] == [0.375, 0.375, 0.375]  # as posted, in units of 2^-20
    assert series["owners"][1]["reputation"] == [0.3125, 0.375, 0.4375]
    assert all(a is not None for a in series["accuracy"])  # B reuses A's real models: accuracy is computed
    payouts = [int(o["payout"][-1]) for o in series["owners"]]
    assert payouts[B_REMOVED_INDEX] < min(p for i, p in enumerate(payouts) if i != B_REMOVED_INDEX)


def test_account_view_sums_earnings_and_history(api: httpx.Client, world: World) -> None:
    account = api.get(f"/api/accounts/{world.removed_address}").json()
    eth = "0x" + "00" * 20
    assert [m["task_id"] for m in account["memberships"]] == [world.task_b]
    assert int(account["slashed"][eth]) > 0
    assert int(account["withdrawn"][eth]) == int(account["earned"][eth]) + int(account["staked"][eth]) - int(
        account["slashed"][eth]
    )
    names = {e["name"] for e in account["history"]}
    assert {"Joined", "UpdateSubmitted", "Slashed", "Withdrawn"} <= names
    owner = api.get(f"/api/tasks/{world.task_a}").json()["owner"]
    assert api.get(f"/api/accounts/{owner}").json()["owned_tasks"] == [world.task_a, world.task_b]
    withdrawals = api.get("/api/withdrawals", params={"task_id": world.task_b}).json()
    assert len(withdrawals) >= len(B_OWNERS)
    events = api.get("/api/events", params={"task_id": world.task_b, "name": "RoundFinalized"}).json()
    assert events["total"] == B_ROUNDS


def test_bad_input_gets_clear_4xx(api: httpx.Client, world: World) -> None:
    missing = api.get("/api/tasks/999999")
    assert missing.status_code == 404 and "task 999999 not found" in missing.json()["detail"]
    assert api.get(f"/api/tasks/{world.task_a}/rounds/99").status_code == 404
    for path, params in [
        ("/api/tasks/-1", {}), ("/api/tasks/abc", {}), ("/api/tasks", {"status": "sleeping"}),
        ("/api/tasks", {"limit": 0}), ("/api/tasks", {"min_reward": -5}), ("/api/tasks", {"token": "0x12"}),
        ("/api/accounts/0xnothex", {}), (f"/api/tasks/{world.task_a}/rounds/0", {}),
    ]:  # fmt: skip
        response = api.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["detail"][0]["msg"]
    unknown = api.get("/api/events", params={"name": "Nope"})
    assert unknown.status_code == 400 and "unknown event" in unknown.json()["detail"]


def test_cors_and_pages(api: httpx.Client, world: World) -> None:
    preflight = api.options("/api/tasks", headers={"Origin": "http://localhost:3000",
                                                   "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-origin" not in api.get("/api/tasks", headers={"Origin": "http://evil.test"}).headers
    pages = ("/", f"/tasks/{world.task_b}", f"/tasks/{world.task_b}/rounds/2", f"/accounts/{world.removed_address}")
    for path in pages:
        page = api.get(path)
        assert page.status_code == 200 and "<html" in page.text, path
    account_page = api.get(f"/accounts/{world.removed_address}").text  # each event with the money it moved
    assert re.search(r"<td>Joined</td><td><a [^>]+>#\d+</a></td><td>–</td><td>[\d.]+ ETH</td>", account_page)
    task_page = api.get(f"/tasks/{world.task_a}").text  # the spec's rules, read from IPFS
    assert "<dt>Protocol</dt><dd>none: FedAvg rounds without commitments" in task_page
    round_page = api.get(f"/tasks/{world.task_b}/rounds/1").text  # owner 0 posted 0.375 (in units of 2^-20)
    assert "<td>0.3750</td>" in round_page and "%</span>" in round_page
    spec = api.get(f"/ipfs/{world.spec_cid}")
    assert spec.status_code == 200 and b"digits-service-test" in spec.content
    assert api.get("/ipfs/not-a-cid").status_code == 400
    model_cid = api.get(f"/api/tasks/{world.task_b}").json()["model_cid"]
    assert api.get(f"/ipfs/{model_cid}").status_code == 200
    # held by the node, named by no event: the proxy is no open gateway
    stray = IpfsClient(world.ipfs_api).add(b"not part of any task")
    refused = api.get(f"/ipfs/{stray}")
    assert refused.status_code == 404 and "not named by any indexed" in refused.json()["detail"]


@contextmanager
def indexed_app(world: World, db: Path, **overrides: object) -> Iterator[tuple[Service, TestClient]]:
    """A service over its own index of the world, caught up once, with no indexer thread: the test drives it."""
    service = Service.build(world.settings(f"sqlite:///{db}", **overrides))
    service.indexer.sync()
    try:
        with TestClient(service.app) as client:
            yield service, client
    finally:
        service.stop()


def test_app_without_ipfs_still_answers(world: World, tmp_path: Path) -> None:
    with indexed_app(world, tmp_path / "i.db", ipfs_api=None) as (_, client):
        task = client.get(f"/api/tasks/{world.task_a}").json()
        assert task["spec"] is None and "no IPFS node" in task["spec_error"]
        assert all(r["accuracy"] is None for r in client.get(f"/api/tasks/{world.task_a}/rounds").json())
        assert client.get(f"/ipfs/{world.spec_cid}").status_code == 503


def test_an_ipfs_outage_is_not_cached_as_the_content_missing(world: World, tmp_path: Path) -> None:
    from marketplace.net import free_loopback_port

    dead = f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens: every fetch is refused
    with indexed_app(world, tmp_path / "o.db", ipfs_api=dead) as (service, client):
        task = client.get(f"/api/tasks/{world.task_a}").json()
        assert task["spec"] is None and "unreachable" in task["spec_error"]
        rounds = client.get(f"/api/tasks/{world.task_a}/rounds").json()
        assert all(r["accuracy"] is None and r["accuracy_error"] is None for r in rounds)
        service.app.state.service.content.api_url = world.ipfs_api  # the node answers again
        task = client.get(f"/api/tasks/{world.task_a}").json()
        assert task["spec"]["name"] and task["spec_error"] is None
        assert all(r["accuracy"] is not None for r in client.get(f"/api/tasks/{world.task_a}/rounds").json())


def test_a_spec_the_node_could_not_find_is_looked_up_again(world: World, tmp_path: Path) -> None:
    import threading

    from marketplace.service.db import SpecCache

    with indexed_app(world, tmp_path / "m.db") as (service, client):
        state = service.app.state.service
        with state.sessions() as db:  # as if an earlier lookup had not found it on the network
            db.add(SpecCache(cid=world.spec_cid, document=None, error="not found"))
            db.commit()
        assert client.get(f"/api/tasks/{world.task_a}").json()["spec_error"] == "not found"  # cached
        stop = threading.Event()
        warmer = threading.Thread(target=state.content.warm_specs, args=(state.sessions, stop, 0.1, 0.3), daemon=True)
        warmer.start()
        try:
            wait_for(lambda: client.get(f"/api/tasks/{world.task_a}").json()["spec"] is not None, 30, "the retry")
        finally:
            stop.set()
            warmer.join(timeout=30)


def test_a_spec_fetched_twice_at_once_is_cached_once(world: World, tmp_path: Path) -> None:
    """The spec thread and a page view may look up the same new spec together: the one that stores it second
    must not fail (that ended the spec thread with an IntegrityError)."""
    from sqlalchemy import event

    with indexed_app(world, tmp_path / "r.db") as (service, _):
        state = service.app.state.service
        store = state.content
        raced: list[object] = []

        with state.sessions() as db:

            def another_stores_it_first(_session: object) -> None:  # after this lookup's merge, before its commit
                if not raced:
                    with state.sessions() as other:
                        raced.append(store.spec_document(other, world.spec_cid))

            event.listen(db, "before_commit", another_stores_it_first)
            document, error = store.spec_document(db, world.spec_cid)
        assert error is None and document is not None and document["name"] == "digits-service-test"
        assert raced == [(document, None)]
        with state.sessions() as db:
            assert store.spec_document(db, world.spec_cid) == (document, None)  # one row, read from the cache
