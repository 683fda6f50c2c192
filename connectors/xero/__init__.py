"""Xero through xero-python: the connector, the JSON <-> neutral mapping and error translation."""

from connectors.xero.connector import XeroConnector

__all__ = ["XeroConnector"]
