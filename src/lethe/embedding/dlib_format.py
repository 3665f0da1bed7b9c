"""Read dlib's serialisation format and parse the face-recognition ResNet into plain numpy layers.

dlib writes a network with its own ``serialize()`` functions (``dlib/serialize.h``, ``dlib/dnn/*.h``):

* integers: one control byte (bit 7: negative, bits 0-3: byte count, bits 4-6 zero) followed by the
  absolute value in that many little-endian bytes;
* floating point scalars: a ``float_details`` pair, the int64 mantissa then the int16 exponent, each
  written as such an integer (value = mantissa * 2**exponent; exponent 32000/32001/32002 = +inf/-inf/nan);
* strings: the length as an integer, then the bytes; bools: the ASCII byte ``'1'`` or ``'0'``;
* tensors: a version integer, then num_samples, k, nr, nc, then the values: version 2 as raw
  little-endian IEEE float32, version 1 as one ``float_details`` per value;
* a network from the loss layer inwards: ``add_loss_layer`` = version, loss details, sub-network;
  ``add_layer`` = version, sub-network, layer details, then bookkeeping (bools and empty tensors);
  ``add_tag_layer`` / ``add_skip_layer`` = version, sub-network. The innermost ``add_layer`` holds
  the input layer instead of a sub-network.

Tag and skip layers carry no id in the file (the ids are C++ template arguments), so the parser is
driven by the network definition of ``dlib_face_recognition_resnet_model_v1`` (dlib's
``examples/dnn_face_recognition_ex.cpp``) and checks every layer it reads against it.

The parser returns the layers bottom-up (input first), the order in which they are evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lethe.errors import ModelError

FloatArray = npt.NDArray[np.float32]

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002
_MAX_STRING = 1 << 16


# ---------------------------------------------------------------------------------------------
# Low-level reader


class DlibReader:
    """A cursor over the bytes of a dlib-serialised object; every read checks bounds and format."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def error(self, message: str) -> ModelError:
        return ModelError(f"{self.source}: {message} (at byte {self.pos} of {len(self.data)})")

    def _take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.error(f"file is truncated: wanted {count} more bytes")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def read_int(self) -> int:
        control = self._take(1)[0]
        if control & 0x70:
            raise self.error(f"bad integer control byte 0x{control:02x}")
        size = control & 0x0F
        if size > 8:
            raise self.error(f"integer of {size} bytes")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def read_uint(self, what: str = "value") -> int:
        value = self.read_int()
        if value < 0:
            raise self.error(f"negative {what} {value}")
        return value

    def read_float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.error("floating point value in dlib's old text format is not supported")
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent >= _FLOAT_INF:
            if exponent == _FLOAT_INF:
                return math.inf
            if exponent == _FLOAT_NINF:
                return -math.inf
            if exponent == _FLOAT_NAN:
                return math.nan
            raise self.error(f"bad float exponent {exponent}")
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError as exc:
            raise self.error(f"float out of range ({mantissa} * 2**{exponent})") from exc

    def read_bool(self) -> bool:
        byte = self._take(1)
        if byte == b"1":
            return True
        if byte == b"0":
            return False
        raise self.error(f"bad bool byte {byte!r}")

    def read_string(self) -> str:
        size = self.read_uint("string length")
        if size > _MAX_STRING:
            raise self.error(f"implausible string length {size}")
        return self._take(size).decode("latin-1")

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        value = self.read_string()
        if value not in allowed:
            self.pos = start
            wanted = " or ".join(repr(a) for a in allowed)
            raise self.error(f"expected {wanted}, found {value[:40]!r}")
        return value

    def expect_int(self, what: str, *allowed: int) -> int:
        start = self.pos
        value = self.read_int()
        if value not in allowed:
            self.pos = start
            raise self.error(f"unexpected {what} {value}, expected {' or '.join(map(str, allowed))}")
        return value

    def read_tensor(self) -> FloatArray:
        """A ``resizable_tensor`` as a float32 array of shape (num_samples, k, nr, nc)."""
        version = self.expect_int("tensor version", 1, 2)
        shape = tuple(self.read_uint("tensor dimension") for _ in range(4))
        count = math.prod(shape)
        if version == 2:
            if 4 * count > self.remaining:
                raise self.error(f"file is truncated: tensor of {count} floats")
            values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
            self.pos += 4 * count
        else:
            if count > self.remaining // 2:  # each float_details takes at least 2 bytes
                raise self.error(f"file is truncated: tensor of {count} floats")
            values = np.array([self.read_float() for _ in range(count)], dtype=np.float64)
        out: FloatArray = values.astype(np.float32).reshape(shape)
        return out

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only its shape (num_samples, k, nr, nc) is stored."""
        self.expect_int("alias_tensor version", 1)
        n, k, nr, nc = (self.read_uint("tensor dimension") for _ in range(4))
        return n, k, nr, nc


# ---------------------------------------------------------------------------------------------
# Layers


@dataclass(frozen=True)
class InputRGB:
    """``input_rgb_image_sized``: value = (pixel - mean[channel]) / 256, channels R, G, B."""

    mean: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class Conv:
    filters: FloatArray  # (out, in, kh, kw), applied as correlation
    bias: FloatArray | None  # (out,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), zeros


@dataclass(frozen=True)
class Affine:
    """Per-channel ``x * gamma + beta`` (conv mode), possibly converted from stored batch-norm stats."""

    gamma: FloatArray  # (channels,)
    beta: FloatArray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class MaxPool:
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AvgPool:
    """Average pooling; ``size == (0, 0)`` means the whole feature map (``avg_pool_everything``)."""

    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Tag:
    """Remember the current output under ``tag`` (``tagN``)."""

    tag: int


@dataclass(frozen=True)
class Skip:
    """Continue from the output remembered under ``tag`` (``skipN``)."""

    tag: int


@dataclass(frozen=True)
class AddPrev:
    """Current output + the output remembered under ``tag``; smaller tensors are zero-padded at the end
    of every dimension to the larger size (dlib's ``tt::add`` with differing shapes)."""

    tag: int


@dataclass(frozen=True)
class FullyConnected:
    weights: FloatArray  # (inputs, outputs): y = x @ weights
    bias: FloatArray | None


Layer = Conv | Affine | Relu | MaxPool | AvgPool | Tag | Skip | AddPrev | FullyConnected


@dataclass(frozen=True)
class LossMetric:
    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class DlibNetwork:
    input: InputRGB
    layers: list[Layer]  # bottom-up: the first layer reads the input
    loss: LossMetric


# ---------------------------------------------------------------------------------------------
# The expected architecture, outermost first (the order of the headers in the file)


@dataclass(frozen=True)
class _Expect:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc_no_bias, tag, skip
    args: tuple[int, ...] = ()

    @property
    def is_wrapper(self) -> bool:
        return self.kind in ("tag", "skip")


def _block(filters: int, stride: int) -> list[_Expect]:
    # block<N,BN,stride,SUBNET> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        _Expect("affine"),
        _Expect("con", (filters, 3, 1)),
        _Expect("relu"),
        _Expect("affine"),
        _Expect("con", (filters, 3, stride)),
    ]


