"""Mantle's storage: SQLAlchemy 2 tables, the engine and session, and query functions.

Every query function takes the session first and the organization id as a keyword,
and never commits: the caller (one request, one task) owns the transaction.
"""

from models.accounts import Invitation, Membership, PasswordLink, User
from models.apps import App, AppVersion
from models.audit import AuditEntry
from models.base import Base
from models.browser_sessions import BrowserSession, SignInLink
from models.completions import Completion
from models.credentials import Credential
from models.deployments import ModelDeployment
from models.knowledge import KnowledgeBase, KnowledgeChunk, KnowledgeDocument, KnowledgeEvent
from models.orgs import ApiKey, Organization
from models.policies import AppPolicy, PinnedPolicy, Policy, PolicyVersion
from models.quotas import OrgQuota, QuotaCounter
from models.retention import AppRetention, OrgRetention, PrunedRun
from models.reviews import ReviewItem
from models.runs import NodeRun, Run, RunEvent
from models.schedules import AppSchedule
from models.shares import Share, ShareUsage
from models.sign_in_attempts import SignInAttempt
from models.sms import SmsInbound, SmsNumber, SmsOptOut, SmsOutbound
from models.usage import ModelUsage
from models.webhooks import WebhookEndpoint

__all__ = [
    "ApiKey", "App", "AppVersion", "AuditEntry", "Base", "NodeRun", "Organization", "ReviewItem", "Run",
    "RunEvent", "Share", "ShareUsage",
    "Credential", "ModelDeployment", "SmsInbound", "SmsNumber", "SmsOptOut", "SmsOutbound",
    "AppPolicy", "PinnedPolicy", "Policy", "PolicyVersion",
    "AppSchedule", "WebhookEndpoint", "BrowserSession", "SignInLink",
    "Invitation", "Membership", "PasswordLink", "SignInAttempt", "User",
    "Completion", "ModelUsage", "OrgQuota", "QuotaCounter",
    "KnowledgeBase", "KnowledgeChunk", "KnowledgeDocument", "KnowledgeEvent",
    "AppRetention", "OrgRetention", "PrunedRun",
]
