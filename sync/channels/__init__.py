"""Channels: turn a planned notice into something a person receives.

context (NoticeContext from a PlannedAction) -> render (sandboxed Jinja2: subject, text, HTML) ->
transports (email composition, SMTP or .eml files) | handover (call tasks, letters, agency files).
Channels register through the `relance.channels` entry points (registry; the shipped ones in
shipped.py); this package's __init__ imports nothing, so the registry stays light.
"""
