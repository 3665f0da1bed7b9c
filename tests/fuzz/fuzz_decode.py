"""An atheris (libFuzzer) target for the decode path: :func:`lethe.imaging.decode_image`.

    make fuzz                                   # FUZZ_SECONDS (default 60) of fuzzing
    .venv/bin/python tests/fuzz/fuzz_decode.py -max_total_time=60 -rss_limit_mb=2048 build/fuzz-corpus

Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``: atheris). A finding is any exception other
than :class:`~lethe.errors.ImageError` (the one a caller expects from bad bytes), an answer that is
not an HxWx3 uint8 image of the size it reports, or a crash, hang or memory blow-up (libFuzzer's own
``-timeout`` and ``-rss_limit_mb``). An empty corpus folder is first filled with the small files of
the hostile corpus (``tests/hostile_files.py``), so the fuzzer starts from every format and trick.
Not part of the test suite: pytest does not collect this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["lethe.imaging", "PIL"]):
    import numpy as np
    from PIL import Image

    from lethe.errors import ImageError
    from lethe.imaging import decode_image

    Image.init()  # PIL imports its format plugins on first use: here, so they are instrumented too

#: Small limits keep each input cheap; the bomb checks are the same code at any limit.
MAX_PIXELS = 4_000_000
MAX_BYTES = 1 << 20
SEED_MAX_BYTES = 64 * 1024


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris looks for
    try:
        image = decode_image(data, max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES)
    except ImageError:
        return
    pixels = image.pixels
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise AssertionError(f"decoded to {pixels.dtype} {pixels.shape}")
    if pixels.shape[:2] != (image.height, image.width) or image.width * image.height > MAX_PIXELS:
        raise AssertionError(f"{image.width}x{image.height} reported for pixels of shape {pixels.shape}")
    if not pixels.flags.c_contiguous:
        raise AssertionError("pixels are not C-contiguous")


def seed(folder: Path) -> None:
    """Fill an empty corpus folder with the hostile corpus' small files."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import hostile_files

    for item in hostile_files.corpus(1):
        if 0 < len(item.data) <= SEED_MAX_BYTES:
            (folder / item.name).write_bytes(item.data)


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    if folders:
        seed(folders[0])
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
