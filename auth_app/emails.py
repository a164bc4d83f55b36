"""The one spelling of an email that registration, login, the throttle and the admin compare.

Unicode lets one address be written many ways: the long s (U+017F) case-folds to ``s``, full-width and
ligature forms fold under NFKC, upper case and surrounding spaces are noise. Comparing anything
less (``.lower()``, PostgreSQL's ``UPPER()``) would give an attacker a fresh throttle allowance per
spelling and would let two racing registrations create twins. A spelling that folds to a
different string (the dotless i, U+0131) is a different email: it never reaches the first one's account.

The domain is compared in its ASCII (IDNA) form, as DNS sees it: ``exämple.test`` and
``xn--exmple-cua.test`` are one domain, so they are one account and one allowance of tries.
NFKC can also lengthen an address many times over (U+FDFA is 18 characters), so a bound on what a
client sent is not a bound on what is stored: ``email_problem`` measures the normalized form.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, and User.email's max_length


def _ascii_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN label (over 63 characters, say): compared as it is written
        return label


def normalize_email(email: str) -> str:
    """NFKC, case fold, NFKC again (case folding can un-normalize), trim; the domain in ASCII (IDNA)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold()).strip()
    local, at, domain = folded.rpartition("@")
    if not at:
        return folded
    return f"{local}@{'.'.join(_ascii_label(label) for label in domain.split('.'))}"


def email_problem(email: str) -> str | None:
    """Why ``email`` cannot be an account's email once normalized, or None when it can."""
    if len(normalize_email(email)) > MAX_LENGTH:
        return f"Ensure this email has at most {MAX_LENGTH} characters once normalized."
    return None
