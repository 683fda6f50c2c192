"""Channels: turn a planned reminder into something a person receives.

context (NoticeContext from a PlannedAction) -> render (sandboxed Jinja2: subject, text, HTML) ->
transports (email composition, SMTP or .eml files) | handover (call tasks, letters, agency files).
"""

from sync.channels.context import CompanyInfo, NoticeContext, NoticeInvoice, build_context
from sync.channels.handover import TaskEntry, task_entry, write_handover
from sync.channels.render import RenderedNotice, Renderer, render_notice
from sync.channels.transports import (
    FileTransport,
    SmtpTransport,
    Transport,
    TransportError,
    compose_email,
    transport_from_config,
)

__all__ = [
    "CompanyInfo",
    "FileTransport",
    "NoticeContext",
    "NoticeInvoice",
    "RenderedNotice",
    "Renderer",
    "SmtpTransport",
    "TaskEntry",
    "Transport",
    "TransportError",
    "build_context",
    "compose_email",
    "render_notice",
    "task_entry",
    "transport_from_config",
    "write_handover",
]
