"""The service's answers and refusals as HTTP responses: problem+json, the time limit, a screening's response.

Every refusal is an RFC 9457 ``application/problem+json`` answer (type,
title, detail, status); a service error keeps its own status, any other
error of the reader's input is a 422.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.types import Scope

from threelines.errors import ThreelinesError
from threelines.serve.problems import ServiceError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def refusal(exc: ThreelinesError) -> JSONResponse:
    """The problem+json answer to a request the service refuses (a 422 for the reader's own errors)."""
    if isinstance(exc, ServiceError):
        return problem(exc.status, exc.title, exc.detail, **exc.extra)
    return problem(422, "Unusable input", str(exc))


async def run_within(limit: float, func, *args, **kwargs):
    """Run blocking work in a thread, within ``limit`` seconds (503 when it is passed)."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await asyncio.wait_for(run_in_threadpool(func, *args, **kwargs), timeout=limit)
    except TimeoutError:
        raise ServiceError(
            503,
            "Time limit",
            f"the request took more than the service's limit of {limit:g} s "
            "(REQUEST_TIME_LIMIT_S); send fewer or simpler footprints",
        ) from None


def answer_response(scope: Scope, answer) -> Response:
    """An answer of the service as its response; its project count kept for the log line."""
    scope.setdefault("state", {})["projects"] = answer.projects
    if answer.status != 200:  # some projects refused: the screened ones go with the problems, as the CLI does
        text = answer.body if isinstance(answer.body, str) else answer.body.decode()
        results = json.loads(text) if answer.media == "application/json" else text
        results = [results] if isinstance(results, dict) else results  # always the list of screened records
        return problem(
            answer.status,
            "Some projects not screened",
            "; ".join(answer.extra_problems),
            problems=answer.extra_problems,
            results=results,
        )
    return Response(answer.body, media_type=answer.media)
