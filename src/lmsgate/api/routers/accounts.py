"""Linked accounts: ``/accounts`` as StackOne has it, plus creating and testing accounts.

Every route authenticates the API key and acts only on accounts of the key's project; another
project's account answers 404 exactly like a missing one. No ``x-account-id`` header: the
account is in the path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import container, project_id
from lmsgate.api.params import MAX_OFFSET, common_params
from lmsgate.api.routing import ERROR_RESPONSES
from lmsgate.bootstrap import Container
from lmsgate.errors import BadRequest
from lmsgate.schema.accounts import (
    AccountCheckResult,
    LinkedAccount,
    LinkedAccountCreate,
    PatchAccountExternalDto,
)
from lmsgate.schema.types import format_datetime
from lmsgate.settings import MAX_PAGE_SIZE
from lmsgate.store.tenancy import Account

router = APIRouter(tags=["Accounts"], responses=ERROR_RESPONSES)
AccountId = Path(description="The linked account's id.")
STATUSES = ("active", "inactive", "error")


def account_to_wire(c: Container, account: Account) -> dict[str, Any]:
    """StackOne's LinkedAccount. Credentials are never returned, whatever the account holds."""
    return {
        "id": account.id,
        "provider": account.provider,
        "provider_name": c.accounts.provider_name(account),
        "status": account.status,
        "status_reasons": None,
        "origin_owner_id": account.origin_owner_id or "",
        "origin_owner_name": account.origin_owner_name or "",
        "origin_username": account.origin_username,
        "credentials": None,
        "setup_information": dict(account.config),
        "label": account.label,
        "created_at": format_datetime(account.created_at) if account.created_at else None,
        "updated_at": format_datetime(account.updated_at) if account.updated_at else None,
    }


def _many(request: Request, *names: str) -> list[str]:
    """A list parameter, sent repeated (``a=1&a=2``), comma-separated, or as ``a[]=1``."""
    values: list[str] = []
    for name in names:
        for raw in request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]"):
            values += [v.strip() for v in raw.split(",") if v.strip()]
    return values


def _positive(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else 0
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" to {maximum}" if maximum else ""
        raise BadRequest(f"{name}: must be a whole number from 1{limit}, got {text!r}")
    return value


@router.get(
    "/accounts", response_model=list[LinkedAccount], operation_id="lmsgate_list_linked_accounts",
    summary="List linked accounts",
    description="The project's linked accounts, oldest first. Filters: `provider`/`providers`, "
    "`origin_owner_id`/`origin_owner_ids`, `account_ids` and `status` (lists may repeat or be "
    "comma-separated). Paged by `page` (from 1) and `page_size` (25 by default).",
)
async def list_accounts(request: Request, project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    statuses = _many(request, "status")
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise BadRequest(f"status: must be one of {', '.join(STATUSES)}, got {bad[0]!r}")
    accounts = c.accounts.list(
        project,
        page=_positive(request, "page", 1, MAX_OFFSET // MAX_PAGE_SIZE),
        page_size=_positive(request, "page_size", 25, MAX_PAGE_SIZE),
        providers=_many(request, "provider", "providers"),
        origin_owner_ids=_many(request, "origin_owner_id", "origin_owner_ids"),
        account_ids=_many(request, "account_ids"),
        statuses=statuses,
    )
    return responses.JSONResponse([account_to_wire(c, a) for a in accounts])


@router.post(
    "/accounts", status_code=201, response_model=LinkedAccount, operation_id="lmsgate_create_account",
    summary="Link an account",
    description="Links a customer's account at a provider. `setup_information` and `credentials` "
    "are checked against the connector's declared fields (see `docs/connectors.md`); credentials "
    "are encrypted at rest and never returned.",
)
async def create_account(body: LinkedAccountCreate, request: Request,
                         project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    account = await c.accounts.create(project, body)
    return responses.JSONResponse(account_to_wire(c, account), status_code=201)


@router.get("/accounts/{id}", response_model=LinkedAccount, operation_id="lmsgate_get_account",
            summary="Get a linked account")
async def get_account(request: Request, id: str = AccountId,
                      project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    return responses.JSONResponse(account_to_wire(c, c.accounts.get(project, id)))


@router.patch(
    "/accounts/{id}", response_model=LinkedAccount, operation_id="lmsgate_update_account",
    summary="Change a linked account",
    description="Only the fields sent change. `status: inactive` disables the account: its LMS "
    "calls then answer 412 until it is `active` again.",
)
async def update_account(body: PatchAccountExternalDto, request: Request, id: str = AccountId,
                         project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    return responses.JSONResponse(account_to_wire(c, await c.accounts.update(project, id, body)))


@router.delete(
    "/accounts/{id}", response_model=LinkedAccount, operation_id="lmsgate_delete_account",
    summary="Delete a linked account",
    description="Deletes the account and its credentials; for the embedded LMS (`local`), every "
    "record stored under it too. Answers with the account as it was.",
)
async def delete_account(request: Request, id: str = AccountId,
                         project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    return responses.JSONResponse(account_to_wire(c, c.accounts.delete(project, id)))


@router.post(
    "/accounts/{id}/test", response_model=AccountCheckResult, operation_id="lmsgate_test_account",
    summary="Check a linked account's credentials",
    description="Makes one cheap, real call to the provider with the account's credentials. "
    "`raw=true` adds the provider call (secrets masked).",
)
async def test_account(request: Request, id: str = AccountId,
                       project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    want_raw = common_params(request.query_params).raw
    checked, ctx = await c.accounts.test(project, id, want_raw)
    body: dict[str, Any] = {
        "statusCode": 200, "message": "The provider accepted the linked account's credentials.",
        "timestamp": responses.now_iso(), "data": {"provider": ctx.account.provider, "checked": checked},
    }
    if want_raw:
        body["raw"] = ctx.raw
    return responses.JSONResponse(body)
