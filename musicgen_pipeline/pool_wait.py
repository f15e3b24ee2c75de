"""A run step waiting for a concurrency-pool slot sleeps, and a signal ends the wait.

Two defects of Dagster 1.13.27's in-process executor, fixed here for every process that executes a
run of this code location (`install()` is called when the definitions load, so it covers runs of
``render``, REST, ``dagster dev`` and the daemon alike):

1. **Busy polling.** `InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns
   ``min([0, *intervals])``, which is never positive, so `ActiveExecution.sleep_til_ready` never
   sleeps: a run whose step waits for the ``gpu`` slot spins on a core until the slot frees (30 such
   runs took 186 % of a 200 % machine). An upstream fix was attempted and closed unmerged
   (dagster-io/dagster#20367, "fix pending claim check sleep intervals"); the code is unchanged in
   1.13.27. Here the interval is ``max(0, min(intervals))``: the time until the earliest pending
   claim may be retried (Dagster's own back-off, 1 s growing to 15 s).
2. **Signals ignored while waiting.** Between steps Dagster only *records* SIGINT/SIGTERM
   (`capture_interrupts`) and acts on them when the next step starts; a run blocked on a pool never
   starts one, so ``kill -TERM`` did nothing for as long as the slot stayed taken. Here the wait
   is a checkpoint: it sleeps in short slices and raises `DagsterExecutionInterruptedError` as soon
   as an interrupt was recorded, so the run ends (canceled when termination was requested, else
   failed) and its pending claims are released by Dagster's own context exit.

The patch is applied only when the installed Dagster still has the defect (checked by behaviour,
not by version), so an upgrade that fixes it upstream makes `install()` a no-op.
"""

from __future__ import annotations

import time
from typing import Any

# Longest single sleep while waiting, so a recorded interrupt is seen within this many seconds.
CHECK_SLICE_SECONDS = 0.25

_installed: bool | None = None  # None until install(); then whether the busy-poll patch was needed


def interval_has_busy_poll_defect(context_cls: Any) -> bool:
    """True when the class's interval for a claim pending 10 s from now is not positive."""
    probe = context_cls.__new__(context_cls)
    probe._pending_claims = {"probe"}
    probe._pending_timeouts = {"probe": time.time() + 10.0}
    try:
        return context_cls.interval_to_next_pending_claim_check(probe) <= 0
    except Exception:  # internals changed shape: not the defect we know
        return False


def _interval_to_next_pending_claim_check(self: Any) -> float:
    if not self._pending_claims:
        return 0.0
    now = time.time()
    waits = [ready_at - now for ready_at in self._pending_timeouts.values()]
    return max(0.0, min(waits)) if waits else 0.0


def _sleep_til_ready(self: Any) -> None:
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._utils.interrupts import check_captured_interrupt

    deadline = time.monotonic() + max(0.0, float(self.sleep_interval()))
    while True:
        if check_captured_interrupt():
            raise DagsterExecutionInterruptedError("interrupted while waiting for a concurrency pool slot")
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(CHECK_SLICE_SECONDS, left))


def install() -> bool:
    """Apply both fixes once per process; returns True when the busy-poll patch was needed."""
    global _installed
    if _installed is not None:
        return _installed
    from dagster._core.execution.plan.active import ActiveExecution
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    needed = interval_has_busy_poll_defect(InstanceConcurrencyContext)
    if needed:
        InstanceConcurrencyContext.interval_to_next_pending_claim_check = (  # type: ignore[method-assign]
            _interval_to_next_pending_claim_check
        )
    if hasattr(ActiveExecution, "sleep_interval"):
        ActiveExecution.sleep_til_ready = _sleep_til_ready  # type: ignore[method-assign]
    _installed = needed
    return needed
