"""First-run setup of the embedded default: a project, an API key and a ``local`` account."""

from __future__ import annotations

from dataclasses import dataclass

from lmsgate.bootstrap import Container
from lmsgate.store.db import one_process_at_a_time
from lmsgate.store.tenancy import check_key_secret


@dataclass(frozen=True)
class FirstRun:
    project_id: str
    account_id: str
    new_api_key: str | None
    """The key, when one was created now and must be shown once; None if it already existed."""
    created: bool


def ensure_first_run(c: Container) -> FirstRun:
    """Create what a fresh install needs, honouring ``LMSGATE_API_KEY`` / ``LMSGATE_ACCOUNT_ID``.

    Safe to run at every start: existing projects, keys and accounts are left alone. Processes
    started together on one database take turns here, so that they make one project, key and
    account between them (without it, three made three of each, or died on the pinned key's
    unique constraint).
    """
    s = c.settings
    if s.api_key is not None:
        check_key_secret(s.api_key)  # refused before anything is made
    with one_process_at_a_time(c.engine, "setup"):
        return _ensure_first_run(c)


def _ensure_first_run(c: Container) -> FirstRun:
    s = c.settings
    created = False
    project = c.tenancy.first_project()
    new_key: str | None = None
    if project is None:
        project = c.tenancy.create_project("default")
        created = True
        issued = c.tenancy.issue_key(project, "default", secret=s.api_key)
        new_key = None if s.api_key else issued.secret
    elif s.api_key and not c.tenancy.has_key(s.api_key):
        c.tenancy.issue_key(project, "pinned", secret=s.api_key)
    account_id = s.account_id
    if account_id:
        if c.tenancy.get_account(account_id) is None:
            c.tenancy.create_account(project, "local", account_id=account_id, origin_owner_name="local")
    else:
        existing = c.tenancy.first_account(project)
        account_id = existing or c.tenancy.create_account(project, "local", origin_owner_name="local").id
    return FirstRun(project_id=project, account_id=account_id, new_api_key=new_key, created=created)
