"""Edit cases of the shapes world: inputs, parameters and the rendered ground truth of each task.

One case is everything an edit needs (images and masks by the API's field names, the task's
parameters) plus what it should produce (the ground-truth image) and what to measure it by (the
edited object's colour, where it should end up, the region that must stay as it was). The quality
benchmark draws many cases per task from seeds; the web editor's sample scenes and the README's
examples are fixed cases (`sample`). Coordinates are in the case's pixels.

Torch-free: the service serves the sample scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from PIL import Image

from diffeditor import world
from diffeditor.world import Scene, Shape

CaseTask = Literal["move", "resize", "drag", "landmark", "appearance", "paste"]
CASE_TASKS: tuple[CaseTask, ...] = ("move", "resize", "drag", "landmark", "appearance", "paste")
MIN_COLOUR_DISTANCE = 110.0  # an edited object's colour is this far from every other colour in its scene
SAMPLE_SEEDS: dict[str, int] = {"move": 3, "resize": 5, "drag": 2, "landmark": 1, "appearance": 4, "paste": 6}


@dataclass
class Case:
    name: str
    task: CaseTask
    engine_task: str  # resize runs as the engine's move task with a scale
    size: int
    params: dict  # the task's parameters (diffeditor.tasks), prompt included
    images: dict[str, Image.Image]  # image, mask, reference, reference_mask, region_mask as needed
    truth: Image.Image  # the scene rendered with the edit done
    # what the benchmark measures, in this case's pixels:
    colour: tuple[int, int, int] | None = None  # the edited object's colour (appearance: the new one)
    target: tuple[float, float] | None = None  # where the object's centroid (or dragged edge, or eye) should be
    source_mask: np.ndarray | None = None  # bool: where the object was
    truth_mask: np.ndarray | None = None  # bool: where the object should be
    keep_mask: np.ndarray | None = None  # bool: pixels the edit must leave as they were
    extra: dict = field(default_factory=dict)


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def _scene_colours(scene: Scene) -> list[tuple[int, int, int]]:
    cols = [world.BACKGROUNDS[scene.background]]
    if scene.ground:
        cols.append(world.GROUND)
    if scene.gradient:
        base = world.BACKGROUNDS[scene.background]
        cols += [tuple(int(np.clip(c + s * scene.gradient / 2, 0, 255)) for c in base) for s in (-1, 1)]  # type: ignore[misc]
    return cols


def _distinct(colour: str, others: list[tuple[int, int, int]]) -> bool:
    rgb = world.SHAPE_COLOURS[colour]
    return all(_distance(rgb, o) >= MIN_COLOUR_DISTANCE for o in others)


def _boxes_apart(a: Shape, b: Shape, margin: float = 0.04) -> bool:
    return abs(a.cx - b.cx) * 2 >= a.w + b.w + 2 * margin or abs(a.cy - b.cy) * 2 >= a.h + b.h + 2 * margin


def _inside(s: Shape, margin: float = 0.03) -> bool:
    return (
        s.cx - s.w / 2 >= margin
        and s.cx + s.w / 2 <= 1 - margin
        and s.cy - s.h / 2 >= margin
        and s.cy + s.h / 2 <= 1 - margin
    )


def _background(rng: np.random.Generator) -> Scene:
    name = list(world.BACKGROUNDS)[int(rng.integers(len(world.BACKGROUNDS)))]
    return Scene(
        name, ground=bool(rng.random() < 0.3), gradient=float(rng.uniform(-20, 20)) if rng.random() < 0.3 else 0.0
    )


def _shape(rng: np.random.Generator, scene: Scene, kinds: tuple[str, ...], side: tuple[float, float]) -> Shape:
    """A random shape of `kinds` whose colour stands out from the scene's other colours."""
    others = _scene_colours(scene) + [world.SHAPE_COLOURS[s.colour] for s in scene.shapes]
    colours = [c for c in world.SHAPE_COLOURS if _distinct(c, others)]
    kind = kinds[int(rng.integers(len(kinds)))]
    colour = colours[int(rng.integers(len(colours)))]
    s = float(rng.uniform(*side))
    w, h = s, s
    if kind == "rectangle":
        w, h = s, s / float(rng.uniform(1.6, 2.2))
        if rng.random() < 0.5:
            w, h = h, w
    return Shape(kind, colour, float(rng.uniform(w / 2, 1 - w / 2)), float(rng.uniform(h / 2, 1 - h / 2)), w, h)  # type: ignore[arg-type]


def _place(rng: np.random.Generator, scene: Scene, kinds: tuple[str, ...], side: tuple[float, float]) -> Shape:
    for _ in range(200):
        s = _shape(rng, scene, kinds, side)
        if _inside(s) and all(_boxes_apart(s, o) for o in scene.shapes):
            return s
    raise RuntimeError("no room for another shape")  # not reached for the sizes used here


def _mask(shape: Shape, size: int) -> np.ndarray:
    return np.asarray(world.shape_mask(shape, size)) > 0


