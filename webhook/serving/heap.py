"""The worker's heap and Python's cyclic garbage collector.

A worker holds ~80,000 objects that live as long as it does (modules, Flask, the compiled
policy set). Python's full collection walks all of them: measured on a worker under load it
paused every thread for 50-110 ms about every 4,000 reviews, which was the whole of the
server's p99 at a few hundred reviews/s. `settle` runs once a worker has loaded everything,
before it serves: it collects what start-up left behind and moves the rest out of the
collector's sight (`gc.freeze`), so a full collection walks only what was made since (a few
thousand objects: ~10 ms measured). Frozen objects are still freed by reference counting; only a
reference cycle among them would never be collected, so `resettle` brings them back under the
collector, collects, and freezes again: the worker calls it when it puts a new policy set in
force, so a retired set is collected whatever its shape.

Reviews make no reference cycles (the review path's objects are freed as soon as it answers:
tests/test_heap.py holds it), so a collection rarely has anything to do but walk.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then freeze every object that survives; the number frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def resettle() -> int:
    """Unfreeze, collect (a retired policy set, cycles included), freeze again."""
    gc.unfreeze()
    return settle()