def _ares(filters: int) -> list[_Expect]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_Expect("relu"), _Expect("add_prev", (1,)), *_block(filters, 1), _Expect("tag", (1,))]


def _ares_down(filters: int) -> list[_Expect]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        _Expect("relu"),
        _Expect("add_prev", (2,)),
        _Expect("avg_pool", (2, 2)),
        _Expect("skip", (1,)),
        _Expect("tag", (2,)),
        *_block(filters, 2),
        _Expect("tag", (1,)),
    ]


def face_resnet_architecture() -> list[_Expect]:
    """``anet_type`` of dnn_face_recognition_ex.cpp below the loss layer, outermost first."""
    nodes = [_Expect("fc_no_bias", (128,)), _Expect("avg_pool", (0, 1))]
    nodes += _ares_down(256)  # alevel0
    nodes += _ares(256) + _ares(256) + _ares_down(256)  # alevel1
    nodes += _ares(128) + _ares(128) + _ares_down(128)  # alevel2
    nodes += _ares(64) + _ares(64) + _ares(64) + _ares_down(64)  # alevel3
    nodes += _ares(32) + _ares(32) + _ares(32)  # alevel4
    nodes += [_Expect("max_pool", (3, 2)), _Expect("relu"), _Expect("affine"), _Expect("con", (32, 7, 2))]
    return nodes


# ---------------------------------------------------------------------------------------------
# Layer details