def grow(mask: np.ndarray, px: int = 1) -> np.ndarray:
    """The mask dilated by `px` pixels (4-neighbourhood)."""
    out = mask.copy()
    for _ in range(px):
        g = out.copy()
        g[1:] |= out[:-1]
        g[:-1] |= out[1:]
        g[:, 1:] |= out[:, :-1]
        g[:, :-1] |= out[:, 1:]
        out = g
    return out


def _l(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.uint8) * 255)


def _centre(mask: np.ndarray) -> tuple[float, float]:
    c = world.centroid(mask)
    assert c is not None
    return c


def move_case(seed: int, size: int = 128, scale: float = 1.0) -> Case:
    """Move (or, with a scale, resize) the top shape of a scene with one or two others."""
    rng = np.random.default_rng([seed, 1])
    for _ in range(100):
        scene = _background(rng)
        for _ in range(int(rng.integers(0, 2))):
            scene = scene.plus_shape(_place(rng, scene, world.SHAPE_KINDS, (0.18, 0.28)))
        obj = _place(rng, scene, ("disc", "square", "triangle", "rectangle"), (0.2, 0.3))
        if scale == 1.0:
            dx, dy = (float(v) for v in rng.uniform(-0.35, 0.35, size=2))
            moved = obj.moved(dx, dy)
        else:
            dx = dy = 0.0  # the engine scales about the canvas centre (§8.1): centre c → ½ + r(c − ½)
            moved = replace(
                obj, cx=0.5 + scale * (obj.cx - 0.5), cy=0.5 + scale * (obj.cy - 0.5), w=obj.w * scale, h=obj.h * scale
            )
        if scale == 1.0 and np.hypot(dx, dy) < 0.15:
            continue
        if _inside(moved) and all(_boxes_apart(moved, o) for o in scene.shapes):
            break
    full = scene.plus_shape(obj)
    truth = scene.plus_shape(moved)
    src, dst = _mask(obj, size), _mask(moved, size)
    offset = [round(dx * size), round(dy * size)]
    task: CaseTask = "move" if scale == 1.0 else "resize"
    params: dict = {"task": "move", "prompt": full.caption(), "offset": offset, "scale": scale}
    return Case(
        name=f"{task}-{seed}",
        task=task,
        engine_task="move",
        size=size,
        params=params,
        images={"image": full.render(size), "mask": _l(src)},
        truth=truth.render(size),
        colour=world.SHAPE_COLOURS[obj.colour],
        target=_centre(np.asarray(world.shape_mask(moved, size, 0.5)) > 0),
        source_mask=src,
        truth_mask=dst,
        keep_mask=~grow(src | dst, 2),
        extra={"scale": scale},
    )


def drag_case(seed: int, size: int = 128) -> Case:
    """Drag the right (or bottom) edge of a rectangle or square outwards: it stretches."""
    rng = np.random.default_rng([seed, 2])
    for _ in range(100):
        scene = _background(rng)
        obj = _place(rng, scene, ("rectangle", "square"), (0.2, 0.3))
        horizontal = bool(rng.random() < 0.5)
        d = float(rng.uniform(0.1, 0.18))
        if horizontal:
            stretched = replace(obj, cx=obj.cx + d / 2, w=obj.w + d)
        else:
            stretched = replace(obj, cy=obj.cy + d / 2, h=obj.h + d)
        if _inside(stretched):
            break
    full = scene.plus_shape(obj)
    truth = scene.plus_shape(stretched)
    if horizontal:
        handle = ((obj.cx + obj.w / 2) * size - 1, obj.cy * size)
        target = (handle[0] + d * size, handle[1])
    else:
        handle = (obj.cx * size, (obj.cy + obj.h / 2) * size - 1)
        target = (handle[0], handle[1] + d * size)
    src, dst = _mask(obj, size), _mask(stretched, size)
    region = grow(src | dst, 3)
    params = {
        "task": "drag",
        "prompt": full.caption(),
        "points": [[round(handle[0]), round(handle[1]), round(target[0]), round(target[1])]],
    }
    return Case(
        name=f"drag-{seed}",
        task="drag",
        engine_task="drag",
        size=size,
        params=params,
        images={"image": full.render(size), "mask": _l(region)},
        truth=truth.render(size),
        colour=world.SHAPE_COLOURS[obj.colour],
        target=target,
        source_mask=src,
        truth_mask=dst,
        keep_mask=~grow(region, 2),
        extra={"axis": "x" if horizontal else "y", "edge_from": handle[0] if horizontal else handle[1]},
    )


