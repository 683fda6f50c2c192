"""Bad-input generators and the properties each input must satisfy (the fuzz oracles).

Hypothesis strategies and checks, shared by the fuzz tests (small counts: tests/policies/
test_fuzz_policies.py, tests/connectors/test_fuzz_payloads.py, tests/sync/test_fuzz_templates.py)
and `python -m bench.fuzz` (large counts, figures):

- policies: the shipped examples (examples/policies/*.yaml) mutated structurally (keys dropped or
  misspelt, values swapped for floats, huge or negative numbers, unicode, nested lists, new keys) and
  textually (truncation, tabs, BOM, CRLF, broken indentation, duplicated lines, odd YAML scalars and
  tags). Each must parse into a Policy or raise PolicyError whose every problem is one line
  'source:line: ...'; any other exception is a crash.
- payloads: QuickBooks and Xero JSON records (invoices, payments, customers/contacts, credit notes)
  built from realistic templates and mutated (truncated JSON, wrong types, missing fields, 1e400,
  10**30, NaN/Infinity, RTL/zero-width/emoji/NUL, CR/LF in names and emails, negative amounts, odd
  dates, nested nulls), fed to each connector's page mapper one record at a time and as pages. No
  exception may escape; a bad record is quarantined with a reason; a surviving record is sane.
- headers: customer names, addresses and subjects with CR, LF, NUL and Unicode line separators into
  sync.channels.compose_email: either RelanceError or a message whose parsed headers are exactly the
  ones relance writes, each once.
"""
