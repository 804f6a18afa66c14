"""Alerts: deciding which matches deserve one, and delivering it on every channel.

**The policy.** :class:`AlertPolicy` decides per :class:`DealMatched` whether its buy-box's
broker hears about it. The first match of a (buy-box, listing) alerts with the reason
``new match``. After that, a match alerts again only when its list price has moved more than
``threshold`` (default 3%) from the price of the last alert for that box and listing, with
the reason ``price cut 5% to $190,000`` (or ``price up ...``). There is at most one alert per
(buy-box, listing, reason): the same price reached twice does not alert twice. So a listing
re-scored at the same price (a new model, a stage replaying its input) stays quiet.

**Exactly once across restarts.** The policy's state is a few tables in a SQLite file (it
may share the alerts stage's :class:`~eventyard.app.SQLiteDedupeStore` file). A crash can
come between any two steps, so :meth:`AlertPolicy.claim` decides, records the decision and
remembers it under the match's event id in one transaction: a redelivered match (a crash
before its offset was committed) gets the same decision back rather than a fresh one, so a
decided alert is never dropped. Each channel's delivery is then marked done after it
succeeded (:meth:`AlertPolicy.mark_delivered`) and a redelivery skips the channels already
done, so an alert is never repeated either, except on the one channel whose send succeeded
just before a crash. For that window every alert carries a stable id, :func:`alert_id`
(the hash of box, listing and reason): :class:`WebhookNotifier` sends it as the
``Idempotency-Key`` header and :class:`JsonLinesNotifier` skips ids its file already holds.
:class:`Alerter` runs the whole sequence for a handler.

**The channels** implement :class:`Notifier`: :class:`TerminalNotifier` prints a rich line,
:class:`JsonLinesNotifier` appends one JSON document per alert to a file, and
:class:`WebhookNotifier` POSTs the same document with ``urllib`` in a worker thread. A failed
delivery raises :class:`DeliveryError`, so the framework retries the match (and in the end
dead-letters it, for a later redrive) while the channels that succeeded stay done.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final, Protocol
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape

from eventyard.demo.events import AlertSent, DealMatched
from eventyard.demo.sqlitefile import SQLiteFile
from eventyard.errors import ConfigError, EventyardError

__all__ = [
    "NEW_MATCH",
    "AlertPolicy",
    "Alerter",
    "DeliveryError",
    "JsonLinesNotifier",
    "Notifier",
    "TerminalNotifier",
    "WebhookNotifier",
    "alert_id",
    "alert_payload",
]

NEW_MATCH: Final = "new match"
"""The reason of the first alert for a buy-box and listing."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alert_last (
    buybox TEXT NOT NULL,
    listing_key TEXT NOT NULL,
    list_price INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (buybox, listing_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_reasons (
    buybox TEXT NOT NULL,
    listing_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (buybox, listing_key, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_claims (
    event_id TEXT PRIMARY KEY,
    reason TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    PRIMARY KEY (alert_id, channel)
) WITHOUT ROWID;
"""


class DeliveryError(EventyardError):
    """A channel could not deliver an alert (the match is retried, then dead-lettered)."""


def alert_id(buybox: str, listing_key: str, reason: str) -> str:
    """The alert's stable id: the same box, listing and reason always give the same id."""
    digest = hashlib.sha256(f"{buybox}\x1f{listing_key}\x1f{reason}".encode()).hexdigest()
    return digest[:24]


def alert_payload(matched: DealMatched, alert: AlertSent) -> dict[str, Any]:
    """The JSON document the file and webhook channels deliver (``AlertId`` first)."""
    return {
        "AlertId": alert_id(alert.BuyBox, alert.ListingKey, alert.Reason),
        "Channel": alert.Channel,
        "BuyBox": alert.BuyBox,
        "Broker": matched.Broker,
        "ListingKey": alert.ListingKey,
        "Reason": alert.Reason,
        "ListPrice": alert.ListPrice,
        "Estimate": matched.Estimate,
        "Score": matched.Score,
        "Reasons": list(matched.Reasons),
        "At": alert.At,
    }


def _money(amount: int) -> str:
    return f"${amount:,}"


# ---------------------------------------------------------------------------------------------
# The policy


class AlertPolicy(SQLiteFile):
    """Which matches alert, remembered in the SQLite file ``path`` (module docstring).

    ``threshold`` is the relative price move (0.03: 3%) that re-alerts a box and listing.
    One connection, shared by threads under a lock; every write is one transaction.
    """

    def __init__(self, path: str | Path, threshold: float = 0.03) -> None:
        if not 0 <= threshold < 1:
            raise ConfigError(f"alert threshold must be in [0, 1), got {threshold!r}")
        super().__init__(path, _SCHEMA, "alert state")
        self.threshold = threshold

    def _decide(self, db: sqlite3.Connection, matched: DealMatched) -> str | None:
        row = db.execute(
            "SELECT list_price FROM alert_last WHERE buybox = ? AND listing_key = ?",
            (matched.BuyBox, matched.ListingKey),
        ).fetchone()
        if row is None:
            reason = NEW_MATCH
        else:
            last: int = row[0]
            move = (matched.ListPrice - last) / last if last > 0 else 1.0
            if abs(move) <= self.threshold:
                return None
            direction = "cut" if move < 0 else "up"
            reason = f"price {direction} {abs(move):.0%} to {_money(matched.ListPrice)}"
        seen = db.execute(
            "SELECT 1 FROM alert_reasons WHERE buybox = ? AND listing_key = ? AND reason = ?",
            (matched.BuyBox, matched.ListingKey, reason),
        ).fetchone()
        return None if seen else reason

    @staticmethod
    def _record(db: sqlite3.Connection, matched: DealMatched, reason: str) -> None:
        db.execute(
            "INSERT INTO alert_last VALUES (?, ?, ?, ?) ON CONFLICT (buybox, listing_key) "
            "DO UPDATE SET list_price = excluded.list_price, at = excluded.at",
            (matched.BuyBox, matched.ListingKey, matched.ListPrice, matched.At),
        )
        db.execute(
            "INSERT OR IGNORE INTO alert_reasons VALUES (?, ?, ?)",
            (matched.BuyBox, matched.ListingKey, reason),
        )

    def decide(self, matched: DealMatched) -> str | None:
        """The reason to alert about ``matched``, or None; reads only (see :meth:`claim`)."""
        with self._reading() as db:
            return self._decide(db, matched)

    def record(self, matched: DealMatched, reason: str) -> None:
        """Remember that ``matched`` alerted with ``reason`` (its price is the new baseline)."""
        with self._transaction() as db:
            self._record(db, matched, reason)

    def claim(self, matched: DealMatched, event_id: str) -> str | None:
        """Decide and record in one transaction, once per event id.

        The first call for ``event_id`` decides (:meth:`decide`), records a positive
        decision (:meth:`record`) and stores it under the id; a later call for the same id
        returns the stored decision unchanged, so a match redelivered after a crash alerts
        exactly as it would have.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT reason FROM alert_claims WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is not None:
                stored: str | None = row[0]
                return stored
            reason = self._decide(db, matched)
            if reason is not None:
                self._record(db, matched, reason)
            db.execute("INSERT INTO alert_claims VALUES (?, ?)", (event_id, reason))
            return reason

    def delivered(self, alert: AlertSent) -> bool:
        """Whether ``alert`` was delivered on its channel already."""
        key = alert_id(alert.BuyBox, alert.ListingKey, alert.Reason)
        with self._reading() as db:
            row = db.execute(
                "SELECT 1 FROM alert_deliveries WHERE alert_id = ? AND channel = ?",
                (key, alert.Channel),
            ).fetchone()
        return row is not None

    def mark_delivered(self, alert: AlertSent) -> None:
        """Remember that ``alert`` was delivered on its channel."""
        key = alert_id(alert.BuyBox, alert.ListingKey, alert.Reason)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO alert_deliveries VALUES (?, ?)", (key, alert.Channel))

    def alerted(self) -> int:
        """How many alerts (box, listing, reason) were decided so far."""
        with self._reading() as db:
            count: int = db.execute("SELECT count(*) FROM alert_reasons").fetchone()[0]
        return count


# ---------------------------------------------------------------------------------------------
# The channels


class Notifier(Protocol):
    """A channel alerts go out on. ``send`` raises when the alert did not get through."""

    @property
    def name(self) -> str:
        """The channel's name, as in :attr:`AlertSent.Channel`."""
        ...

    async def send(self, matched: DealMatched, alert: AlertSent) -> None:
        """Deliver ``alert`` (about ``matched``); raise :class:`DeliveryError` on failure."""
        ...


class TerminalNotifier:
    """One rich line per alert on ``console`` (default: a new stdout console)."""

    def __init__(self, console: Console | None = None, *, name: str = "terminal") -> None:
        self._console = console or Console()
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def send(self, matched: DealMatched, alert: AlertSent) -> None:
        why = "; ".join(matched.Reasons[:3])
        self._console.print(
            f"[bold green]ALERT[/] {escape(alert.At[:10])} [bold]{escape(alert.BuyBox)}[/] "
            f"({escape(matched.Broker)}) {escape(alert.ListingKey)} "
            f"{_money(alert.ListPrice)} est {_money(matched.Estimate)} "
            f"score {matched.Score:.0f}: [yellow]{escape(alert.Reason)}[/]"
            + (f" [dim]({escape(why)})[/]" if why else ""),
            highlight=False,
            soft_wrap=True,
        )


class JsonLinesNotifier:
    """Appends :func:`alert_payload` documents, one per line, to the file ``path``.

    Each line is flushed as it is written (no fsync: a power cut may lose the last lines,
    a killed process does not). When the file is first opened the ids it already holds are
    read, so an alert sent again after a crash is not written twice, and a last line cut
    short by a crash is removed.
    """

    def __init__(self, path: str | Path, *, name: str = "file") -> None:
        self.path = Path(path)
        self._name = name
        self._file: IO[str] | None = None
        self._ids: set[str] = set()

    @property
    def name(self) -> str:
        return self._name

    def _open(self) -> IO[str]:
        if self._file is not None:
            return self._file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                with self.path.open("r+b") as torn:
                    torn.truncate(keep)
                data = data[:keep]
            for line in data.decode("utf-8", errors="replace").splitlines():
                try:
                    document = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(document, dict) and isinstance(document.get("AlertId"), str):
                    self._ids.add(document["AlertId"])
        self._file = self.path.open("a", encoding="utf-8")
        return self._file

    async def send(self, matched: DealMatched, alert: AlertSent) -> None:
        document = alert_payload(matched, alert)
        try:
            file = self._open()
            if document["AlertId"] in self._ids:
                return
            file.write(json.dumps(document, ensure_ascii=False) + "\n")
            file.flush()
        except OSError as exc:
            raise DeliveryError(f"alert file {self.path}: {exc.strerror or exc}") from exc
        self._ids.add(document["AlertId"])

    def close(self) -> None:
        """Close the file (a later send opens it again); idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


class WebhookNotifier:
    """POSTs :func:`alert_payload` as JSON to ``url`` (``Idempotency-Key``: the alert id).

    The request runs in a worker thread (``urllib`` blocks) with ``timeout`` seconds to
    answer; any status outside 2xx, a refused connection or a timeout raises
    :class:`DeliveryError`, so the framework retries.
    """

    def __init__(self, url: str, timeout: float = 5.0, *, name: str = "webhook") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"webhook URL must be http:// or https://, got {url!r}")
        if timeout <= 0:
            raise ConfigError(f"webhook timeout must be positive, got {timeout!r}")
        self.url = url
        self.timeout = timeout
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def _post(self, body: bytes, key: str) -> None:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "User-Agent": "eventyard-demo",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                status: int = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc.reason}") from exc
        except TimeoutError as exc:
            raise DeliveryError(f"webhook {self.url}: no answer in {self.timeout:g}s") from exc
        except OSError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook {self.url}: HTTP {status}")

    async def send(self, matched: DealMatched, alert: AlertSent) -> None:
        document = alert_payload(matched, alert)
        body = json.dumps(document, ensure_ascii=False).encode()
        await asyncio.to_thread(self._post, body, document["AlertId"])


# ---------------------------------------------------------------------------------------------
# Putting them together


class Alerter:
    """The alerts stage's work for one match: claim, deliver per channel, report.

    :meth:`handle` returns one :class:`AlertSent` per channel for a positive decision,
    including channels delivered before a crash (so the ``alerts`` topic gets them all; the
    deal board keys alerts by channel, box, listing and reason, so one published twice is
    one row). A channel that raises stops the handling: the match is retried and only the
    channels not yet done are tried again.
    """

    def __init__(self, policy: AlertPolicy, notifiers: Sequence[Notifier]) -> None:
        self.policy = policy
        self.notifiers = tuple(notifiers)

    async def handle(self, matched: DealMatched, event_id: str) -> list[AlertSent]:
        reason = self.policy.claim(matched, event_id)
        if reason is None:
            return []
        sent: list[AlertSent] = []
        for notifier in self.notifiers:
            alert = AlertSent(
                Channel=notifier.name,
                BuyBox=matched.BuyBox,
                ListingKey=matched.ListingKey,
                Reason=reason,
                ListPrice=matched.ListPrice,
                At=matched.At,
            )
            if not self.policy.delivered(alert):
                await notifier.send(matched, alert)
                self.policy.mark_delivered(alert)
            sent.append(alert)
        return sent
