"""Rendering: a video plan to yuv420p frames (a pure function of the plan)."""

from __future__ import annotations

import numpy as np

from dkp.data.synthetic.config import (
    BRIEF_COLOURS,
    COARSE_TINTS,
    FINE_TEXTURES,
    MEAN_LUMA,
    TAPER,
    SyntheticConfig,
)
from dkp.data.synthetic.plan import VideoPlan


def _rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """BT.601 limited range, what swscale assumes for yuv420p without colour tags."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def _texture(config: SyntheticConfig, label: str) -> np.ndarray:
    """The object's luma patch (size x size, uint8) for class ``label``: a period-2 texture
    (fine detail), else flat at the textures' mean."""
    size = config.object_size
    fine = dict(FINE_TEXTURES[: config.fine_classes])
    if label not in fine:
        return np.full((size, size), MEAN_LUMA, np.uint8)
    pattern = np.tile(np.array(fine[label]), (size // 2 + 1, size // 2 + 1))[:size, :size]
    # A raised-cosine taper: a hard edge would leak the texture through the 2x downscale.
    k = np.arange(size, dtype=np.float64)
    edge = np.minimum(k + 0.5, size - k - 0.5) / TAPER
    window = np.where(edge >= 1, 1.0, 0.5 - 0.5 * np.cos(np.pi * np.clip(edge, 0, 1)))
    luma = MEAN_LUMA + config.texture_amplitude * pattern * np.outer(window, window)
    return np.clip(np.rint(luma), 16, 235).astype(np.uint8)


def object_chroma(config: SyntheticConfig, label: str) -> tuple[int, int]:
    """The object's (u, v): its class tint (coarse colour), else grey."""
    du, dv = dict(COARSE_TINTS[: config.coarse_classes]).get(label, (0.0, 0.0))
    return round(128 + du), round(128 + dv)


def _bounce(start: float, velocity: float, t: np.ndarray, span: float) -> np.ndarray:
    """Positions in ``[0, span]`` of a point moving at ``velocity`` and bouncing off the ends."""
    if span <= 0:
        return np.zeros_like(t)
    pos = np.mod(start + velocity * t, 2 * span)
    return np.where(pos > span, 2 * span - pos, pos)


def _field(
    plan: VideoPlan,
    t: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    config: SyntheticConfig,
    planes: tuple[str, ...],
) -> list[np.ndarray]:
    """Background ``planes`` (of luma, u, v; float32, ``(frames, len(ys), len(xs))``).

    Everything is separable in x and y, so only ``(frames, 1, W)`` and ``(frames, H, 1)``
    factors are computed and the full arrays cost a few multiply-adds per pixel.
    """
    bg = plan.background
    t2 = t[:, None]
    # The wave pans slowly: sin(a + b) = sin a cos b + cos a sin b, a from x and b from y.
    ax = 2 * np.pi * bg["wave_kx"] * (xs[None, :] - bg["pan_x"] * t2) + bg["wave_phase"]
    by = 2 * np.pi * bg["wave_ky"] * (ys[None, :] - bg["pan_y"] * t2)
    sa, ca = (np.sin(ax)[:, None, :].astype(np.float32), np.cos(ax)[:, None, :].astype(np.float32))
    sb, cb = (np.sin(by)[:, :, None].astype(np.float32), np.cos(by)[:, :, None].astype(np.float32))
    wave = sa * cb + ca * sb
    bright = bg["bright_amp"] * np.sin(2 * np.pi * t / bg["bright_period"] + bg["bright_phase"])
    out = {}
    if "luma" in planes:
        out["luma"] = bg["wave_amp"] * wave + (bg["base"] + bright[:, None, None]).astype(
            np.float32
        )
    for name in ("u", "v"):
        if name in planes:
            out[name] = bg[f"wave_{name}"] * wave + np.float32(128)
    w, h = config.width, config.height
    for blob in bg["blobs"]:
        margin = 3 * blob["sigma"]
        # Blobs drift and wrap around while out of sight.
        cx = np.mod(blob["x"] + blob["vx"] * t + margin, w + 2 * margin) - margin
        cy = np.mod(blob["y"] + blob["vy"] * t + margin, h + 2 * margin) - margin
        gx = np.exp(-((xs[None, :] - cx[:, None]) ** 2) / (2 * blob["sigma"] ** 2))
        gy = np.exp(-((ys[None, :] - cy[:, None]) ** 2) / (2 * blob["sigma"] ** 2))
        gx3 = gx.astype(np.float32)[:, None, :]
        for name, plane in out.items():
            # The amplitude goes into the (frames, H, 1) factor: one multiply-add per pixel.
            plane += (blob[name] * gy).astype(np.float32)[:, :, None] * gx3
    return [out[name] for name in planes]


def object_positions(config: SyntheticConfig, plan: VideoPlan) -> tuple[np.ndarray, np.ndarray]:
    """The object's top-left corner ``(x, y)`` in every frame (whole pixels; drawn in segments)."""
    t = np.arange(plan.num_frames, dtype=np.float64) / config.fps
    size = config.object_size
    spans = (config.width - size, config.height - size)
    x, y = (
        np.rint(_bounce(plan.object_start[k], plan.object_velocity[k], t, spans[k])).astype(int)
        for k in (0, 1)
    )
    return x, y


def render_video(config: SyntheticConfig, plan: VideoPlan) -> np.ndarray:
    """The video's frames as packed yuv420p, ``(frames, height * 3 // 2, width)`` uint8."""
    w, h, n = config.width, config.height, plan.num_frames
    t = np.arange(n, dtype=np.float64) / config.fps
    (luma,) = _field(plan, t, np.arange(h) + 0.5, np.arange(w) + 0.5, config, ("luma",))
    cys, cxs = 2 * np.arange(h // 2) + 1.0, 2 * np.arange(w // 2) + 1.0
    cu, cv = _field(plan, t, cys, cxs, config, ("u", "v"))
    y_plane = np.clip(np.rint(luma), 20, 230).astype(np.uint8)
    u_plane = np.clip(np.rint(cu), 108, 148).astype(np.uint8)
    v_plane = np.clip(np.rint(cv), 108, 148).astype(np.uint8)

    size = config.object_size
    ox, oy = object_positions(config, plan)
    for seg in plan.segments:
        patch = _texture(config, seg.label)
        u, v = object_chroma(config, seg.label)
        for i in range(seg.start, seg.end):
            x, y = ox[i], oy[i]
            y_plane[i, y : y + size, x : x + size] = patch
            u_plane[i, y // 2 : (y + size + 1) // 2, x // 2 : (x + size + 1) // 2] = u
            v_plane[i, y // 2 : (y + size + 1) // 2, x // 2 : (x + size + 1) // 2] = v

    colours = dict(BRIEF_COLOURS)
    radius = 0.3 * min(w, h)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cyy, cxx = 2 * np.mgrid[0 : h // 2, 0 : w // 2] + 1.0
    events = plan.event_frames(config)
    for (first, end, label), (ex, ey) in zip(events, plan.event_centres, strict=True):
        ev_y, ev_u, ev_v = (round(c) for c in _rgb_to_yuv(colours[label]))
        disc = (xx - ex) ** 2 + (yy - ey) ** 2 <= radius**2
        cdisc = (cxx - ex) ** 2 + (cyy - ey) ** 2 <= radius**2
        y_plane[first:end, disc] = ev_y
        u_plane[first:end, cdisc] = ev_u
        v_plane[first:end, cdisc] = ev_v

    chroma = np.concatenate([u_plane.reshape(n, -1), v_plane.reshape(n, -1)], axis=1)
    return np.concatenate([y_plane.reshape(n, -1), chroma], axis=1).reshape(n, h * 3 // 2, w)
