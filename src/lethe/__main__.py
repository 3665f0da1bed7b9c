"""``python -m lethe`` and the ``lethe`` console script: the command line, imported only when it runs.

The console script's module is what a spawned ingest worker imports again as its ``__main__``
(multiprocessing's spawn start method), so it must stay this small: a script that imported
``lethe.cli`` at its top made every worker load the engine, FAISS, SQLAlchemy and the web service
before its first photo.
"""

from __future__ import annotations


def main() -> None:
    from lethe.cli import main as run

    run()


if __name__ == "__main__":
    main()
