"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) via dlib-bin."""

from __future__ import annotations

import dlib
import numpy as np

from lethe.embedding.base import check_chips
from lethe.errors import ModelError
from lethe.models import dlib_model_path, sha256_file
from lethe.types import EMBEDDING_DIM, Embedding, RGBImage, l2_normalise

#: dlib's ResNet, whichever runtime runs it (dlib's own or ONNX Runtime: the same vectors).
DLIB_MODEL_ID = "dlib-resnet-v1"


class DlibResnetEmbedder:
    """The reference embedder: dlib's own runtime on 150x150 chips with 0.25 padding."""

    name = "dlib-resnet"
    model_id = DLIB_MODEL_ID
    dim = EMBEDDING_DIM
    chip_size = 150
    chip_padding = 0.25
    alignment = "dlib"

    def __init__(self) -> None:
        path = dlib_model_path("resnet")
        self.model_sha256 = sha256_file(path)
        try:
            self._net = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load {path.name}: {exc}") from exc

    def embed(self, chips: list[RGBImage]) -> Embedding:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        check_chips(chips, self.chip_size)
        vectors = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return l2_normalise(np.array([np.asarray(v) for v in vectors], dtype=np.float32))
