"""Mantle's storage: SQLAlchemy 2 tables, the engine and session, and query functions.

Every query function takes the session first and the organization id as a keyword,
and never commits: the caller (one request, one task) owns the transaction.
"""

from models.apps import App, AppVersion
from models.audit import AuditEntry
from models.base import Base
from models.orgs import ApiKey, Organization
from models.runs import NodeRun, Run, RunEvent

__all__ = [
    "ApiKey", "App", "AppVersion", "AuditEntry", "Base", "NodeRun", "Organization", "Run", "RunEvent",
]
