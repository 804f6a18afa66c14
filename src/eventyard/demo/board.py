"""The deal board: a SQLite read model of the ``deals``, ``matches`` and ``alerts`` topics.

:class:`DealBoard` is what ``eventyard deals top | for BUYBOX | history LISTING`` reads. It
holds nothing the topics do not: the board stage applies every :class:`DealScored`,
:class:`DealMatched` and :class:`AlertSent` with :meth:`DealBoard.apply`, and a board
deleted and rebuilt from the start of the topics has the same rows.

Contracts:

- **Idempotent.** Each event is applied in a transaction (``BEGIN IMMEDIATE``) together
  with its event id in ``board_applied``: one event (:meth:`DealBoard.apply`) or a whole
  batch (:meth:`DealBoard.apply_many`, what the board stage does with each fetched batch,
  so a batch costs one commit); an id already there changes nothing, so a redelivery after
  a crash (handled, not yet committed) is harmless. Rows are also keyed by
  what they describe, not by event id: a deal by its listing, a match by buy-box and listing,
  an alert by channel, buy-box, listing and reason, a history entry by its listing change. So
  an upstream stage that published the same fact twice (under two event ids, after its own
  crash) still gives one row.
- **Order-independent across topics.** The three topics are consumed concurrently, so the
  interleaving of a deal with its matches and alerts differs from run to run. Rows therefore
  depend only on each key's own events: the latest deal and the latest match are the ones
  with the newest market time ``At`` (ties: the later in the topic, which the per-key order
  keeps stable), and the joins (a deal's buy-boxes, a match's alert count) happen when read.
  Queries sort fully (score, then key), so equal rows come back in the same order.
- **Readable while written.** The file is in WAL mode, so the CLI reads it while the board
  stage writes. One connection per board, shared by threads under a lock.

The rows returned are small frozen dataclasses: :class:`DealRow`, :class:`MatchRow`,
:class:`HistoryRow`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from eventyard.demo.events import AlertSent, DealMatched, DealScored
from eventyard.demo.sqlitefile import SQLiteFile

__all__ = ["BoardEvent", "DealBoard", "DealRow", "HistoryRow", "MatchRow"]

BoardEvent = DealScored | DealMatched | AlertSent
"""The events the board applies."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS board_applied (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS board_deals (
    listing_key TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    change_type TEXT NOT NULL,
    status TEXT NOT NULL,
    city TEXT,
    bedrooms INTEGER NOT NULL,
    living_area REAL NOT NULL,
    list_price INTEGER NOT NULL,
    estimate INTEGER NOT NULL,
    low INTEGER NOT NULL,
    high INTEGER NOT NULL,
    model_version INTEGER NOT NULL,
    score REAL NOT NULL,
    discount REAL NOT NULL,
    uncertainty REAL NOT NULL,
    signals TEXT NOT NULL,
    cap_rate REAL,
    grm REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS board_deals_score ON board_deals (score DESC, listing_key);
