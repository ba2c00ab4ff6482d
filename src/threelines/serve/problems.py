"""A refused request: the HTTP status and one line saying why and what to do.

The service's modules raise :class:`ServiceError`; the HTTP layer
(:func:`threelines.serve.answers.refusal`) turns it into a problem+json answer.
"""

from __future__ import annotations

from typing import Any

from threelines import limits
from threelines.errors import ThreelinesError


class ServiceError(ThreelinesError, ValueError):
    """A request the service refuses: the HTTP status and one line saying why and what to do.

    Attributes
    ----------
    status : int
        413 for a stated limit exceeded, 422 for content that cannot be used,
        404 for a name that does not exist.
    title : str
        A short, fixed summary of the kind of problem.
    """

    def __init__(self, status: int, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def limit_error(what: str, value: float, name: str, fix: str) -> ServiceError:
    """A 413 naming the limit (``name``, in :mod:`threelines.limits`), its value and the setting or fix."""
    limit = getattr(limits, name)  # read when refused: a service started with other limits has set them there
    return ServiceError(
        413, "Limit exceeded", f"{what}: {value:,.0f} is more than the service's limit of {limit:,.0f} ({name}); {fix}"
    )


def refuse_over(what: str, value: float, name: str, fix: str) -> None:
    """Raise :func:`limit_error` when ``value`` is more than the limit ``name`` of :mod:`threelines.limits`."""
    if value > getattr(limits, name):
        raise limit_error(what, value, name, fix)
