"""The one spelling of an email that registration, login, the throttle and the admin compare.

Unicode lets one address be written many ways: the long s (U+017F) case-folds to ``s``, full-width and
ligature forms fold under NFKC, upper case and surrounding spaces are noise. Comparing anything
less (``.lower()``, PostgreSQL's ``UPPER()``) gave an attacker a fresh throttle allowance per
spelling and let two racing registrations create twins (issue 14). A spelling that folds to a
different string (the dotless i, U+0131) is a different email: it never reaches the first one's account.
"""

from __future__ import annotations

import unicodedata


def normalize_email(email: str) -> str:
    """NFKC, case fold, NFKC again (case folding can un-normalize), then trim: Unicode's NFKC_Casefold."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())
    return folded.strip()
