"""Password hashing parameters, measured: see bench/RESULTS.md, "Logins (issue 14)"."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's minimum (m=19 MiB, t=2, p=1): about 25 ms of CPU per check here.

    Django's defaults (m=100 MiB, p=8) cost about ten times that; PBKDF2 at 1,500,000 iterations cost
    1.2 s, which let a dozen clients logging in starve the server (issue 14). The algorithm name
    stays "argon2", so a hash made with other parameters is rehashed with these at the next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
