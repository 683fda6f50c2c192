"""`relance init`: a starting relance.yaml and policy.yaml, from the shipped examples."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sync.errors import ConfigError

CONFIG_TEMPLATE = """\
# relance configuration. Every key is documented in the README ("relance.yaml").
state: sqlite:///relance.sqlite        # or postgresql+psycopg://user@host/db
policy: policy.yaml                    # default policy for every connection
outbox_dir: outbox                     # .eml files (file transport), letters, agency hand-overs
email:
  transport: file                      # file | smtp
  from: credit@example.com
  reply_to: accounts@example.com
  # smtp: {host: smtp.example.com, port: 587, username: credit@example.com,
  #        password_env: RELANCE_SMTP_PASSWORD, starttls: true}
daemon:
  interval_minutes: 60
  jitter_seconds: 120
connections: []                        # added by `relance connect quickbooks|xero --name NAME`
"""


def example_policy_text(name: str) -> str:
    resource = resources.files("policies") / "examples" / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"no example policy named '{name}'", hint="use fr-b2b, uk-b2b, de-b2b or us-net30")
    return resource.read_text(encoding="utf-8")


def init_workspace(directory: Path, *, example: str = "fr-b2b", force: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    targets = {
        directory / "relance.yaml": CONFIG_TEMPLATE,
        directory / "policy.yaml": example_policy_text(example),
    }
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        names = ", ".join(str(path) for path in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise ConfigError(
            f"{names} already {verb}", hint="use --force to overwrite, or --dir for another folder"
        )
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return list(targets)
