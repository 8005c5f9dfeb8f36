"""The egress spacer holds across processes (two crawler workers on one machine share one exit)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from talkvid_ops.crawl.politeness import Spacer

INTERVAL = 0.15


def _worker(state_dir: str, count: int, out) -> None:
    spacer = Spacer("default", INTERVAL, Path(state_dir))
    stamps = []
    for _ in range(count):
        spacer.wait()
        stamps.append(time.time())
    out.put(stamps)


def test_two_processes_share_the_spacing_of_their_egress(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(tmp_path), 4, out)) for _ in range(2)]
    for w in workers:
        w.start()
    stamps = sorted(out.get(timeout=30) + out.get(timeout=30))
    for w in workers:
        w.join(timeout=30)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) == 8 and min(gaps) >= INTERVAL - 0.005


def test_other_egresses_and_a_zero_interval_do_not_wait(tmp_path):
    home, vpn = Spacer("home", INTERVAL, tmp_path), Spacer("vpn-1", INTERVAL, tmp_path)
    start = time.monotonic()
    home.wait()
    vpn.wait()
    free = Spacer("home", 0, tmp_path)
    free.wait()
    assert time.monotonic() - start < INTERVAL / 2
    home.wait()
    assert home.waited_s > INTERVAL / 2


def test_a_slow_response_pushes_the_next_request_back(tmp_path):
    spacer = Spacer("default", INTERVAL, tmp_path)
    spacer.wait()
    time.sleep(INTERVAL)  # the response took as long as the interval
    spacer.mark()
    start = time.monotonic()
    spacer.wait()
    assert time.monotonic() - start >= INTERVAL - 0.005
