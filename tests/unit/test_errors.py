"""Errors are classes: each refusal hubgate makes from another library's (the
framework's HTTP errors, scim2-models' SCIM exceptions) is a named subclass with
the same status, code and scimType, never a root error whose status is patched."""

from __future__ import annotations

import pytest
import scim2_models as scim2

from hubgate.errors import HubgateError, ServiceUnavailable
from hubgate.scim import errors as scim_errors
from hubgate.scim.documents import scim_error
from hubgate.web.errors import _HTTP_ERRORS

# What scim2-models itself raises while validating and patching.
RAISED = (
    scim2.InvalidFilterException,
    scim2.InvalidPathException,
    scim2.PathNotFoundException,
    scim2.InvalidValueException,
    scim2.MutabilityException,
    scim2.NoTargetException,
    scim2.UniquenessException,
    scim2.NotFoundException,
    scim2.PreconditionFailedException,
)


@pytest.mark.parametrize("exception", RAISED, ids=lambda e: e.__name__)
def test_a_scim2_refusal_keeps_its_status_and_scim_type(
    exception: type[scim2.SCIMException],
) -> None:
    error = scim_error(exception(detail="why"))
    assert type(error) is not scim_errors.ScimError
    assert (error.status, error.scim_type or "") == (exception.status, exception.scim_type)
    assert error.message == "why"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_request"),
        (401, "sign_in_required"),
        (403, "forbidden"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (413, "body_too_large"),
        (415, "unsupported_media_type"),
    ],
)
def test_the_frameworks_refusals_are_named(status: int, code: str) -> None:
    error = _HTTP_ERRORS[status]("detail")
    assert (error.status, error.code, error.message) == (status, code, "detail")


def test_a_busy_database_is_a_503() -> None:
    error: HubgateError = ServiceUnavailable()
    assert (error.status, error.code) == (503, "unavailable")
    assert error.message == "The service is busy; try again."
