"""relance's tests: one package per layer (policies, connectors, sync), e2e, and support (helpers)."""
