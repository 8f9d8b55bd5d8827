"""Data sources: the embedded real values, reference tables, the Kolada API client and the OJ-users file reader."""

__all__: list[str] = []
