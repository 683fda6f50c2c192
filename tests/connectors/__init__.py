"""Tests of connectors/: QuickBooks and Xero connectors, their sandboxes, limits, tokens, secrets."""