def landmark_case(seed: int, size: int = 128) -> Case:
    """Move one eye of a cartoon face; the other eye and the mouth are held in place."""
    rng = np.random.default_rng([seed, 3])
    scene = _background(rng)
    face = world.random_face(rng)
    which = int(rng.integers(2))
    ex, ey = face.eyes[which]
    angle = float(rng.uniform(0, 2 * np.pi))
    step = face.rx * float(rng.uniform(0.25, 0.35))
    nx, ny = float(ex + step * np.cos(angle)), float(ey + step * np.sin(angle) * 0.6)
    moved = face.with_eye(which, nx, ny)
    other = face.eyes[1 - which]
    s = size
    points = [
        [ex * s, ey * s, nx * s, ny * s],
        [other[0] * s, other[1] * s, other[0] * s, other[1] * s],
        [face.cx * s, face.mouth_y * s, face.cx * s, face.mouth_y * s],
    ]
    full = replace(scene, face=face)
    truth = replace(scene, face=moved)
    head = np.asarray(world.face_mask(face, size)) > 0
    return Case(
        name=f"landmark-{seed}",
        task="landmark",
        engine_task="landmark",
        size=size,
        params={"task": "landmark", "prompt": full.caption(), "points": [[round(v, 1) for v in p] for p in points]},
        images={"image": full.render(size)},
        truth=truth.render(size),
        colour=world.EYE,
        target=(nx * s, ny * s),
        source_mask=head,
        keep_mask=~grow(head, 3),
        extra={
            "eye_from": (ex * s, ey * s),
            "other_eye": (other[0] * s, other[1] * s),
            "eye_radius": face.eye_radius * s,
        },
    )


def appearance_case(seed: int, size: int = 128) -> Case:
    """Give a base object the appearance (colour) of a reference object of the same kind."""
    rng = np.random.default_rng([seed, 4])
    base = _background(rng)
    obj = _place(rng, base, ("disc", "square", "triangle", "rectangle"), (0.25, 0.35))
    ref_scene = _background(rng)
    others = _scene_colours(base) + [world.SHAPE_COLOURS[obj.colour]] + _scene_colours(ref_scene)
    colours = [c for c in world.SHAPE_COLOURS if _distinct(c, others)]
    new_colour = colours[int(rng.integers(len(colours)))]
    ref_obj = replace(_place(rng, ref_scene, (obj.kind,), (0.25, 0.35)), colour=new_colour)
    full, ref_full = base.plus_shape(obj), ref_scene.plus_shape(ref_obj)
    truth = base.plus_shape(replace(obj, colour=new_colour))
    m = _mask(obj, size)
    params = {"task": "appearance", "prompt": full.caption(), "reference_prompt": ref_full.caption()}
    return Case(
        name=f"appearance-{seed}",
        task="appearance",
        engine_task="appearance",
        size=size,
        params=params,
        images={
            "image": full.render(size),
            "mask": _l(m),
            "reference": ref_full.render(size),
            "reference_mask": _l(_mask(ref_obj, size)),
        },
        truth=truth.render(size),
        colour=world.SHAPE_COLOURS[new_colour],
        source_mask=m,
        truth_mask=m,
        keep_mask=~grow(m, 2),
        extra={"old_colour": world.SHAPE_COLOURS[obj.colour]},
    )


def paste_case(seed: int, size: int = 128) -> Case:
    """Paste an object from a reference scene into a base scene at an offset."""
    rng = np.random.default_rng([seed, 5])
    for _ in range(100):
        base = _background(rng)
        if rng.random() < 0.5:
            base = base.plus_shape(_place(rng, base, world.SHAPE_KINDS, (0.18, 0.26)))
        ref_scene = _background(rng)
        colours_taken = _scene_colours(base) + [world.SHAPE_COLOURS[s.colour] for s in base.shapes]
        obj = _shape(
            rng, replace(ref_scene, shapes=tuple(base.shapes)), ("disc", "square", "triangle", "rectangle"), (0.2, 0.3)
        )
        if not _inside(obj) or not _distinct(obj.colour, colours_taken):
            continue
        dx, dy = (float(v) for v in rng.uniform(-0.3, 0.3, size=2))
        pasted = obj.moved(dx, dy)
        if _inside(pasted) and all(_boxes_apart(pasted, o) for o in base.shapes):
            break
    ref_full = ref_scene.plus_shape(obj)
    truth = base.plus_shape(pasted)
    dst = _mask(pasted, size)
    params = {
        "task": "paste",
        "prompt": base.caption() if base.shapes else truth.caption(),
        "reference_prompt": ref_full.caption(),
        "offset": [round(dx * size), round(dy * size)],
    }
    return Case(
        name=f"paste-{seed}",
        task="paste",
        engine_task="paste",
        size=size,
        params=params,
        images={"image": base.render(size), "reference": ref_full.render(size), "reference_mask": _l(_mask(obj, size))},
        truth=truth.render(size),
        colour=world.SHAPE_COLOURS[obj.colour],
        target=_centre(np.asarray(world.shape_mask(pasted, size, 0.5)) > 0),
        truth_mask=dst,
        keep_mask=~grow(dst, 2),
    )


def make_case(task: CaseTask, seed: int, size: int = 128) -> Case:
    if task == "move":
        return move_case(seed, size)
    if task == "resize":
        r = (0.7, 1.3)[seed % 2]
        return move_case(seed, size, scale=r)
    return {"drag": drag_case, "landmark": landmark_case, "appearance": appearance_case, "paste": paste_case}[task](
        seed, size
    )


def sample(task: CaseTask, size: int = 128) -> Case:
    """The fixed sample scene of a task (web editor, README)."""
    return make_case(task, SAMPLE_SEEDS[task], size)
