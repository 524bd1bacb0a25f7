"""Grid geometry: shape, spacing, boundaries, sponge layers and masks of inactive sites."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BOUNDARIES = ("periodic", "reflecting", "absorbing")


@dataclass(frozen=True, eq=False)
class Lattice:
    """A 2-D grid of oscillators.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)``: rows (y) and columns (x).
    dx : float
        Grid spacing in mm. Site ``[i, j]`` sits at ``x = j*dx``, ``y = i*dx``.
    boundary : {"periodic", "reflecting", "absorbing"}
        ``periodic``: a torus. ``reflecting``: zero-flux (Neumann) edges, implemented with
        half-sample-symmetric ghost sites (``y[-1] = y[0]``), which keeps a symmetric coupling
        operator symmetric so undamped energy is conserved. ``absorbing``: reflecting edges plus a
        sponge layer whose extra damping ramps smoothly from 0 to ``sponge_damping`` over
        ``sponge_width``.
    sponge_width : float, optional
        Width of the sponge layer in mm (absorbing only). Default: 10% of the shorter side.
    sponge_damping : float
        Extra damping (1/ms) at the outer edge of the sponge layer.
    mask : array of bool, optional
        ``(ny, nx)``; False marks inactive sites, held at rest (they act as clamped, y = 0 sites).
    """

    shape: tuple[int, int]
    dx: float = 0.1
    boundary: str = "periodic"
    sponge_width: float | None = None
    sponge_damping: float = 1.0
    mask: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 2 or min(shape) < 3:
            raise ValueError(f"Lattice shape: expected (ny, nx) with both >= 3, got {self.shape!r}")
        object.__setattr__(self, "shape", shape)
        if not (np.isfinite(self.dx) and self.dx > 0):
            raise ValueError(f"Lattice dx: expected a positive spacing in mm, got {self.dx!r}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(
                f"Lattice boundary: expected one of {BOUNDARIES}, got {self.boundary!r}"
            )
        if self.boundary == "absorbing":
            width = self.sponge_width
            if width is None:
                width = 0.1 * (min(shape) - 1) * self.dx
            if not width > 0:
                raise ValueError(f"Lattice sponge_width: expected > 0 mm, got {width!r}")
            object.__setattr__(self, "sponge_width", float(width))
        if self.sponge_damping < 0:
            raise ValueError(f"Lattice sponge_damping: expected >= 0, got {self.sponge_damping!r}")
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != shape:
                raise ValueError(f"Lattice mask: expected shape {shape}, got {mask.shape}")
            object.__setattr__(self, "mask", mask.astype(bool))

    @property
    def ny(self) -> int:
        return self.shape[0]

    @property
    def nx(self) -> int:
        return self.shape[1]

    @property
    def periodic(self) -> bool:
        return self.boundary == "periodic"

    @property
    def x(self) -> np.ndarray:
        """Column coordinates in mm."""
        return np.arange(self.nx) * self.dx

    @property
    def y(self) -> np.ndarray:
        """Row coordinates in mm."""
        return np.arange(self.ny) * self.dx

    @property
    def pad_mode(self) -> str:
        """``numpy.pad`` mode that reproduces the boundary's ghost sites."""
        return "wrap" if self.periodic else "symmetric"

    def sponge(self) -> np.ndarray:
        """Extra damping (1/ms) of the absorbing layer, zeros for other boundaries.

        The profile is ``sponge_damping * u**2 * (3 - 2*u)`` with ``u`` the depth into the layer
        (0 at its inner edge, 1 at the lattice edge): smooth at the inner edge, so waves enter it
        without reflecting.
        """
        out = np.zeros(self.shape)
        if self.boundary != "absorbing" or self.sponge_damping == 0:
            return out
        yy, xx = np.meshgrid(self.y, self.x, indexing="ij")
        depth = np.minimum.reduce([xx, self.x[-1] - xx, yy, self.y[-1] - yy])
        u = np.clip((self.sponge_width - depth) / self.sponge_width, 0.0, 1.0)
        return self.sponge_damping * u**2 * (3 - 2 * u)