def _default_padding(size: int, stride: int) -> int:
    # dlib's template default for con_, max_pool_ and avg_pool_: stride != 1 ? 0 : size/2
    return 0 if stride != 1 else size // 2


def _read_con(r: DlibReader, expect: _Expect) -> Conv:
    version = r.expect_string("con_4", "con_5")
    params = r.read_tensor().reshape(-1)
    num_filters = r.read_uint("num_filters")
    nr, nc = r.read_uint("nr"), r.read_uint("nc")
    stride_y, stride_x = r.read_uint("stride"), r.read_uint("stride")
    pad_y, pad_x = r.read_uint("padding"), r.read_uint("padding")
    fshape = r.read_alias_tensor()
    bshape = r.read_alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.read_float()
    use_bias = r.read_bool() if version == "con_5" else True
    want_filters, size, stride = expect.args
    pad = _default_padding(size, stride)
    if (num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x) != (
        want_filters,
        size,
        size,
        stride,
        stride,
        pad,
        pad,
    ):
        raise r.error(
            f"con layer is {num_filters} filters {nr}x{nc} stride {stride_y},{stride_x} padding "
            f"{pad_y},{pad_x}; expected {want_filters} filters {size}x{size} stride {stride} padding {pad}"
        )
    if fshape[0] != num_filters or fshape[2:] != (nr, nc):
        raise r.error(f"con filter shape {fshape} does not match {num_filters} {nr}x{nc} filters")
    n_filter = math.prod(fshape)
    n_bias = math.prod(bshape) if use_bias else 0
    if use_bias and n_bias != num_filters:
        raise r.error(f"con bias shape {bshape} does not match {num_filters} filters")
    if params.size != n_filter + n_bias:
        raise r.error(f"con has {params.size} parameters, expected {n_filter + n_bias}")
    filters = params[:n_filter].reshape(fshape).copy()
    bias = params[n_filter:].copy() if use_bias else None
    return Conv(filters=filters, bias=bias, stride=(stride_y, stride_x), padding=(pad_y, pad_x))


def _read_bn_as_affine(r: DlibReader) -> Affine:
    # bn_<CONV_MODE> serialised as "bn_con2"; affine_(const bn_&) turns it into
    # gamma' = gamma / sqrt(running_variance + eps), beta' = beta - gamma' * running_mean (in float32).
    params = r.read_tensor().reshape(-1)
    gshape = r.read_alias_tensor()
    bshape = r.read_alias_tensor()
    r.read_tensor()  # means (of the last training batch)
    r.read_tensor()  # invstds
    running_means = r.read_tensor().reshape(-1)
    running_vars = r.read_tensor().reshape(-1)
    r.read_uint("num_updates")
    r.read_uint("running_stats_window_size")
    for _ in range(4):
        r.read_float()
    eps = r.read_float()
    channels = math.prod(gshape)
    if math.prod(bshape) != channels or params.size != 2 * channels:
        raise r.error(f"bn_con has {params.size} parameters for {channels} channels")
    if running_means.size != channels or running_vars.size != channels:
        raise r.error("bn_con running statistics do not match its channels")
    gamma = params[:channels] / np.sqrt(running_vars + np.float32(eps))
    beta = params[channels:] - gamma * running_means
    return Affine(gamma=gamma.astype(np.float32), beta=beta.astype(np.float32))


def _read_affine(r: DlibReader) -> Affine:
    version = r.expect_string("affine_", "affine_2", "bn_con2")
    if version == "bn_con2":
        return _read_bn_as_affine(r)
    params = r.read_tensor().reshape(-1)
    gshape = r.read_alias_tensor()
    bshape = r.read_alias_tensor()
    mode = r.read_int()
    disabled = r.read_bool() if version == "affine_2" else False
    if disabled:
        raise r.error("disabled affine layers are not supported")
    if mode != 0:  # layer_mode: CONV_MODE = 0, FC_MODE = 1
        raise r.error(f"affine layer in mode {mode}; only conv mode (0) is supported")
    channels = math.prod(gshape)
    if math.prod(bshape) != channels or params.size != 2 * channels:
        raise r.error(f"affine layer has {params.size} parameters for {channels} channels")
    return Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())


def _read_relu(r: DlibReader) -> Relu:
    version = r.expect_string("relu_", "relu_2")
    if version == "relu_2" and r.read_bool():
        raise r.error("disabled relu layers are not supported")
    return Relu()


