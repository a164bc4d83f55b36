"""Listings of one owner's rows, newest first, paged by opaque signed cursors (DRF's CursorPagination).

Rows are ordered by ``(created_at, id)`` descending, a unique key, and the page after a cursor holds
the rows strictly below the cursor's position. So rows added while a client pages never make a row
appear twice or be skipped: a newer row is above every cursor already handed out, an older (backdated)
one below it, and each row that stays is on exactly one page.

A cursor is signed (``django.core.signing``, salted with the listing's cache kind) over its position,
the owner it was issued to and the listing's filter. One that was tampered with, issued to another
owner or for another filter answers 400 before any query runs; and since the query is always the
caller's own rows, no cursor can reach another owner's.

Only the first page is cached, per owner (and filter): ``FIRST_ROWS`` items, from which a first page
of any ``limit`` is cut. The entry lives in the owner's scope, which every change to one of the
owner's rows invalidates (the apps' cache.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from django.core import signing
from django.db.models import Model, Q, QuerySet
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from .cache import Cached, EntryRef, get_or_compute

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# The cached first page holds this many items, so that it serves a first page of any limit.
FIRST_ROWS = MAX_LIMIT
# A real cursor is well under this; longer input is refused before it is decoded.
MAX_CURSOR_CHARS = 500


class PageQuerySerializer(serializers.Serializer):
    """The paging query parameters every listing takes."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    # What django.core.signing writes (URL-safe base64, ':' and '.'), so that the longest cursor
    # accepted also fits in a request line once percent-encoded.
    cursor = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]+$",
        required=False,
        max_length=MAX_CURSOR_CHARS,
        help_text="The `next` of the previous page, as it was.",
    )


class Page(TypedDict):
    items: list[dict[str, Any]]
    next: str | None


class FirstRows(TypedDict):
    """What the cache holds for a listing: its first FIRST_ROWS items, and whether more follow."""

    items: list[dict[str, Any]]
    more: bool


class Listing(NamedTuple):
    """One owner's view of one listing: what a cursor is bound to.

    ``kind`` names the listing (its cache kind; also the signing salt), ``filter`` the filter applied
    ("" for none). Items carry ``id`` and an exact ISO 8601 ``createdAt``: their position.
    """

    kind: str
    owner_id: int
    filter: str = ""

    def cursor_after(self, item: dict[str, Any]) -> str:
        payload = {"o": self.owner_id, "f": self.filter, "t": item["createdAt"], "i": item["id"]}
        return signing.dumps(payload, salt=self._salt())

    def position(self, cursor: str) -> tuple[datetime, int]:
        """The position a cursor of this listing points after; ValidationError (400) for any other."""
        try:
            payload = signing.loads(cursor, salt=self._salt())
        except signing.BadSignature:
            raise _invalid_cursor() from None
        if not isinstance(payload, dict) or payload.get("o") != self.owner_id or payload.get("f") != self.filter:
            raise _invalid_cursor()
        try:
            created_at, pk = datetime.fromisoformat(payload["t"]), payload["i"]
        except (KeyError, TypeError, ValueError):
            raise _invalid_cursor() from None
        if type(pk) is not int or created_at.tzinfo is None:
            raise _invalid_cursor()
        return created_at, pk

    def _salt(self) -> str:
        return f"techbirdsfly.paging:{self.kind}"


def _invalid_cursor() -> ValidationError:
    return ValidationError({"cursor": ["Invalid cursor: pass the `next` of a previous page of this listing."]})


def owner_page(
    *,
    entry: EntryRef,
    listing: Listing,
    rows: QuerySet,
    data: Callable[[Model], dict[str, Any]],
    limit: int,
    cursor: str | None,
) -> Cached[Page]:
    """One page of ``rows`` (the owner's, filtered), newest first: the cached first page, or the page after ``cursor``.

    ``entry`` is the first page's cache entry, ``data`` turns a row into its item.
    """
    rows = rows.order_by("-created_at", "-id")
    if cursor is not None:
        created_at, pk = listing.position(cursor)
        below = Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)
        found = list(rows.filter(below)[: limit + 1])
        items = [data(row) for row in found[:limit]]
        return Cached(_page(listing, items, more=len(found) > limit), False)

    def first_rows() -> FirstRows:
        found = list(rows[: FIRST_ROWS + 1])
        return FirstRows(items=[data(row) for row in found[:FIRST_ROWS]], more=len(found) > FIRST_ROWS)

    first = get_or_compute(entry.kind, entry.key, first_rows, scope=entry.scope)
    items = first.value["items"]
    return Cached(_page(listing, items[:limit], more=len(items) > limit or first.value["more"]), first.from_cache)


def _page(listing: Listing, items: list[dict[str, Any]], *, more: bool) -> Page:
    return Page(items=items, next=listing.cursor_after(items[-1]) if more and items else None)
