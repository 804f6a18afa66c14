"""Retraining the valuation model in a process of its own, and the models it produced.

Fitting the gradient-boosted model on a few thousand sales takes about a second of CPU, much
of it in Python code of scikit-learn's that holds the GIL: in a worker thread it stalls the
event loop of the valuation stage (and, with ``--single-process``, of every stage) for
hundreds of milliseconds at a time. :class:`Trainer` fits in a child process instead,
``python -m eventyard.demo.training``, spoken to over its stdin and stdout:

- a plain subprocess rather than ``multiprocessing``: ``fork`` would copy the event loop's
  threads and locks into the child, and ``spawn`` re-imports the parent's ``__main__``
  (a user's script without a ``__main__`` guard would start its pipeline again in there);
- started when the stage starts, so it has imported scikit-learn before the first retrain;
  it exits when its stdin closes, so a stage that exits, even by SIGKILL, leaves no orphan,
  and a child that died is started again by the next fit;
- as background work for the scheduler (Linux's ``SCHED_IDLE``, elsewhere ``nice``
  +:data:`NICENESS`): it runs on the CPU time the stages leave, so a retrain never delays
  a handler, and on a busy machine the models are retrained later rather than the
  listings valued later;
- one request at a time: the sales as one msgpack array, each sale encoded once when it
  closes (:func:`encode_sale`), so sending thousands costs the event loop next to nothing;
  the answer is the fitted :class:`~eventyard.demo.valuation.Valuer`, pickled (its numpy
  forest and schema, without scikit-learn's estimator, which took 3 to 5 ms of the stage's
  event loop to unpickle), or the fit's error.

The fit is the same computation as in the parent, on the same sales, so the model is the
one an in-process fit would give: results stay reproducible for a seed. The child writes
nothing else to its stdout (its own ``print``s go to stderr, the stage's log).

:class:`ModelShelf` keeps the newest models by training time, so each listing is valued
with the newest model trained from sales closed before it (the partitions of ``comped``
interleave, so a model may be newer than the next listing).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import pickle
import signal
import struct
import sys
from collections.abc import Sequence
from typing import BinaryIO, Final

import msgspec

from eventyard.demo.events import ListingChanged
from eventyard.demo.valuation import Valuer
from eventyard.errors import EventyardError

__all__ = ["KEEP_MODELS", "NICENESS", "ModelShelf", "Trainer", "TrainingError", "encode_sale"]

NICENESS: Final = 10
"""How much lower the training process's priority is than the stage's where there is no
``SCHED_IDLE`` (``os.nice``)."""

KEEP_MODELS: Final = 4
"""Models a :class:`ModelShelf` keeps (older ones are only needed by far-behind partitions)."""

_REQUEST: Final = struct.Struct("!qI")
"""A request's header: the seed, then the payload's length (a msgpack array of sales)."""
_ANSWER: Final = struct.Struct("!?I")
"""An answer's header: whether the fit succeeded, then the payload's length (a pickled
valuer, or the error's text)."""
_ARRAY32: Final = b"\xdd"
"""msgpack's header byte of an array with a 32-bit length."""

_encoder = msgspec.msgpack.Encoder()


def encode_sale(sale: ListingChanged) -> bytes:
    """A closed sale as the training process receives it."""
    return _encoder.encode(sale)


class TrainingError(EventyardError):
    """A fit failed in the training process (its error), or the process died."""


class Trainer:
    """Fits :class:`~eventyard.demo.valuation.Valuer` models in one child process.

    One owner: the stage's event loop; :meth:`fit` calls must not overlap (the stage
    retrains one model at a time).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._child: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The training process's pid while it runs, else None."""
        child = self._child
        return child.pid if child is not None and child.returncode is None else None

    async def start(self) -> None:
        """Start the training process if it is not running (it imports scikit-learn)."""
        if self._child is not None:
            if self._child.returncode is None:
                return
            await self.close()  # it died: release its pipes before starting another
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "eventyard.demo.training",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def fit(self, sales: Sequence[bytes]) -> Valuer:
        """A valuer fitted on ``sales`` (:func:`encode_sale` bytes) in the training process.

        Raises :class:`TrainingError` with the fit's error (too few sales, say) or when the
        process died (it is started again by the next call).
        """
        await self.start()
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        payload = b"".join([_ARRAY32, struct.pack("!I", len(sales)), *sales])
        try:
            child.stdin.write(_REQUEST.pack(self.seed, len(payload)) + payload)
            await child.stdin.drain()
            ok, size = _ANSWER.unpack(await child.stdout.readexactly(_ANSWER.size))
            answer = await child.stdout.readexactly(size)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self.close()
            raise TrainingError(f"the training process died: {exc!r}") from None
        except BaseException:  # cancelled mid-exchange: the next fit needs a fresh process
            await self.close()
            raise
        if not ok:
            raise TrainingError(answer.decode("utf-8", errors="replace"))
        valuer = pickle.loads(answer)
        if not isinstance(valuer, Valuer):
            raise TrainingError(f"the training process answered a {type(valuer).__name__}")
        return valuer

    async def close(self) -> None:
        """Stop the training process (a fit under way is abandoned); idempotent."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        if child.returncode is None:
            child.kill()
        await child.wait()


def _read(stream: BinaryIO, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None at the end of the stream."""
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The training process's loop: fit each request, answer it, until ``requests`` ends."""
    decoder = msgspec.msgpack.Decoder(list[ListingChanged])
    while (header := _read(requests, _REQUEST.size)) is not None:
        seed, size = _REQUEST.unpack(header)
        payload = _read(requests, size)
        if payload is None:
            return
        try:
            valuer = Valuer(seed=seed)
            valuer.fit(decoder.decode(payload))
            ok, answer = True, pickle.dumps(valuer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # the parent gets the error and keeps its models
            ok, answer = False, f"{type(exc).__name__}: {exc}".encode()
        try:
            answers.write(_ANSWER.pack(ok, len(answer)) + answer)
            answers.flush()
        except BrokenPipeError:  # the parent is gone: nobody to answer
            return


def _yield_the_cpu() -> None:
    """Run as background work: ``SCHED_IDLE`` where there is one (Linux: the process runs
    only when no other wants the CPU, so a retrain never delays a stage), else ``nice``.

    Every thread of the process, not just the calling one: on Linux the policy is per
    thread, and numpy's BLAS threads and the OpenMP threads scikit-learn fits with may be
    running by the time this is called, after the imports. Left at the normal policy, they
    competed with the stages on equal terms, and each retrain put the p99 of the pipeline's
    latency up by tens of milliseconds. Threads started later inherit the policy.
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            for thread in _threads():
                os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    if hasattr(os, "nice"):
        os.nice(NICENESS)


def _threads() -> list[int]:
    """The ids of this process's threads where ``/proc`` lists them, else the caller's (0)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def main() -> None:
    """``python -m eventyard.demo.training``: serve fits on stdin/stdout (module docstring).

    Ctrl-C in a terminal reaches the whole process group: the child ignores it and ends
    when its parent closes its stdin or kills it, so it never prints a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _yield_the_cpu()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to the log
    serve(sys.stdin.buffer, answers)


class ModelShelf:
    """The newest :data:`KEEP_MODELS` models of a valuation stage, by training time.

    ``add`` numbers models 1, 2, ... in the order they are added (the ``ModelVersion`` of
    the valuations they make); ``pick`` finds the newest model trained as of a time not
    after the given one.
    """

    def __init__(self) -> None:
        self._times: list[str] = []
        self._valuers: list[Valuer] = []
        self._versions: list[int] = []
        self.version = 0

    def add(self, as_of: str, valuer: Valuer) -> int:
        """Shelve ``valuer``, trained on the sales closed before ``as_of``; its version."""
        self.version += 1
        index = bisect.bisect_right(self._times, as_of)
        self._times.insert(index, as_of)
        self._valuers.insert(index, valuer)
        self._versions.insert(index, self.version)
        if len(self._times) > KEEP_MODELS:
            del self._times[0], self._valuers[0], self._versions[0]
        return self.version

    def pick(self, as_of: str) -> tuple[Valuer, int] | None:
        """The newest model trained as of ``as_of`` or earlier and its version, or None."""
        index = bisect.bisect_right(self._times, as_of) - 1
        if index < 0:
            return None
        return self._valuers[index], self._versions[index]


if __name__ == "__main__":
    main()
