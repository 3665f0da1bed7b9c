"""dlib's face-recognition ResNet on ONNX Runtime: the same 128-D vectors as dlib, faster.

The runtime side: :class:`OnnxResnetEmbedder` loads the verified conversion that
:mod:`lethe.embedding.dlib_onnx` makes (and caches) from dlib's ``.dat`` file, and runs it in
batches on one ONNX Runtime session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from lethe.embedding.base import check_chips, check_runtime
from lethe.embedding.dlib_onnx import INPUT_NAME, OUTPUT_NAME, ensure_onnx_model
from lethe.embedding.dlib_resnet import DLIB_MODEL_ID
from lethe.embedding.prepared import cpu_session
from lethe.errors import ModelError
from lethe.models import dlib_model_path, sha256_file
from lethe.types import EMBEDDING_DIM, Embedding, RGBImage, l2_normalise


class OnnxResnetEmbedder:
    """dlib's ResNet on ONNX Runtime: the same 128-D vectors as :class:`DlibResnetEmbedder`, faster.

    ``threads`` is ONNX Runtime's intra-op thread count (1 = run on the calling thread only, the
    right choice when ingest already runs one worker per core); ``batch_size`` chips go through the
    network at once."""

    name = "dlib-resnet-onnx"
    model_id = DLIB_MODEL_ID
    dim = EMBEDDING_DIM
    chip_size = 150
    chip_padding = 0.25
    alignment = "dlib"

    def __init__(
        self, cache_dir: Path, threads: int = 1, batch_size: int = 32, *, dat_path: Path | None = None
    ) -> None:
        check_runtime(threads, batch_size)
        self.threads = threads
        self.batch_size = batch_size
        self.model_path, data = ensure_onnx_model(cache_dir, dat_path)
        self.model_sha256 = sha256_file(dat_path if dat_path is not None else dlib_model_path("resnet"))
        self._session = cpu_session(data, threads, str(self.model_path))

    def embed(self, chips: list[RGBImage]) -> Embedding:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        check_chips(chips, self.chip_size)
        return l2_normalise(self.descriptors(chips))

    def descriptors(self, chips: list[RGBImage]) -> npt.NDArray[np.float32]:
        """The raw descriptors (what dlib's ``compute_face_descriptor`` returns), unnormalised."""
        out: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(chips), self.batch_size):
            batch = np.stack(chips[start : start + self.batch_size])
            try:
                (result,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
            except Exception as exc:  # onnxruntime raises its own pybind exception types
                raise ModelError(f"ONNX Runtime failed on {self.model_path.name}: {exc}") from exc
            out.append(np.asarray(result, dtype=np.float32))
        return np.concatenate(out, axis=0)
