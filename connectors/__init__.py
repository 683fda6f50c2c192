"""QuickBooks Online and Xero connectors, and local sandboxes of both APIs."""
