"""The behaviour of before 5fa70d0 for A/B runs of replays across flushes: `ends_at_flush` stands in for
runtime/graphs.py's `replayable_steps`, cutting a graph's span at its first flush, with no flushes scheduled among its
replays (used by run scripts in this folder; put it on PYTHONPATH, as setup.sh of 2026-12-02i does)."""
from kvtool.runtime import graphs

across = graphs.replayable_steps  # the working tree's


def ends_at_flush(cache, limit=graphs.MAX_SPAN):
    replays = across(cache, limit)
    return graphs.Replays(min((first for first, _ in replays.flushes.values()), default=replays.steps), {})
