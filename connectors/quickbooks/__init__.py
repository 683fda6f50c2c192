"""QuickBooks Online connector: python-quickbooks over HTTP, mapped to the neutral ledger model."""
