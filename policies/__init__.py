"""Credit-control rules: pure code, no I/O, no clock (today is always a parameter)."""
