"""The dashboard in headless Chromium: the task page draws its charts from the indexed chain and marks removals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from browser.world import A_OWNERS, A_ROUNDS, B_OWNERS, B_REMOVED_INDEX, B_ROUNDS, World, build_world, wait_indexed
from marketplace.ipfs import LocalIpfsNode
from marketplace.service.server import running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(w3: Web3, accounts: list[LocalAccount], ipfs_node: LocalIpfsNode,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:  # fmt: skip
    world = build_world(w3, accounts, ipfs_node.api_url)
    db = tmp_path_factory.mktemp("dashboard") / "index.db"
    with running_service(world.settings(f"sqlite:///{db}")) as running:
        wait_indexed(running.url, world.last_block)
        yield running.url, world


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    page.close()
    assert not errors, f"the page logged errors: {errors}"


def test_task_page_charts_rounds_owners_and_removal(site: tuple[str, World], page: Any, artifacts_dir: Path) -> None:
    url, world = site
    page.goto(f"{url}/tasks/{world.task_b}")
    page.wait_for_selector("#charts.ready")
    accuracy = page.locator("#chart-accuracy svg .series")
    assert accuracy.count() == 1
    assert accuracy.locator("circle.point").count() == B_ROUNDS
    reputation = page.locator("#chart-reputation svg .series")
    assert reputation.count() == len(B_OWNERS)
    assert all(reputation.nth(i).locator("circle.point").count() == B_ROUNDS for i in range(len(B_OWNERS)))
    marks = page.locator("#chart-reputation svg .removal-mark")
    assert marks.count() == 1 and marks.first.get_attribute("data-round") == "2"
    assert page.locator("#chart-payouts svg .group").count() == len(B_OWNERS)
    assert page.locator("#chart-payouts svg .removed-label").count() == 1
    assert page.locator("#round-table tbody tr").count() == B_ROUNDS
    removed_row = page.locator(f"#member-table tr[data-member='{B_REMOVED_INDEX}']")
    assert "removed in round 2" in removed_row.inner_text()
    assert page.locator("#removed-count").inner_text() == "1"
    shot = artifacts_dir / "dashboard-task-removal.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_real_task_page_and_round_page(site: tuple[str, World], page: Any, artifacts_dir: Path) -> None:
    url, world = site
    page.goto(f"{url}/")
    assert page.locator("#task-table tbody tr").count() == 2
    page.click(f"#task-table tr[data-task='{world.task_a}'] a")
    page.wait_for_selector("#charts.ready")
    assert page.locator("#chart-accuracy svg circle.point").count() == A_ROUNDS
    assert page.locator("#chart-reputation svg .series").count() == len(A_OWNERS)
    assert page.locator("#chart-reputation svg .removal-mark").count() == 0
    page.screenshot(path=str(artifacts_dir / "dashboard-task-real.png"), full_page=True)
    page.click("#round-table tr[data-round='1'] a")
    page.wait_for_selector("#proof-status")
    assert page.locator("#proof-status").inner_text() == "not-required"
    cids = page.locator("a.cid")
    assert cids.count() >= 2 + len(A_OWNERS)
    href = cids.first.get_attribute("href")
    assert href and href.startswith("/ipfs/bafk")
    response = page.request.get(f"{url}{href}")
    assert response.status == 200 and len(response.body()) > 100
    shot = artifacts_dir / "dashboard-round.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
