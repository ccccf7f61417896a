"""The shapes world: procedural scenes whose every edit has a rendered ground truth.

A scene is flat-coloured shapes (disc, square, rectangle, triangle) or one cartoon face on a flat,
optionally banded or graded background. Geometry is in canvas fractions (0..1, y down), so one
scene renders at any square size: the demo model trains at 128 px and also works at 256 px.
The same scene description gives the training images, their captions, the benchmark's inputs
(images, object masks, point pairs) and its ground truths (the scene with the object moved,
recoloured, stretched or pasted), and the web editor's sample scenes.

Torch-free on purpose: the service (sample scenes), the engine (training) and the benchmark all
import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
ShapeKind = Literal["disc", "square", "rectangle", "triangle"]

SHAPE_COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "cyan": (40, 200, 220),
    "blue": (40, 80, 220),
    "purple": (130, 50, 180),
    "magenta": (220, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUNDS: dict[str, RGB] = {
    "grey": (128, 128, 128),
    "beige": (225, 210, 180),
    "sky blue": (140, 180, 225),
    "dark slate": (50, 55, 70),
}
GROUND: RGB = (95, 150, 80)
GROUND_TOP = 0.75  # the ground band covers the bottom quarter
SKINS: dict[str, RGB] = {"peach": (240, 200, 160), "tan": (205, 155, 110), "brown": (140, 95, 60)}
EYE: RGB = (30, 30, 35)
MOUTH: RGB = (120, 30, 40)
SHAPE_KINDS: tuple[ShapeKind, ...] = ("disc", "square", "rectangle", "triangle")
MIN_SIDE, MAX_SIDE = 0.15, 0.40  # shape sides as fractions of the canvas
SUPERSAMPLE = 4  # drawn at 4× and box-filtered down: anti-aliased edges like a photo's
FACE_PROBABILITY = 0.2


@dataclass(frozen=True)
class Shape:
    kind: ShapeKind
    colour: str  # a key of SHAPE_COLOURS
    cx: float  # centre, canvas fractions
    cy: float
    w: float  # bounding box, canvas fractions (disc and square: w == h)
    h: float

    def box(self, size: int) -> tuple[float, float, float, float]:
        return (
            (self.cx - self.w / 2) * size,
            (self.cy - self.h / 2) * size,
            (self.cx + self.w / 2) * size,
            (self.cy + self.h / 2) * size,
        )

    def moved(self, dx: float, dy: float) -> Shape:
        return replace(self, cx=self.cx + dx, cy=self.cy + dy)


@dataclass(frozen=True)
class Face:
    skin: str  # a key of SKINS
    cx: float
    cy: float
    rx: float  # head radii (a disc when rx == ry)
    ry: float
    eyes: tuple[tuple[float, float], tuple[float, float]]  # (x, y) of the left and right eye
    eye_radius: float
    mouth_width: float  # mouth arc, centred below the eyes
    mouth_y: float

    def with_eye(self, which: int, x: float, y: float) -> Face:
        eyes = list(self.eyes)
        eyes[which] = (x, y)
        return replace(self, eyes=(eyes[0], eyes[1]))


@dataclass(frozen=True)
class Scene:
    background: str  # a key of BACKGROUNDS
    ground: bool = False
    gradient: float = 0.0  # brightness change from top to bottom, in 0–255 units
    shapes: tuple[Shape, ...] = ()
    face: Face | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def caption(self) -> str:
        return caption(self)

    def render(self, size: int) -> Image.Image:
        return render(self, size)

    def with_shape(self, index: int, shape: Shape) -> Scene:
        shapes = list(self.shapes)
        shapes[index] = shape
        return replace(self, shapes=tuple(shapes))

    def without_shape(self, index: int) -> Scene:
        return replace(self, shapes=tuple(s for i, s in enumerate(self.shapes) if i != index))

    def plus_shape(self, shape: Shape) -> Scene:
        """The scene with `shape` drawn on top of everything."""
        return replace(self, shapes=(*self.shapes, shape))


# --- captions ---------------------------------------------------------------------------------


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(scene: Scene) -> str:
    """'a red disc and a blue square on a grey background' (shapes in drawing order)."""
    where = f"on {_article(scene.background)} {scene.background} background"
    if scene.ground:
        where += " with green ground"
    if scene.face is not None:
        return f"a cartoon face {where}"
    names = [f"{_article(s.colour)} {s.colour} {s.kind}" for s in scene.shapes]
    if len(names) > 1:
        listed = ", ".join(names[:-1]) + " and " + names[-1]
    else:
        listed = names[0] if names else "nothing"
    return f"{listed} {where}"


def caption_words() -> list[str]:
    """Every word a caption can hold (the demo tokenizer learns one token per word)."""
    words = {"a", "an", "and", "on", "background", "with", "green", "ground", "cartoon", "face", "nothing"}
    for name in (*SHAPE_COLOURS, *BACKGROUNDS, *SHAPE_KINDS):
        words.update(name.split())
    return sorted(words)


# --- rendering --------------------------------------------------------------------------------


def _background(scene: Scene, size: int) -> np.ndarray:
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = BACKGROUNDS[scene.background]
    if scene.gradient:
        ramp = (np.arange(size, dtype=np.float32) / max(size - 1, 1) - 0.5) * scene.gradient
        img += ramp[:, None, None]
    if scene.ground:
        top = GROUND_TOP * size
        rows = np.clip(np.arange(size, dtype=np.float32) + 1 - top, 0, 1)  # anti-aliased edge row
        img = img * (1 - rows[:, None, None]) + np.asarray(GROUND, np.float32) * rows[:, None, None]
    return img


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, size: int, fill: int | RGB) -> None:
    x0, y0, x1, y1 = shape.box(size)
    if shape.kind == "disc":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        draw.rectangle((x0, y0, x1, y1), fill=fill)


def _draw_face(draw: ImageDraw.ImageDraw, face: Face, size: int, parts: tuple[str, ...]) -> None:
    """Paint the named parts of the face ("head", "eyes", "mouth") in white."""
    s = size
    if "head" in parts:
        draw.ellipse(
            ((face.cx - face.rx) * s, (face.cy - face.ry) * s, (face.cx + face.rx) * s, (face.cy + face.ry) * s),
            fill=255,
        )
    if "eyes" in parts:
        r = face.eye_radius * s
        for x, y in face.eyes:
            draw.ellipse((x * s - r, y * s - r, x * s + r, y * s + r), fill=255)
    if "mouth" in parts:
        half = face.mouth_width / 2 * s
        top = face.mouth_y * s - half * 0.5
        draw.arc(
            (face.cx * s - half, top, face.cx * s + half, top + half),
            start=20,
            end=160,
            fill=255,
            width=max(1, round(0.025 * s)),
        )


def _coverage(size: int, paint: object) -> np.ndarray:
    """Fraction (0..1) of each pixel that `paint(draw, big_size)` covers, via supersampling."""
    big = size * SUPERSAMPLE
    layer = Image.new("L", (big, big), 0)
    paint(ImageDraw.Draw(layer), big)  # type: ignore[operator]
    return np.asarray(layer.resize((size, size), Image.BOX), dtype=np.float32) / 255


def render(scene: Scene, size: int) -> Image.Image:
    """The scene as a size×size RGB image (anti-aliased: drawn at 4× and box-filtered)."""
    img = _background(scene, size)
    for shape in scene.shapes:
        alpha = _coverage(size, lambda d, s, sh=shape: _draw_shape(d, sh, s, 255))[..., None]
        img = img * (1 - alpha) + np.asarray(SHAPE_COLOURS[shape.colour], np.float32) * alpha
    if scene.face is not None:
        face = scene.face
        for part, colour in (("head", SKINS[face.skin]), ("eyes", EYE), ("mouth", MOUTH)):
            alpha = _coverage(size, lambda d, s, p=part: _draw_face(d, face, s, (p,)))[..., None]
            img = img * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


def shape_mask(shape: Shape, size: int, threshold: float = 0.0) -> Image.Image:
    """The shape's silhouette (occlusion ignored) as an L mask (255 inside): every pixel it covers
    by more than `threshold`; the default takes the anti-aliased rim too."""
    cover = _coverage(size, lambda d, s: _draw_shape(d, shape, s, 255))
    return Image.fromarray(((cover > threshold) * 255).astype(np.uint8))


def visible_mask(scene: Scene, index: int, size: int, threshold: float = 0.5) -> np.ndarray:
    """Bool (size, size): the pixels where shape `index` is what the image shows."""
    own = _coverage(size, lambda d, s: _draw_shape(d, scene.shapes[index], s, 255))
    for above in scene.shapes[index + 1 :]:
        own = own * (1 - _coverage(size, lambda d, s, sh=above: _draw_shape(d, sh, s, 255)))
    return own > threshold


def face_mask(face: Face, size: int) -> Image.Image:
    cover = _coverage(size, lambda d, s: _draw_face(d, face, s, ("head", "eyes", "mouth")))
    return Image.fromarray(((cover > 0) * 255).astype(np.uint8))


# --- random scenes ----------------------------------------------------------------------------


def _random_shape(rng: np.random.Generator) -> Shape:
    kind: ShapeKind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    colour = list(SHAPE_COLOURS)[int(rng.integers(len(SHAPE_COLOURS)))]
    side = float(rng.uniform(MIN_SIDE, MAX_SIDE))
    w = h = side
    if kind == "rectangle":
        long, short = side, side / float(rng.uniform(1.5, 2.5))
        short = max(short, MIN_SIDE * 0.6)
        w, h = (long, short) if rng.random() < 0.5 else (short, long)
    elif kind == "triangle":
        h = side * float(rng.uniform(0.8, 1.1))
    cx = float(rng.uniform(w / 2, 1 - w / 2))
    cy = float(rng.uniform(h / 2, 1 - h / 2))
    return Shape(kind, colour, cx, cy, w, h)


def random_face(rng: np.random.Generator) -> Face:
    skin = list(SKINS)[int(rng.integers(len(SKINS)))]
    rx = float(rng.uniform(0.22, 0.34))
    ry = rx * float(rng.uniform(1.0, 1.25))
    cx = float(rng.uniform(rx + 0.02, 1 - rx - 0.02))
    cy = float(rng.uniform(ry + 0.02, 1 - ry - 0.02))
    ex, ey = rx * float(rng.uniform(0.3, 0.45)), ry * float(rng.uniform(0.15, 0.35))
    eye_radius = rx * float(rng.uniform(0.1, 0.16))
    return Face(
        skin=skin,
        cx=cx,
        cy=cy,
        rx=rx,
        ry=ry,
        eyes=((cx - ex, cy - ey), (cx + ex, cy - ey)),
        eye_radius=eye_radius,
        mouth_width=rx * float(rng.uniform(0.6, 1.0)),
        mouth_y=cy + ry * float(rng.uniform(0.35, 0.5)),
    )


def random_scene(rng: np.random.Generator | int, face_probability: float = FACE_PROBABILITY) -> Scene:
    """One scene of the world, deterministic for a seed (or drawn from a generator)."""
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    ground = bool(rng.random() < 0.3)
    gradient = float(rng.uniform(-30, 30)) if rng.random() < 0.3 else 0.0
    if rng.random() < face_probability:
        return Scene(background, ground, gradient, face=random_face(rng))
    shapes = tuple(_random_shape(rng) for _ in range(int(rng.integers(1, 4))))
    return Scene(background, ground, gradient, shapes=shapes)


# --- measuring an edit ------------------------------------------------------------------------


def colour_mask(image: Image.Image | np.ndarray, colour: RGB, tolerance: float = 60.0) -> np.ndarray:
    """Bool mask of the pixels within `tolerance` (RGB distance) of `colour`."""
    arr = np.asarray(image, dtype=np.float32)[..., :3]
    return np.linalg.norm(arr - np.asarray(colour, np.float32), axis=-1) < tolerance


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(x, y) of a bool mask's pixels, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return float(xs.mean()), float(ys.mean())


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB between two RGB images, optionally over the pixels of a bool mask."""
    x = np.asarray(a, dtype=np.float64)[..., :3]
    y = np.asarray(b, dtype=np.float64)[..., :3]
    diff = (x - y) ** 2
    if where is not None:
        if not where.any():
            return float("nan")
        diff = diff[where]
    mse = float(diff.mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
