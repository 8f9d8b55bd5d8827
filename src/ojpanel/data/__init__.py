"""Data sources: the embedded real values, reference tables, and the Kolada API client."""

__all__: list[str] = []