CREATE TABLE IF NOT EXISTS board_matches (
    buybox TEXT NOT NULL,
    listing_key TEXT NOT NULL,
    broker TEXT NOT NULL,
    at TEXT NOT NULL,
    score REAL NOT NULL,
    list_price INTEGER NOT NULL,
    estimate INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    PRIMARY KEY (buybox, listing_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS board_alerts (
    channel TEXT NOT NULL,
    buybox TEXT NOT NULL,
    listing_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    list_price INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (channel, buybox, listing_key, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS board_history (
    listing_key TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic_key TEXT NOT NULL,
    list_price INTEGER NOT NULL,
    score REAL,
    buybox TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (listing_key, at, kind, topic_key)
) WITHOUT ROWID;
"""

_KIND_ORDER: Final = "CASE kind WHEN 'scored' THEN 0 WHEN 'matched' THEN 1 ELSE 2 END"


@dataclass(frozen=True)
class DealRow:
    """A listing's latest scored state, and the buy-boxes it currently matches."""

    listing_key: str
    at: str
    change_type: str
    status: str
    city: str | None
    bedrooms: int
    living_area: float
    list_price: int
    estimate: int
    low: int
    high: int
    model_version: int
    score: float
    discount: float
    uncertainty: float
    signals: tuple[str, ...]
    cap_rate: float | None
    gross_rent_multiplier: float | None
    buyboxes: tuple[str, ...]


@dataclass(frozen=True)
class MatchRow:
    """A buy-box's latest match with a listing, and how many alerts it sent for it."""

    buybox: str
    broker: str
    listing_key: str
    at: str
    score: float
    list_price: int
    estimate: int
    reasons: tuple[str, ...]
    alerts: int


@dataclass(frozen=True)
class HistoryRow:
    """One entry of a listing's timeline: ``kind`` is ``scored``, ``matched`` or ``alert``."""

    at: str
    kind: str
    list_price: int
    score: float | None
    buybox: str | None
    detail: str


def _money(amount: int) -> str:
    return f"${amount:,}"


_strings = msgspec.json.Decoder(tuple[str, ...])


def _dumps(items: list[str]) -> str:
    """A list of strings as the JSON array a TEXT column holds (msgspec: no escapes)."""
    return msgspec.json.encode(items).decode()


def _loads(text: str) -> tuple[str, ...]:
    return _strings.decode(text)


def _write_scored(db: sqlite3.Connection, deal: DealScored) -> None:
    valued = deal.valued
    listing = valued.listing
    db.execute(
        "INSERT INTO board_deals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (listing_key) DO UPDATE SET "
        "at=excluded.at, change_type=excluded.change_type, status=excluded.status, "
        "city=excluded.city, bedrooms=excluded.bedrooms, living_area=excluded.living_area, "
        "list_price=excluded.list_price, estimate=excluded.estimate, low=excluded.low, "
        "high=excluded.high, model_version=excluded.model_version, score=excluded.score, "
        "discount=excluded.discount, uncertainty=excluded.uncertainty, "
        "signals=excluded.signals, cap_rate=excluded.cap_rate, grm=excluded.grm "
        "WHERE excluded.at >= board_deals.at",
        (
            listing.ListingKey,
            listing.ModificationTimestamp,
            listing.ChangeType,
            listing.StandardStatus,
            listing.City,
            listing.BedroomsTotal,
            listing.LivingArea,
            listing.ListPrice,
            valued.Estimate,
            valued.Low,
            valued.High,
            valued.ModelVersion,
            deal.Score,
            deal.Discount,
            deal.Uncertainty,
            _dumps(deal.Signals),
            deal.CapRate,
            deal.GrossRentMultiplier,
        ),
    )
    signals = "; ".join(deal.Signals)
    detail = (
        f"{listing.ChangeType}: {_money(listing.ListPrice)}, estimate "
        f"{_money(valued.Estimate)}, score {deal.Score:.0f}" + (f" ({signals})" if signals else "")
    )
    _history(db, listing.ListingKey, listing.ModificationTimestamp, "scored",
             listing.ChangeType, listing.ListPrice, deal.Score, None, detail)  # fmt: skip


def _write_matched(db: sqlite3.Connection, match: DealMatched) -> None:
    db.execute(
        "INSERT INTO board_matches VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT (buybox, listing_key) DO UPDATE SET "
        "broker=excluded.broker, at=excluded.at, score=excluded.score, "
        "list_price=excluded.list_price, estimate=excluded.estimate, reasons=excluded.reasons "
        "WHERE excluded.at >= board_matches.at",
        (
            match.BuyBox,
            match.ListingKey,
            match.Broker,
            match.At,
            match.Score,
            match.ListPrice,
            match.Estimate,
            _dumps(match.Reasons),
        ),
    )
    detail = f"matched {match.BuyBox} ({match.Broker}): " + "; ".join(match.Reasons)
    _history(db, match.ListingKey, match.At, "matched", match.BuyBox, match.ListPrice,
             match.Score, match.BuyBox, detail)  # fmt: skip


def _write_alert(db: sqlite3.Connection, alert: AlertSent) -> None:
    db.execute(
        "INSERT OR IGNORE INTO board_alerts VALUES (?,?,?,?,?,?)",
        (alert.Channel, alert.BuyBox, alert.ListingKey, alert.Reason, alert.ListPrice, alert.At),
    )
    detail = f"alert to {alert.BuyBox} via {alert.Channel}: {alert.Reason}"
    _history(db, alert.ListingKey, alert.At, "alert",
             f"{alert.BuyBox}\x1f{alert.Channel}\x1f{alert.Reason}", alert.ListPrice, None,
             alert.BuyBox, detail)  # fmt: skip


def _history(
    db: sqlite3.Connection,
    listing_key: str,
    at: str,
    kind: str,
    topic_key: str,
    list_price: int,
    score: float | None,
    buybox: str | None,
    detail: str,
) -> None:
    """One timeline entry; the same (listing, time, kind, key) again replaces it (last wins)."""
    db.execute(
        "INSERT OR REPLACE INTO board_history VALUES (?,?,?,?,?,?,?,?)",
        (listing_key, at, kind, topic_key, list_price, score, buybox, detail),
    )


def _write(db: sqlite3.Connection, event: BoardEvent) -> None:
    if isinstance(event, DealScored):
        _write_scored(db, event)
    elif isinstance(event, DealMatched):
        _write_matched(db, event)
    elif isinstance(event, AlertSent):
        _write_alert(db, event)
    else:
        raise TypeError(f"the deal board does not apply {type(event).__name__} events")


class DealBoard(SQLiteFile):
    """The deal board in the SQLite file ``path`` (created on first use; module docstring)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA, "deal board")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._reading() as db:
            return db.execute(sql, params).fetchall()

    @staticmethod
    def _claim(db: sqlite3.Connection, event_id: str) -> bool:
        cursor = db.execute("INSERT OR IGNORE INTO board_applied VALUES (?)", (event_id,))
        return cursor.rowcount == 1

    def apply(self, event: BoardEvent, event_id: str) -> bool:
        """Apply one event in one transaction; False (nothing changed) if ``event_id`` was."""
        with self._transaction() as db:
            if not self._claim(db, event_id):
                return False
            _write(db, event)
            return True

    def apply_many(self, events: Iterable[tuple[BoardEvent, str]]) -> int:
        """Apply ``(event, event_id)`` pairs in one transaction; how many were new."""
        applied = 0
        with self._transaction() as db:
            for event, event_id in events:
                if self._claim(db, event_id):
                    _write(db, event)
                    applied += 1
        return applied

    # -- queries -------------------------------------------------------------------------------

    _DEAL_COLUMNS: Final = (
        "listing_key, at, change_type, status, city, bedrooms, living_area, list_price, "
        "estimate, low, high, model_version, score, discount, uncertainty, signals, cap_rate, "
        "grm, (SELECT group_concat(buybox, char(31)) FROM (SELECT buybox FROM board_matches m "
        "WHERE m.listing_key = d.listing_key ORDER BY buybox))"
    )

    @staticmethod
    def _deal(row: tuple[Any, ...]) -> DealRow:
        (key, at, change, status, city, beds, area, price, estimate, low, high, version,
         score, discount, uncertainty, signals, cap_rate, grm, boxes) = row  # fmt: skip
        return DealRow(
            listing_key=key,
            at=at,
            change_type=change,
            status=status,
            city=city,
            bedrooms=beds,
            living_area=area,
            list_price=price,
            estimate=estimate,
            low=low,
            high=high,
            model_version=version,
            score=score,
            discount=discount,
            uncertainty=uncertainty,
            signals=_loads(signals),
            cap_rate=cap_rate,
            gross_rent_multiplier=grm,
            buyboxes=tuple(boxes.split("\x1f")) if boxes else (),
        )

    def top(self, n: int = 10, *, status: str | None = None) -> list[DealRow]:
        """The ``n`` best-scoring listings (latest state each), optionally of one status."""
        where = "WHERE status = ?" if status is not None else ""
        rows = self._read(
            f"SELECT {self._DEAL_COLUMNS} FROM board_deals d {where} "
            "ORDER BY score DESC, discount DESC, listing_key LIMIT ?",
            (status, n) if status is not None else (n,),
        )
        return [self._deal(row) for row in rows]

    def deal(self, listing_key: str) -> DealRow | None:
        """The listing's latest scored state, or None if it was never scored."""
        rows = self._read(
            f"SELECT {self._DEAL_COLUMNS} FROM board_deals d WHERE listing_key = ?",
            (listing_key,),
        )
        return self._deal(rows[0]) if rows else None

    def for_buybox(self, name: str) -> list[MatchRow]:
        """Every listing the buy-box ``name`` matched, best score first."""
        rows = self._read(
            "SELECT buybox, broker, listing_key, at, score, list_price, estimate, reasons, "
            "(SELECT count(*) FROM board_alerts a "
            " WHERE a.buybox = m.buybox AND a.listing_key = m.listing_key) "
            "FROM board_matches m WHERE buybox = ? ORDER BY score DESC, listing_key",
            (name,),
        )
        return [
            MatchRow(box, broker, key, at, score, price, estimate, _loads(reasons), alerts)
            for box, broker, key, at, score, price, estimate, reasons, alerts in rows
        ]

    def buyboxes(self) -> list[tuple[str, int]]:
        """Every buy-box with matches, and how many listings it matched, by name."""
        rows = self._read(
            "SELECT buybox, count(*) FROM board_matches GROUP BY buybox ORDER BY buybox"
        )
        return [(name, count) for name, count in rows]

    def history(self, listing_key: str) -> list[HistoryRow]:
        """The listing's timeline: each scored change, match and alert, oldest first."""
        rows = self._read(
            "SELECT at, kind, list_price, score, buybox, detail FROM board_history "
            f"WHERE listing_key = ? ORDER BY at, {_KIND_ORDER}, topic_key",
            (listing_key,),
        )
        return [HistoryRow(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many deals, matches, alerts and applied events the board holds."""
        tables = ("deals", "matches", "alerts", "applied")
        rows = self._read(
            "SELECT " + ", ".join(f"(SELECT count(*) FROM board_{t})" for t in tables)
        )
        return dict(zip(tables, rows[0], strict=True))

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the read-model tables, sorted: equal snapshots mean equal boards.

        The applied event ids are left out: a rebuild from a fresh run of the pipeline has
        new ids and the same facts.
        """
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in ("board_deals", "board_matches", "board_alerts", "board_history"):
            out[table] = sorted(
                self._read(f"SELECT * FROM {table}"), key=lambda row: [repr(v) for v in row]
            )
        return out
