"""Path converters: an id is an integer that fits a PostgreSQL bigint, or the URL does not match (404)."""

BIGINT_MAX = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            raise ValueError("id out of range")
        return number

    def to_url(self, value: int) -> str:
        return str(value)
