"""Password hashing parameters; what a check costs is measured in bench/LOGINS.md."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's minimum (m=19 MiB, t=2, p=1): the cheapest parameters OWASP accepts.

    Django's defaults (m=100 MiB, p=8) and PBKDF2 at Django's iterations cost many times more CPU per
    check, enough for a dozen clients logging in to starve the server. The algorithm name
    stays "argon2", so a hash made with other parameters is rehashed with these at the next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
