"""Congruence tests: the same operations on the embedded stack (SQLite catalog, FAISS index) and
on the scale stack (PostgreSQL catalog, Milvus index), compared answer by answer (``compare.py``).

They run once, in the main pass of ``make test`` (they are not marked ``storage``, so the
PostgreSQL+Milvus re-run leaves them out: they choose both stacks themselves), as one xdist group:
the two engines and their gallery are built once per test process."""
