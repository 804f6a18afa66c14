"""The training process: the model it fits is the one an in-process fit gives (same seed,
same sales), a fit's error comes back as one, a dead process is replaced by the next fit
and dies with its parent, and the model shelf never hands out a model trained after the
time asked."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from eventyard.demo.data import Sale, load_sales
from eventyard.demo.events import ListingChanged
from eventyard.demo.training import ModelShelf, Trainer, TrainingError, encode_sale
from eventyard.demo.valuation import Valuer
from tests.demo.test_valuation import as_listing

SALES = sorted(load_sales(7), key=lambda s: s.CloseDate)[:400]


def closed(sale: Sale) -> ListingChanged:
    """The sale as the Closed change the valuation stage keeps."""
    return msgspec.structs.replace(
        as_listing(sale),
        ChangeType="Closed",
        StandardStatus="Closed",
        DaysOnMarket=30,
        ClosePrice=sale.ClosePrice,
        CloseDate=sale.CloseDate,
    )


async def test_the_process_fits_what_an_in_process_fit_gives() -> None:
    sales = [closed(sale) for sale in SALES[:300]]
    trainer = Trainer(seed=7)
    try:
        fitted = await trainer.fit([encode_sale(sale) for sale in sales])
        again = await trainer.fit([encode_sale(sale) for sale in sales])  # the same process
    finally:
        await trainer.close()
    here = Valuer(seed=7)
    here.fit(sales)
    rows = [closed(sale) for sale in SALES[300:]]
    assert fitted.predict_many(rows) == here.predict_many(rows) == again.predict_many(rows)
    assert fitted.trained_on == 300


async def test_a_failed_fit_is_reported_and_a_dead_process_replaced() -> None:
    trainer = Trainer(seed=7)
    try:
        with pytest.raises(TrainingError, match="at least"):
            await trainer.fit([encode_sale(closed(sale)) for sale in SALES[:5]])
        pid = trainer.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        while trainer.pid is not None:  # the process is reaped on the loop
            await asyncio.sleep(0.01)
        fitted = await trainer.fit([encode_sale(closed(sale)) for sale in SALES[:50]])
        assert fitted.version == 1 and trainer.pid not in (None, pid)
    finally:
        await trainer.close()
    await trainer.close()  # idempotent


@pytest.mark.skipif(
    not (hasattr(os, "SCHED_IDLE") and Path("/proc/self/task").is_dir()),
    reason="SCHED_IDLE and /proc are Linux's",
)
async def test_every_thread_of_the_training_process_is_background_work() -> None:
    """Not only the main thread: numpy's BLAS threads and scikit-learn's OpenMP threads,
    started by the imports or by a fit, would otherwise compete with the stages."""
    trainer = Trainer(seed=7)
    try:
        await trainer.fit([encode_sale(closed(sale)) for sale in SALES[:300]])
        pid = trainer.pid
        assert pid is not None
        threads = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
        policies = {thread: os.sched_getscheduler(thread) for thread in threads}
    finally:
        await trainer.close()
    assert len(threads) > 1, "numpy and scikit-learn start threads of their own"
    assert set(policies.values()) == {os.SCHED_IDLE}, policies


def test_the_shelf_picks_the_newest_model_trained_by_then() -> None:
    shelf = ModelShelf()
    early, late = Valuer(), Valuer()
    assert shelf.pick("2008-01-01T00:00:00Z") is None
    assert shelf.add("2008-06-01T00:00:00Z", late) == 1
    assert shelf.add("2008-03-01T00:00:00Z", early) == 2  # a partition behind the others
    assert shelf.pick("2008-02-01T00:00:00Z") is None
    assert shelf.pick("2008-03-01T00:00:00Z") == (early, 2)
    assert shelf.pick("2008-05-31T00:00:00Z") == (early, 2)
    assert shelf.pick("2009-01-01T00:00:00Z") == (late, 1)
    for month in range(7, 12):
        shelf.add(f"2008-{month:02d}-01T00:00:00Z", Valuer())
    assert shelf.pick("2008-05-31T00:00:00Z") is None  # only the newest four are kept


def test_a_sale_travels_as_msgpack() -> None:
    sale = closed(SALES[0])
    assert msgspec.msgpack.decode(encode_sale(sale), type=ListingChanged) == sale


def test_the_training_process_exits_with_its_parent_even_after_sigkill() -> None:
    """A stage killed by SIGKILL leaves no training process behind (its stdin closes)."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "from eventyard.demo.training import Trainer\n"
            "async def main():\n"
            "    trainer = Trainer(seed=7)\n"
            "    await trainer.start()\n"
            "    print(trainer.pid, flush=True)\n"
            "    await asyncio.sleep(60)\n"
            "asyncio.run(main())\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, "the training process outlived its parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by init, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" not in status.read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return True
