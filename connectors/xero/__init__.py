"""Xero through xero-python: the connector, the JSON <-> neutral mapping and error translation."""
