"""Model files Lethe derives from an official one (dlib's ResNet converted to ONNX, SFace repaired)
kept in the per-user model cache with a sha256 sidecar, so every data folder reuses one copy; and
the one way Lethe opens such a graph on ONNX Runtime (:func:`cpu_session`).

A cached file is used only when its bytes match the sha256 recorded beside it; otherwise it is built
again. The file is written before its sidecar, each atomically, so a sidecar never vouches for a
missing or half-written file; two processes building at once each write a complete, identical file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from lethe.errors import ModelError
from lethe.storage import atomic_write

log = logging.getLogger(__name__)

_FOLDABLE = ("DequantizeLinear", "Reshape")


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded_sha(path: Path) -> str | None:
    try:
        text = sidecar(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return text[0] if text else None


def load_or_build(target: Path, build: Callable[[], bytes]) -> bytes:
    """The verified bytes of ``target``, built by ``build`` (which checks what it builds) and cached
    when missing or not matching its recorded sha256. Load the returned bytes, not the path, so what
    runs is what was checked."""
    if target.is_file():
        recorded = _recorded_sha(target)
        try:
            data = target.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the cached model {target}: {exc}") from exc
        if recorded == hashlib.sha256(data).hexdigest():
            return data
        log.warning(
            "cached model %s %s; preparing it again",
            target.name,
            "has no recorded sha256" if recorded is None else "does not match its recorded sha256",
        )
    data = build()
    digest = hashlib.sha256(data).hexdigest()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
        atomic_write(sidecar(target), f"{digest}  {target.name}\n".encode("ascii"))
    except OSError as exc:
        raise ModelError(f"cannot write the prepared model to {target.parent}: {exc}") from exc
    return data


def cpu_session(data: bytes, threads: int, what: str) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on ``data`` with ``threads`` intra-op threads, one inter-op
    thread, sequential execution and every graph optimisation; a graph it cannot load is a
    :class:`ModelError` naming ``what``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # e.g. SFace's unused initializers: dropped, not warned about
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelError(f"ONNX Runtime cannot load {what}: {exc}") from exc


def fold_constant_weights(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    """Evaluate the constant dequantization subgraphs (``DequantizeLinear`` and ``Reshape`` on
    initializers) once, by ONNX Runtime itself, and store their fp32 results as initializers."""
    graph = model.graph
    constant = {i.name for i in graph.initializer}
    folded: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type in _FOLDABLE and all(name in constant for name in node.input if name):
            folded.append(node)
            constant.update(node.output)
    if not folded:
        return model
    folded_outputs = {name for node in folded for name in node.output}
    rest = [node for node in graph.node if node not in folded]
    targets = sorted({name for node in rest for name in node.input if name in folded_outputs})
    subgraph = helper.make_graph(
        folded,
        "fold",
        [],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in targets],
        list(graph.initializer),
    )
    submodel = helper.make_model(subgraph, opset_imports=model.opset_import, ir_version=model.ir_version)
    values = cpu_session(submodel.SerializeToString(), 1, what).run(targets, {})
    needed = {name for node in rest for name in node.input}
    kept = [i for i in graph.initializer if i.name in needed and i.name not in folded_outputs]
    kept += [
        numpy_helper.from_array(np.asarray(v, np.float32), t) for t, v in zip(targets, values, strict=True)
    ]
    del graph.node[:]
    graph.node.extend(rest)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model
