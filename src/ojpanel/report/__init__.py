"""Reports, tables and figures made from panels and results."""

__all__: list[str] = []
