"""Leases and the claim compare-and-set across real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import pytest

from policies.model.actions import ActionKind, PlannedAction
from policies.model.errors import RelanceError
from sync.store import LeaseBusy, Store, open_store

CTX = multiprocessing.get_context("spawn")  # no inherited database connections
TIMEOUT = 60


def hold_lease(url: str, connection: str, holder: str, acquired: Any, release: Any) -> None:
    store = open_store(url)
    with store.lease(connection, holder, ttl=120):
        acquired.set()
        release.wait(TIMEOUT)
    store.close()


def claim_all(url: str, keys: list[str], start: Any, out: Any) -> None:
    store = open_store(url)
    start.wait(TIMEOUT)
    out.put([key for key in keys if store.outbox.claim(key)])
    store.close()


def _start_holder(url: str, holder: str) -> tuple[Any, Any]:
    acquired, release = CTX.Event(), CTX.Event()
    process = CTX.Process(target=hold_lease, args=(url, "acme", holder, acquired, release))
    process.start()
    assert acquired.wait(TIMEOUT), "the child never took the lease"
    return process, release


def test_second_process_gets_lease_busy_naming_the_holder(store_url: str, store: Store) -> None:
    process, release = _start_holder(store_url, "worker-1:4242")
    try:
        busy = r"connection 'acme' is busy: worker-1:4242 is applying"
        with pytest.raises(LeaseBusy, match=busy) as caught, store.lease("acme", "me:1"):
            pass
        assert isinstance(caught.value, RelanceError) and caught.value.holder == "worker-1:4242"
        with store.lease("other", "me:1"):  # other connections are independent
            pass
    finally:
        release.set()
        process.join(TIMEOUT)
    assert process.exitcode == 0
    with store.lease("acme", "me:1", wait=10) as lease:
        assert lease.held
        assert store.leases.holder("acme")[0] == "me:1"  # type: ignore[index]
    assert store.leases.holder("acme") is None


def test_waiting_acquirer_gets_the_lease_when_released(store_url: str, store: Store) -> None:
    process, release = _start_holder(store_url, "worker-2")
    release.set()
    with store.lease("acme", "waiter", wait=TIMEOUT):
        assert store.leases.holder("acme")[0] == "waiter"  # type: ignore[index]
    process.join(TIMEOUT)


def test_a_killed_holder_leaves_no_stale_lease(store_url: str, store: Store) -> None:
    process, _release = _start_holder(store_url, "doomed")
    os.kill(process.pid, signal.SIGKILL)
    process.join(TIMEOUT)
    # The OS (file lock) or the server (session advisory lock) dropped the lock with the process.
    with store.lease("acme", "survivor", wait=10):
        assert store.leases.holder("acme")[0] == "survivor"  # type: ignore[index]


def test_same_process_second_store_is_refused_too(store_url: str, store: Store) -> None:
    other = open_store(store_url)
    try:
        with store.lease("acme", "first"), pytest.raises(LeaseBusy, match="first"):
            other.lease("acme", "second").__enter__()
    finally:
        other.close()


def test_two_processes_never_claim_the_same_action(store_url: str, store: Store) -> None:
    keys = [f"k{n:03d}" for n in range(150)]
    store.outbox.record_planned(
        "acme",
        [PlannedAction(key, ActionKind.REMINDER, "C1", "EUR", ("I1",), "why", step="s") for key in keys],
    )
    start, out = CTX.Event(), CTX.Queue()
    workers = [CTX.Process(target=claim_all, args=(store_url, keys, start, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    claimed = [out.get(timeout=TIMEOUT) for _ in workers]
    for worker in workers:
        worker.join(TIMEOUT)
    assert sorted(claimed[0] + claimed[1]) == keys  # each key claimed exactly once
    assert not set(claimed[0]) & set(claimed[1])
    assert {r.attempts for r in store.outbox.actions("acme")} == {1}
