"""The 112x112 face chip of ArcFace-family embedders (SFace): a 5-point similarity alignment.

The five points are, in image terms from left to right: the person's right eye centre, left eye
centre, nose tip, right and left mouth corners -- YuNet's landmark order. A similarity transform
(rotation, uniform scale, translation; least squares, Umeyama 1991) maps them onto the standard
template, and the image is resampled bilinearly through it (outside the photo: black).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from lethe.errors import InputError
from lethe.types import Landmarks5, RGBImage

CHIP_SIZE = 112
#: The standard ArcFace template for a 112x112 chip.
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(points: npt.ArrayLike, template: npt.NDArray[np.float64] = TEMPLATE) -> np.ndarray:
    """The 2x3 matrix of the least-squares similarity transform taking ``points`` to ``template``."""
    src = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if src.shape != template.shape or not np.isfinite(src).all():
        raise InputError(f"need {len(template)} finite landmark points, got {src.shape}")
    src_mean, dst_mean = src.mean(axis=0), template.mean(axis=0)
    src_c, dst_c = src - src_mean, template - dst_mean
    variance = (src_c**2).sum() / len(src)
    if variance <= 1e-12:
        raise InputError("landmark points coincide: no alignment")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign) / variance)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def arcface_chip(image: RGBImage, landmarks: Landmarks5, size: int = CHIP_SIZE) -> RGBImage:
    """The face warped onto the template: a ``size`` x ``size`` RGB uint8 chip."""
    matrix = similarity_transform(landmarks, TEMPLATE * (size / CHIP_SIZE))
    chip = cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
    )
    return np.ascontiguousarray(chip, dtype=np.uint8)