def _read_pool(r: DlibReader, expect: _Expect) -> MaxPool | AvgPool:
    name = "max_pool_2" if expect.kind == "max_pool" else "avg_pool_2"
    r.expect_string(name)
    nr, nc = r.read_int(), r.read_int()
    stride_y, stride_x = r.read_int(), r.read_int()
    pad_y, pad_x = r.read_int(), r.read_int()
    size, stride = expect.args
    pad = _default_padding(size, stride)
    if (nr, nc, stride_y, stride_x, pad_y, pad_x) != (size, size, stride, stride, pad, pad):
        raise r.error(
            f"{name} is {nr}x{nc} stride {stride_y},{stride_x} padding {pad_y},{pad_x}; "
            f"expected {size}x{size} stride {stride} padding {pad}"
        )
    cls = MaxPool if expect.kind == "max_pool" else AvgPool
    return cls(size=(nr, nc), stride=(stride_y, stride_x), padding=(pad_y, pad_x))


def _read_fc(r: DlibReader, expect: _Expect) -> FullyConnected:
    version = r.expect_string("fc_2", "fc_3")
    num_outputs = r.read_uint("num_outputs")
    num_inputs = r.read_uint("num_inputs")
    params = r.read_tensor().reshape(-1)
    wshape = r.read_alias_tensor()
    r.read_alias_tensor()
    bias_mode = r.read_int()
    for _ in range(4):
        r.read_float()
    use_bias = r.read_bool() if version == "fc_3" else True
    if num_outputs != expect.args[0]:
        raise r.error(f"fc layer has {num_outputs} outputs, expected {expect.args[0]}")
    if bias_mode != 1:  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        raise r.error(f"fc layer has bias mode {bias_mode}, expected fc_no_bias (1)")
    del use_bias  # irrelevant without a bias
    if wshape[:2] != (num_inputs, num_outputs) or params.size != num_inputs * num_outputs:
        raise r.error(f"fc layer has {params.size} parameters for {num_inputs} x {num_outputs}")
    return FullyConnected(weights=params.reshape(num_inputs, num_outputs).copy(), bias=None)


def _read_add_prev(r: DlibReader, expect: _Expect) -> AddPrev:
    r.expect_string("add_prev_")
    return AddPrev(tag=expect.args[0])


def _read_details(r: DlibReader, expect: _Expect) -> Layer:
    if expect.kind == "con":
        return _read_con(r, expect)
    if expect.kind == "affine":
        return _read_affine(r)
    if expect.kind == "relu":
        return _read_relu(r)
    if expect.kind in ("max_pool", "avg_pool"):
        if expect.args == (0, 1):  # avg_pool_everything = avg_pool_<0,0,1,1>
            r.expect_string("avg_pool_2")
            values = [r.read_int() for _ in range(6)]
            if values != [0, 0, 1, 1, 0, 0]:
                raise r.error(f"avg_pool_everything has parameters {values}")
            return AvgPool(size=(0, 0), stride=(1, 1), padding=(0, 0))
        return _read_pool(r, expect)
    if expect.kind == "add_prev":
        return _read_add_prev(r, expect)
    if expect.kind == "fc_no_bias":
        return _read_fc(r, expect)
    raise AssertionError(expect.kind)


