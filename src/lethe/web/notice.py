"""The public transparency notices (no login): ``/notice`` lists the sources, ``/notice/{name}`` is
one source's notice, generated from its declaration (GDPR Arts. 13 and 14, AI Act Art. 26(11)). The
page shows what ``GET /api/notices/{name}`` answers: facts about the processing, never a count or a
face."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from lethe import views
from lethe.errors import NotFoundError
from lethe.web.common import PageNotFound, State, current_viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/notice", response_class=HTMLResponse)
async def notices(request: Request, state: State) -> Response:
    """Every source, each linking to its notice."""
    return render(
        request,
        "notices.html",
        await current_viewer(request),
        notices=await run_in_threadpool(views.notice_index, state.engine),
        title="How your photos are processed",
    )


@router.get("/notice/{name}", response_class=HTMLResponse)
async def notice(
    request: Request, state: State, name: Annotated[str, Path(min_length=1, max_length=200)]
) -> Response:
    """One source's transparency notice."""
    viewer = await current_viewer(request)
    try:
        facts = await run_in_threadpool(views.source_notice, state.engine, name)
    except NotFoundError:
        raise PageNotFound(viewer, f"There is no source named {name!r}.") from None
    return render(request, "notice.html", viewer, n=facts, title=f"Notice: {facts['source']}")
