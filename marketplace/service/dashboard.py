"""The dashboard: server-rendered pages (Jinja2) over the same views as the API, plus an IPFS link proxy.

Charts are drawn as inline SVG by static/charts.js from /api/tasks/{id}/series, which the task page polls
while the task runs; nothing is loaded from outside the app (the browser may have no internet).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from marketplace.chain.marketplace_contract import REPUTATION_ONE
from marketplace.errors import FedmarketError
from marketplace.ipfs import normalize_cid
from marketplace.service import views
from marketplace.service.api import AddressPath, RoundNo, TaskId, _round, _task, database, state
from marketplace.service.state import ServiceState
from marketplace.text import DUST_WEI, duration_text, protocol_text, rules_text, utc_text

HERE = FsPath(__file__).parent
MAX_PROXY_BYTES = 16 << 20
WEI = 10**18

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
Db = Annotated[Session, Depends(database)]
State = Annotated[ServiceState, Depends(state)]


def _amount(value: Any, token: str = "0x" + "00" * 20) -> str:
    """Base units as a readable number; ETH amounts in ether."""
    if value is None:
        return "–"
    number = int(value)
    if int(token, 16) == 0:
        if 0 < number < DUST_WEI:  # dust (a payout split's rounding) would read "0 ETH"
            return f"{number:,} wei"
        whole, frac = divmod(number, WEI)
        decimals = f"{frac:018d}"[:6].rstrip("0")
        return f"{whole:,}{'.' + decimals if decimals else ''} ETH"
    return f"{number:,}"


def _short(value: str | None, keep: int = 6) -> str:
    if not value:
        return "–"
    return value if len(value) <= 2 * keep + 3 else f"{value[: keep + 2]}…{value[-keep:]}"


def _time(timestamp: int | None) -> str:
    if not timestamp:
        return "–"
    return utc_text(timestamp)


def _reputation(value: Any) -> float:
    """A posted reputation as the fraction it stands for (REPUTATION_ONE = 1)."""
    return int(value) / REPUTATION_ONE


def _share(values: list[Any], index: int) -> str:
    """Data owner `index`'s part of the round's positive contributions, which is how the round's pool splits."""
    positive = [max(int(v), 0) for v in values]
    total = sum(positive)
    return f"{100 * positive[index] / total:.1f}%" if total else "–"


templates.env.filters.update(amount=_amount, short=_short, time=_time, reputation=_reputation, share=_share,
                             duration=duration_text, rules=rules_text, protocol=protocol_text)  # fmt: skip


@router.get("/", response_class=HTMLResponse)
def task_list(request: Request, db: Db, status: str | None = None) -> HTMLResponse:
    chosen = status if status in views.STATUS_GROUPS else None
    page = views.list_tasks(db, chosen, None, None, 200, 0)
    return templates.TemplateResponse(
        request, "tasks.html", {"page": page, "status": chosen, "statuses": list(views.STATUS_GROUPS)}
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: TaskId, db: Db, st: State) -> HTMLResponse:
    task = _task(db, task_id)
    rows = views.round_rows(db, task_id)
    views.fill_accuracy(db, task, rows, st.content)
    context = {
        "task": views.task_detail(db, task, st.content),
        "rounds": [views.round_view(task, r) for r in rows],
        "refresh_ms": st.live_refresh_ms,
    }
    return templates.TemplateResponse(request, "task.html", context)


@router.get("/tasks/{task_id}/rounds/{round_no}", response_class=HTMLResponse)
def round_page(request: Request, task_id: TaskId, round_no: RoundNo, db: Db, st: State) -> HTMLResponse:
    task = _task(db, task_id)
    row = _round(db, task_id, round_no)
    views.fill_accuracy(db, task, [row], st.content)
    members = {m.index: m.address for m in views.members(db, task_id)}
    context = {"task": views.summary(task), "round": views.round_detail(db, task, row), "members": members}
    return templates.TemplateResponse(request, "round.html", context)


@router.get("/accounts/{address}", response_class=HTMLResponse)
def account_page(request: Request, address: AddressPath, db: Db) -> HTMLResponse:
    return templates.TemplateResponse(request, "account.html", {"account": views.account(db, address, 100)})


@router.get("/ipfs/{cid}")
def ipfs_proxy(cid: str, db: Db, st: State) -> Response:
    """Serve a CID named on chain from the configured node (bounded), so CID links work without a gateway."""
    try:
        cid = normalize_cid(cid)
    except FedmarketError as exc:
        raise HTTPException(400, str(exc)) from None
    if not views.names_cid(db, cid):
        raise HTTPException(404, f"{cid} is not named by any indexed task, round, update or dispute")
    if not st.content.enabled:
        raise HTTPException(503, "no IPFS node configured for this service")
    try:
        data = st.content.fetch(cid, MAX_PROXY_BYTES)
    except FedmarketError as exc:
        raise HTTPException(404, f"{cid} is not available: {exc}") from None
    kind = "application/json" if data[:1] == b"{" else "application/octet-stream"
    headers = {"Content-Disposition": f'inline; filename="{cid}"', "Cache-Control": "public, max-age=31536000"}
    return Response(data, media_type=kind, headers=headers)
