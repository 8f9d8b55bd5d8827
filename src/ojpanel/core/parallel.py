"""Seeded task execution, serially or on a dask distributed client, with identical results.

Simulations and bootstraps are cut into a fixed number of chunks; chunk ``i`` gets the ``i``-th
child of ``numpy.random.SeedSequence(seed).spawn(n_chunks)``. The chunking depends only on the
problem (``n_draws``, ``chunk_size``), never on the executor, so a run on a dask cluster returns
exactly the same numbers as a serial run with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ojpanel.errors import ParameterError

__all__ = ["spawn_generators", "chunk_sizes", "map_seeded"]


def spawn_generators(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (``SeedSequence.spawn``)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return [np.random.default_rng(s) for s in ss.spawn(int(n))]


def chunk_sizes(n_draws: int, chunk_size: int) -> list[int]:
    """Split ``n_draws`` into chunks of ``chunk_size`` (the last one may be smaller)."""
    if n_draws < 1 or chunk_size < 1:
        raise ParameterError(
            f"n_draws and chunk_size must be positive; got {n_draws}, {chunk_size}"
        )
    full, rest = divmod(int(n_draws), int(chunk_size))
    return [int(chunk_size)] * full + ([rest] if rest else [])


def map_seeded(
    func: Callable[..., Any],
    sizes: Sequence[int],
    seed: int,
    *,
    client: Any | None = None,
    args: tuple = (),
    kwargs: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Any]:
    """Run ``func(size, rng, *args, **kwargs)`` for each chunk, in order.

    Parameters
    ----------
    func
        Top-level (picklable) function of the chunk size and a ``numpy.random.Generator``.
    sizes
        Chunk sizes (see :func:`chunk_sizes`).
    seed
        Root seed; chunk ``i`` uses child ``i`` of ``SeedSequence(seed)``.
    client
        Optional ``dask.distributed.Client``; tasks are submitted to it and gathered in order.
        Large shared arguments are scattered once.
    progress
        Called with a chunk's size each time a chunk is done (e.g.
        :meth:`ojpanel.progress.Progress.advance`).

    Returns
    -------
    list
        One result per chunk, in chunk order.
    """
    kwargs = kwargs or {}
    ss = np.random.SeedSequence(int(seed)).spawn(len(sizes))
    done = progress or (lambda _size: None)
    out: list[Any] = []
    if client is None:
        for s, c in zip(sizes, ss, strict=True):
            out.append(func(s, np.random.default_rng(c), *args, **kwargs))
            done(s)
        return out
    shared = client.scatter(list(args), broadcast=True) if args else []
    futures = [
        client.submit(_run_chunk, func, s, c, shared, kwargs, pure=False)
        for s, c in zip(sizes, ss, strict=True)
    ]
    for s, f in zip(sizes, futures, strict=True):  # in order, as gather would return them
        out.append(f.result())
        done(s)
    return out


def _run_chunk(func, size, seedseq, args, kwargs):
    return func(size, np.random.default_rng(seedseq), *args, **kwargs)