def _read_add_layer_tail(r: DlibReader, version: int, *, on_input: bool) -> None:
    """The bookkeeping ``add_layer`` writes after its details: three bools and cached tensors."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, ..._disabled
        r.read_bool()
    # on the input: x_grad, cached_output, grad_final; above it: x_grad, cached_output [, params_grad]
    tensors = 3 if on_input or version == 2 else 2
    for _ in range(tensors):
        r.read_tensor()
    if on_input and version == 3:
        r.read_uint("sample_expansion_factor")


def _read_input(r: DlibReader) -> InputRGB:
    r.expect_string("input_rgb_image_sized")
    mean = (r.read_float(), r.read_float(), r.read_float())
    rows, cols = r.read_uint("rows"), r.read_uint("cols")
    return InputRGB(mean=mean, rows=rows, cols=cols)


def _read_loss(r: DlibReader) -> LossMetric:
    version = r.expect_string("loss_metric_", "loss_metric_2")
    if version == "loss_metric_":
        return LossMetric(margin=0.1, distance_threshold=0.75)
    return LossMetric(margin=r.read_float(), distance_threshold=r.read_float())


def parse_face_resnet(data: bytes, source: str = "<bytes>") -> DlibNetwork:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` (bytes) into layers; ModelError if it is not."""
    r = DlibReader(data, source)
    r.expect_int("add_loss_layer version", 1)
    loss = _read_loss(r)
    architecture = face_resnet_architecture()
    versions: list[int] = []
    for index, node in enumerate(architecture):
        innermost = index == len(architecture) - 1
        if node.is_wrapper:
            versions.append(r.expect_int(f"{node.kind} layer version", 1))
        elif innermost:
            versions.append(r.expect_int("input add_layer version", 2, 3))
        else:
            versions.append(r.expect_int("add_layer version", 1, 2))
    net_input = _read_input(r)
    layers: list[Layer] = []
    for index in range(len(architecture) - 1, -1, -1):
        node = architecture[index]
        if node.kind == "tag":
            layers.append(Tag(node.args[0]))
            continue
        if node.kind == "skip":
            layers.append(Skip(node.args[0]))
            continue
        layers.append(_read_details(r, node))
        _read_add_layer_tail(r, versions[index], on_input=index == len(architecture) - 1)
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected bytes after the network")
    _check_shapes(net_input, layers, r)
    return DlibNetwork(input=net_input, layers=layers, loss=loss)


def _check_shapes(net_input: InputRGB, layers: list[Layer], r: DlibReader) -> None:
    """Channel counts must chain: each conv reads what the layer below produced."""
    channels = 3
    tags: dict[int, int] = {}
    for layer in layers:
        if isinstance(layer, Conv):
            if layer.filters.shape[1] != channels:
                raise r.error(f"conv expects {layer.filters.shape[1]} input channels, gets {channels}")
            channels = layer.filters.shape[0]
        elif isinstance(layer, Affine):
            if layer.gamma.size != channels:
                raise r.error(f"affine layer has {layer.gamma.size} channels, input has {channels}")
        elif isinstance(layer, Tag):
            tags[layer.tag] = channels
        elif isinstance(layer, Skip):
            channels = tags[layer.tag]
        elif isinstance(layer, AddPrev):
            channels = max(channels, tags[layer.tag])
        elif isinstance(layer, FullyConnected) and layer.weights.shape[0] != channels:
            raise r.error(f"fc layer expects {layer.weights.shape[0]} inputs, gets {channels} channels")
    if (net_input.rows, net_input.cols) != (150, 150):
        raise r.error(f"input is {net_input.rows}x{net_input.cols}, expected 150x150")


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - kernel) // stride


def output_shapes(net: DlibNetwork) -> list[tuple[int, int, int]]:
    """(channels, rows, cols) of one sample after each layer, following dlib's size rules."""
    shape = (3, net.input.rows, net.input.cols)
    tags: dict[int, tuple[int, int, int]] = {}
    shapes = []
    for layer in net.layers:
        if isinstance(layer, Conv):
            out, _, kh, kw = layer.filters.shape
            (sy, sx), (py, px) = layer.stride, layer.padding
            shape = (out, _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))
        elif isinstance(layer, MaxPool | AvgPool):
            if layer.size == (0, 0):
                shape = (shape[0], 1, 1)
            else:
                (kh, kw), (sy, sx), (py, px) = layer.size, layer.stride, layer.padding
                shape = (shape[0], _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))
        elif isinstance(layer, Tag):
            tags[layer.tag] = shape
        elif isinstance(layer, Skip):
            shape = tags[layer.tag]
        elif isinstance(layer, AddPrev):
            other = tags[layer.tag]
            shape = (max(shape[0], other[0]), max(shape[1], other[1]), max(shape[2], other[2]))
        elif isinstance(layer, FullyConnected):
            shape = (layer.weights.shape[1], 1, 1)
        shapes.append(shape)
    return shapes


def multiply_accumulates(net: DlibNetwork) -> int:
    """Multiply-accumulate operations of one forward pass (convolutions and fully connected layers)."""
    total = 0
    for layer, shape in zip(net.layers, output_shapes(net), strict=True):
        if isinstance(layer, Conv):
            total += shape[0] * shape[1] * shape[2] * math.prod(layer.filters.shape[1:])
        elif isinstance(layer, FullyConnected):
            total += layer.weights.size
    return total


def load_face_resnet(path: Path) -> DlibNetwork:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    return parse_face_resnet(data, path.name)
