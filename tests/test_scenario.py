"""Tests of wavesim.scenario: schema validation, error messages, overrides, TOML round trip."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import pytest

from wavesim.scenario import (
    FileRef,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_override,
)

SCENARIO_DIR = Path(__file__).parent.parent / "scenarios"
BUNDLED = ["plane_wave", "spiral", "pinwheel_rotation", "nwm_default"]

BASE = {
    "run": {"duration": 10.0, "dt": 0.125},
    "lattice": {"shape": [16, 20], "dx": 0.1},
}


def _with(changes: dict) -> dict:
    """BASE with ``{"section.key": value}`` changes; value ``...`` deletes the key."""
    d = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        parts = dotted.split(".")
        t = d
        for p in parts[:-1]:
            t = t.setdefault(p, {})
        if value is ...:
            t.pop(parts[-1], None)
        else:
            t[parts[-1]] = value
    return d


RANDOM_MAP = {"map.kind": "random", "map.wavelength": 0.8}

# (id, changes to BASE, fragments the message must contain)
MALFORMED = [
    ("dt-negative", {"run.dt": -0.1}, ["[run] dt", "-0.1", "> 0", "ms"]),
    ("dt-bool", {"run.dt": True}, ["[run] dt", "true", "a number", "got a boolean"]),
    ("dt-nan", {"run.dt": float("nan")}, ["[run] dt", "nan", "not finite"]),
    ("dt-string", {"run.dt": "0.1"}, ["[run] dt", '"0.1"', "a number", "got a string"]),
    ("duration-missing", {"run.duration": ...}, ["[run] duration", "missing", "> 0", "required"]),
    ("duration-lt-dt", {"run.duration": 0.1}, ["[run] duration", "0.1", ">= [run] dt = 0.125"]),
    ("seed-float", {"run.seed": 1.5}, ["[run] seed", "1.5", "an integer", "got a float"]),
    ("seed-negative", {"run.seed": -3}, ["[run] seed", "-3", "an integer >= 0"]),
    ("members-zero", {"run.members": 0}, ["[run] members", "= 0", ">= 1"]),
    (
        "integrator-enum",
        {"run.integrator": "rk4"},
        ["[run] integrator", '"rk4"', "'symplectic_euler'", "'imex'"],
    ),
    (
        "dtype-enum",
        {"run.dtype": "float16"},
        ["[run] dtype", '"float16"', "'float32'", "'float64'"],
    ),
    ("shape-small", {"lattice.shape": [2, 16]}, ["[lattice] shape", "[2, 16]", "integers >= 3"]),
    ("shape-float", {"lattice.shape": [16.0, 16]}, ["[lattice] shape", "16.0", "not an integer"]),
    ("shape-length", {"lattice.shape": [16]}, ["[lattice] shape", "[16]", "[ny, nx]", "1 values"]),
    ("shape-missing", {"lattice.shape": ...}, ["[lattice] shape", "missing", "[ny, nx]"]),
    ("dx-zero", {"lattice.dx": 0}, ["[lattice] dx", "= 0", "> 0 (mm)"]),
    (
        "boundary-enum",
        {"lattice.boundary": "open"},
        ["[lattice] boundary", '"open"', "'periodic'", "'reflecting'", "'absorbing'"],
    ),
    (
        "sponge-not-absorbing",
        {"lattice.sponge_width": 0.3},
        ["[lattice] sponge_width", "0.3", "sponge_width only applies to boundary = 'absorbing'"],
    ),
    (
        "sponge-too-wide",
        {"lattice.boundary": "absorbing", "lattice.sponge_width": 0.9},
        ["[lattice] sponge_width", "0.9", "< half the shorter side, 0.75 mm"],
    ),
    (
        "sponge-damping-negative",
        {"lattice.boundary": "absorbing", "lattice.sponge_damping": -1.0},
        ["[lattice] sponge_damping", "-1.0", ">= 0", "1/ms"],
    ),
    (
        "mask-radius-missing",
        {"lattice.mask": {"kind": "disk"}},
        ["[lattice] mask.radius", "missing", "> 0 (mm)"],
    ),
    (
        "mask-typo",
        {"lattice.mask": {"kind": "disk", "radious": 0.5}},
        ["[lattice] mask.radious", "unknown key", "did you mean 'radius'?"],
    ),
    (
        "mask-file-missing",
        {"lattice.mask": {"kind": "file", "path": "nope/mask.npy"}},
        ["[lattice] mask.path", '"nope/mask.npy"', "no such file", "nope/mask.npy"],
    ),
    (
        "mask-center-outside",
        {"lattice.mask": {"kind": "disk", "radius": 0.5, "center": [5.0, 0.5]}},
        ["[lattice] mask.center", "[5.0, 0.5]", "x in [0, 1.9", "y in [0, 1.5"],
    ),
    (
        "mask-empty",
        {"lattice.mask": {"kind": "disk", "radius": 0.01, "center": [0.05, 0.05]}},
        ["[lattice] mask", "at least one active site"],
    ),
    (
        "map-wavelength-missing",
        {"map.kind": "random"},
        ["[map] wavelength", "missing", "> 0 (mm)"],
    ),
    (
        "map-nyquist",
        {"map.kind": "crystal", "map.wavelength": 0.15},
        ["[map] wavelength", "0.15", "in [0.4, 1.6] mm", "at least 4 sites"],
    ),
    (
        "map-wavelength-too-long",
        {"map.kind": "random", "map.wavelength": 1.7},
        ["[map] wavelength", "1.7", "at most the smaller side"],
    ),
    (
        "initial-nyquist",
        {"initial.kind": "plane_wave", "initial.wavelength": 0.1},
        ["[initial] wavelength", "0.1", ">= 2 * lattice.dx = 0.2", "Nyquist"],
    ),
    (
        "map-spectrum-for-crystal",
        {"map.kind": "crystal", "map.wavelength": 0.8, "map.spectrum_width": 0.1},
        ["[map] spectrum_width", "0.1", "only applies to kind = 'random'", "'crystal'"],
    ),
    (
        "map-kind-enum",
        {"map.kind": "randm"},
        ["[map] kind", '"randm"', "'none'", "'file'", "did you mean 'random'?"],
    ),
    (
        "map-file-path-missing",
        {"map.kind": "file"},
        ["[map] path", "missing", "angles in radians"],
    ),
    ("omega2-negative", {"model.omega2": -1.0}, ["[model] omega2", "-1.0", ">= 0", "1/ms^2"]),
    (
        "omega2-missing-file",
        {"model.omega2": "maps/omega2.npy"},
        ["[model] omega2", '"maps/omega2.npy"', "no such file", "omega2.npy"],
    ),
    ("exact-tanh-string", {"model.exact_tanh": "yes"}, ["[model] exact_tanh", "true or false"]),
    (
        "activation-enum",
        {"model.activation": "relu"},
        ["[model] activation", '"relu"', "'tanh'", "'linear'"],
    ),
    ("noise-negative", {"model.noise": -0.1}, ["[model] noise", "-0.1", ">= 0"]),
    (
        "stencil-missing",
        {"coupling.kind": "stencil"},
        ["[coupling] stencil", "missing", "k odd", "coupling.kind = 'stencil'"],
    ),
    (
        "stencil-even",
        {"coupling.kind": "stencil", "coupling.stencil": [[1, 1], [1, 1]]},
        ["[coupling] stencil", "[[1, 1], [1, 1]]", "k odd", "k = 2 is even"],
    ),
    (
        "stencil-ragged",
        {"coupling.kind": "stencil", "coupling.stencil": [[0, 1, 0], [1, -4], [0, 1, 0]]},
        ["[coupling] stencil", "k x k", "row of length 2"],
    ),
    (
        "stencil-too-big",
        {"lattice.shape": [3, 20], "coupling.kind": "stencil", "coupling.stencil": [[0] * 5] * 5},
        ["[coupling] stencil", "k <= 3", "exceeds the lattice side 3"],
    ),
    (
        "velocity-stencil-bool",
        {"coupling.velocity_stencil": [[True]]},
        ["[coupling] velocity_stencil", "[[true]]", "1/ms", "got a boolean"],
    ),
    (
        "kappa-without-map",
        {"coupling.kappa": 1.0},
        ["[coupling] kappa", "1.0", "[map] kind != 'none'", "[map] kind = 'none'"],
    ),
    (
        "speed-for-stencil",
        {"coupling.kind": "stencil", "coupling.stencil": [[0.0]], "coupling.speed": 0.3},
        ["[coupling] speed", "0.3", "only applies to kind = 'laplacian'", "'stencil'"],
    ),
    (
        "pulse-position-missing",
        {"drive.kind": "pulse"},
        ["[drive] position", "missing", "[x, y]", "mm"],
    ),
    (
        "pulse-with-wavelength",
        {"drive.kind": "pulse", "drive.position": [0.5, 0.5], "drive.wavelength": 1.0},
        ["[drive] wavelength", "1.0", "only applies to kind = 'plane_wave'", "'pulse'"],
    ),
    (
        "pulse-outside",
        {"drive.kind": "pulse", "drive.position": [0.5, 1.6]},
        ["[drive] position", "[0.5, 1.6]", "inside the lattice", "y in [0, 1.5"],
    ),
    (
        "pulse-period-short",
        {"drive.kind": "pulse", "drive.position": [0.5, 0.5], "drive.period": 0.5},
        ["[drive] period", "0.5", ">= [drive] duration = 1.0"],
    ),
    (
        "amplitude-for-none",
        {"drive.amplitude": 2.0},
        ["[drive] amplitude", "2.0", "'pulse' or 'plane_wave' or 'grating'", "= 'none'"],
    ),
    (
        "plane-wave-speed-missing",
        {"drive.kind": "plane_wave", "drive.wavelength": 1.0},
        ["[drive] speed", "missing", "> 0 (mm/ms)"],
    ),
    (
        "grating-without-map",
        {"drive.kind": "grating", "drive.angular_speed": 1.0},
        ["[drive] kind", '"grating"', "requires [map] kind != 'none'"],
    ),
    (
        "grating-angular-speed-missing",
        {**RANDOM_MAP, "drive.kind": "grating"},
        ["[drive] angular_speed", "missing", "deg/ms"],
    ),
    (
        "drive-kind-typo",
        {"drive.kind": "pulsee"},
        ["[drive] kind", '"pulsee"', "did you mean 'pulse'?"],
    ),
    (
        "spiral-charge",
        {"initial.kind": "spiral", "initial.wavelength": 1.0, "initial.charge": 2},
        ["[initial] charge", "= 2", "+1 or -1"],
    ),
    (
        "gaussian-width-missing",
        {"initial.kind": "gaussian"},
        ["[initial] width", "missing", "> 0 (mm)"],
    ),
    (
        "initial-direction-for-spiral",
        {"initial.kind": "spiral", "initial.wavelength": 1.0, "initial.direction": 10.0},
        ["[initial] direction", "only applies to kind = 'plane_wave'", "'spiral'"],
    ),
    (
        "record-period-not-multiple",
        {"record.period": 0.3},
        ["[record] period", "0.3", "integer multiple of [run] dt = 0.125", "0.25 or 0.375"],
    ),
    (
        "record-default-period-not-multiple",
        {"run.dt": 0.3},
        ["[record] period", "1.0", "multiple of [run] dt = 0.3", "0.9 or 1.2", "the default"],
    ),
    (
        "record-period-too-long",
        {"record.period": 12.5},
        ["[record] period", "12.5", "<= [run] duration = 10.0"],
    ),
    (
        "record-fields-bad-name",
        {"record.fields": ["y", "v"]},
        ["[record] fields", '["y", "v"]', '"y", "ydot"', '"v" is not a field'],
    ),
    ("record-fields-dupes", {"record.fields": ["y", "y"]}, ["[record] fields", "duplicates"]),
    ("record-fields-empty", {"record.fields": []}, ["[record] fields", "[]", "non-empty"]),
    (
        "electrode-outside",
        {"record.electrodes": [[0.5, 0.5], [2.5, 0.5]]},
        ["[record] electrodes", "[2.5, 0.5]", "inside the lattice", "x in [0, 1.9"],
    ),
    (
        "electrode-period-alone",
        {"record.electrode_period": 0.25},
        ["[record] electrode_period", "0.25", "without [record] electrodes"],
    ),
    (
        "electrode-period-not-multiple",
        {"record.electrodes": [[0.5, 0.5]], "record.electrode_period": 0.2},
        ["[record] electrode_period", "0.2", "0.125 or 0.25"],
    ),
    ("subsample-zero", {"record.subsample": 0}, ["[record] subsample", "= 0", ">= 1"]),
    ("block-float", {"record.block": 2.0}, ["[record] block", "2.0", "an integer"]),
    (
        "unknown-key",
        {"run.dtt": 0.1},
        ["[run] dtt", "0.1", "unknown key", "duration, dt", "did you mean 'dt'?"],
    ),
    (
        "key-in-wrong-section",
        {"lattice.seed": 3},
        ["[lattice] seed", "unknown key", "did you mean [run] seed?"],
    ),
    ("unknown-section", {"rnu": {"dt": 0.1}}, ["[rnu]", "unknown section", "did you mean [run]?"]),
    ("top-level-key", {"dt": 0.1}, ["dt = 0.1", "top-level", "did you mean [run] dt?"]),
    ("section-not-table", {"initial": 3}, ["[initial] = 3", "a table", "got an integer"]),
    ("name-empty", {"meta.name": " "}, ["[meta] name", '" "', "non-empty string"]),
]


@pytest.mark.parametrize(
    ("changes", "fragments"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_scenarios(tmp_path, changes, fragments):
    source = str(tmp_path / "case.toml")
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(_with(changes), source=source, base_dir=tmp_path)
    msg = str(info.value)
    assert msg.startswith(source + ":")
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


def test_malformed_table_is_large_and_base_is_valid():
    assert len(MALFORMED) >= 20
    Scenario.from_dict(BASE)  # every failure above comes from its own change


def test_error_attributes():
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(_with({"run.dt": -1.0}), source="x.toml")
    e = info.value
    assert isinstance(e, ValueError)
    assert (e.source, e.key, e.value) == ("x.toml", "run.dt", -1.0)
    assert "> 0" in e.expected


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_filled_in():
    s = Scenario.from_dict(BASE)
    assert s.meta.name == "scenario" and s.meta.description == ""
    assert (s.run.dt, s.run.seed, s.run.members, s.run.threads) == (0.125, 0, 1, 0)
    assert (s.run.integrator, s.run.dtype) == ("symplectic_euler", "float32")
    assert s.lattice.shape == (16, 20) and s.lattice.boundary == "periodic"
    assert s.lattice.sponge_width is None and s.lattice.mask is None
    assert s.map.kind == "none" and s.map.seed is None and s.map_seed is None
    m = s.model
    assert (m.activation, m.exact_tanh, m.omega2, m.gamma, m.bias, m.gain, m.noise) == (
        "tanh",
        False,
        1.0,
        0.5,
        0.0,
        1.0,
        0.0,
    )
    assert (s.coupling.kind, s.coupling.speed, s.coupling.kappa) == ("laplacian", 1.0, 0.0)
    assert s.coupling.stencil is None and s.coupling.velocity_stencil is None
    assert s.drive.kind == "none" and s.drive.amplitude is None
    assert s.initial.kind == "rest"
    r = s.record
    assert (r.period, r.fields, r.subsample, r.electrodes, r.block) == (1.0, ("y",), 1, None, 32)
    assert s.n_steps == 80 and s.record_stride == 8 and s.electrode_stride is None


def test_derived_defaults():
    d = _with(
        {
            "lattice.boundary": "absorbing",
            "drive.kind": "pulse",
            "drive.position": [1, 1],
            "initial.kind": "spiral",
            "initial.wavelength": 1,
            "record.electrodes": [[0, 0], [1.9, 1.5]],
            "record.period": 0.5,
        }
    )
    s = Scenario.from_dict(d, source="some/dir/my_run.toml")
    assert s.meta.name == "my_run"
    assert s.lattice.sponge_width == pytest.approx(0.1 * 15 * 0.1)
    assert s.lattice.sponge_damping == 1.0
    assert s.lattice.center == pytest.approx((0.95, 0.75))
    assert s.initial.position == pytest.approx((0.95, 0.75))
    assert s.initial.charge == 1 and s.initial.amplitude == 1.0
    assert isinstance(s.initial.wavelength, float)
    assert s.drive.position == (1.0, 1.0)
    assert (s.drive.width, s.drive.onset, s.drive.duration, s.drive.period) == (0, 0, 1, None)
    assert s.record.electrode_period == 0.5 and s.electrode_stride == 4
    assert s.record.electrodes == ((0.0, 0.0), (1.9, 1.5))


def test_int_accepted_for_float_and_stored_as_float():
    s = Scenario.from_dict(_with({"run.duration": 10, "lattice.dx": 1}))
    assert isinstance(s.run.duration, float) and isinstance(s.lattice.dx, float)


def test_map_seed_derived_and_explicit():
    a = Scenario.from_dict(_with(RANDOM_MAP))
    b = Scenario.from_dict(_with({**RANDOM_MAP, "run.seed": 1}))
    assert a.map.seed is None and a.map_seed == a.map_seed
    assert a.map_seed != b.map_seed
    c = Scenario.from_dict(_with({**RANDOM_MAP, "map.seed": 7}))
    assert c.map.seed == 7 and c.map_seed == 7
    assert c.replace(**{"map.seed": None}).map.seed is None


def test_frozen_and_hashable():
    s = Scenario.from_dict(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.run.dt = 0.1
    assert hash(s) == hash(Scenario.from_dict(BASE))


# --- per-site maps, masks, files --------------------------------------------------------------


@pytest.fixture
def map_dir(tmp_path):
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "omega2.npy", np.full((16, 20), 2.0))
    np.save(tmp_path / "maps" / "theta.npy", np.zeros((16, 20)))
    np.save(tmp_path / "maps" / "small.npy", np.zeros((8, 8)))
    np.save(tmp_path / "maps" / "negative.npy", -np.ones((16, 20)))
    mask = np.zeros((16, 20), dtype=bool)
    mask[4:10, 4:10] = True
    np.save(tmp_path / "maps" / "mask.npy", mask)
    np.save(tmp_path / "maps" / "mask_bad.npy", np.full((16, 20), 0.5))
    return tmp_path


def test_per_site_maps_are_file_refs(map_dir):
    d = _with(
        {
            "model.omega2": "maps/omega2.npy",
            "map.kind": "file",
            "map.path": "maps/theta.npy",
            "lattice.mask": {"kind": "file", "path": "maps/mask.npy"},
        }
    )
    s = Scenario.from_dict(d, source=str(map_dir / "s.toml"), base_dir=map_dir)
    ref = s.model.omega2
    assert isinstance(ref, FileRef) and ref.path == "maps/omega2.npy"
    assert ref.resolved == (map_dir / "maps" / "omega2.npy").resolve()
    assert ref.load().shape == (16, 20)
    assert s.resolve_path(ref) == ref.resolved
    assert s.resolve_path("maps/theta.npy") == s.map.path.resolved
    assert s.lattice.active_mask().sum() == 36
    text = s.to_toml()
    assert 'omega2 = "maps/omega2.npy"' in text and str(map_dir) not in text.split("\n", 2)[2]
    assert Scenario.from_dict(tomllib.loads(text), base_dir=map_dir) == s
    # omega2 map enters the stability estimate through its maximum.
    assert s.stability_number() == pytest.approx(0.125 * np.sqrt(2.0 + 800.0))


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        (
            {"model.gamma": "maps/small.npy"},
            ["[model] gamma", "shape [16, 20]", "has shape [8, 8]"],
        ),
        ({"model.omega2": "maps/negative.npy"}, ["[model] omega2", ">= 0", "min -1.0"]),
        (
            {"map.kind": "file", "map.path": "maps/small.npy"},
            ["[map] path", '"maps/small.npy"', "has shape [8, 8]"],
        ),
        (
            {"lattice.mask": {"kind": "file", "path": "maps/mask_bad.npy"}},
            ["[lattice] mask.path", "boolean or 0/1"],
        ),
    ],
)
def test_bad_per_site_files(map_dir, changes, fragments):
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(_with(changes), source="s.toml", base_dir=map_dir)
    for fragment in fragments:
        assert fragment in str(info.value)


# --- overrides --------------------------------------------------------------------------------


def test_parse_override_values():
    assert parse_override("run.dt=0.1")[:2] == (("run", "dt"), 0.1)
    assert parse_override("lattice.shape=[64, 64]")[:2] == (("lattice", "shape"), [64, 64])
    assert parse_override('drive.kind="none"')[1] == "none"
    assert parse_override("drive.kind=none")[1] == "none"
    assert parse_override("model.omega2=maps/w.npy")[1] == "maps/w.npy"
    assert parse_override("meta.name=true")[1] == "true"  # string key keeps the text
    assert parse_override("lattice.mask.radius = 2")[:2] == (("lattice", "mask", "radius"), 2)
    for bad in ["run.dt", "dt=0.1", ".dt=1", "run..dt=1"]:
        with pytest.raises(ScenarioError, match="section.key"):
            parse_override(bad)


def test_load_with_overrides():
    path = SCENARIO_DIR / "plane_wave.toml"
    s = load_scenario(
        path, overrides=["run.dt=0.02", "lattice.shape=[64, 64]", "record.period=0.2"]
    )
    assert s.run.dt == 0.02 and s.lattice.shape == (64, 64) and s.record.period == 0.2
    base = load_scenario(path)
    assert s.with_overrides([]) == s
    assert base.with_overrides(["run.dt=0.02", "lattice.shape=[64,64]", "record.period=0.2"]) == s
    assert base.replace(**{"run.dt": 0.02, "lattice.shape": (64, 64), "record.period": 0.2}) == s
    assert base.replace({"run.dt": 0.02}).run.dt == 0.02
    assert base.run.dt == 0.04  # the original is unchanged


def test_override_recomputes_derived_defaults():
    s = Scenario.from_dict(_with({"initial.kind": "gaussian", "initial.width": 0.2}))
    assert s.initial.position == pytest.approx((0.95, 0.75))
    t = s.with_overrides(["lattice.shape=[11, 31]"])
    assert t.initial.position == pytest.approx((1.5, 0.5))


def test_override_kind_drops_keys_of_old_kind():
    s = load_scenario(SCENARIO_DIR / "pinwheel_rotation.toml")
    t = s.with_overrides(["drive.kind=none"])
    assert t.drive.kind == "none" and t.drive.angular_speed is None
    u = s.with_overrides(["drive.kind=pulse", "drive.position=[1.0, 2.0]"])
    assert u.drive.position == (1.0, 2.0) and u.drive.amplitude == 0.5  # shared key kept
    v = load_scenario(SCENARIO_DIR / "spiral.toml", overrides=["lattice.boundary=periodic"])
    assert v.lattice.sponge_width is None
    # an explicitly set key that does not apply to the new kind is still an error
    with pytest.raises(ScenarioError, match="only applies to kind = 'pulse'"):
        s.with_overrides(["drive.kind=plane_wave", "drive.position=[1, 1]"])


def test_override_error_names_override_and_file():
    path = SCENARIO_DIR / "plane_wave.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=["run.dt=-1"])
    msg = str(info.value)
    assert str(path) in msg and "override 'run.dt=-1'" in msg and "[run] dt = -1" in msg
    with pytest.raises(ScenarioError, match=r"did you mean 'dt'\?"):
        load_scenario(path, overrides=["run.dtt=0.1"])
    with pytest.raises(ScenarioError, match="not a table"):
        load_scenario(path, overrides=["run.dt.x=1"])


def test_override_nested_mask():
    s = Scenario.from_dict(BASE).with_overrides(
        ['lattice.mask={kind="disk", radius=0.5}', "lattice.mask.center=[0.5, 0.5]"]
    )
    assert s.lattice.mask.kind == "disk" and s.lattice.mask.center == (0.5, 0.5)
    assert s.lattice.active_mask().sum() > 0


# --- round trip -------------------------------------------------------------------------------


def _rich_scenario() -> Scenario:
    d = _with(
        {
            "meta.name": 'quote " and unicode θ',
            "meta.description": "line one\nline two\ttab \\ backslash",
            "run.seed": 2**40,
            "run.members": 3,
            "run.integrator": "imex",
            "run.dtype": "float64",
            "lattice.boundary": "absorbing",
            "lattice.mask": {"kind": "disk", "radius": 0.6},
            "map.kind": "random",
            "map.wavelength": 0.8,
            "map.spectrum_width": 0.1,
            "map.seed": 11,
            "model.exact_tanh": True,
            "model.bias": -1e-7,
            "coupling.kind": "stencil",
            "coupling.stencil": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
            "coupling.velocity_stencil": [[0.1]],
            "coupling.kappa": 0.5,
            "drive.kind": "pulse",
            "drive.position": [1, 1],
            "drive.period": 2.5,
            "initial.kind": "plane_wave",
            "initial.wavelength": 0.3,
            "initial.direction": -45,
            "record.fields": ["ydot", "y"],
            "record.electrodes": [[0.1, 0.2]],
            "record.electrode_period": 0.25,
        }
    )
    return Scenario.from_dict(d)


@pytest.mark.parametrize("name", ["rich", *BUNDLED])
def test_round_trip_through_toml(name):
    s = _rich_scenario() if name == "rich" else load_scenario(SCENARIO_DIR / f"{name}.toml")
    text = s.to_toml()
    again = Scenario.from_dict(tomllib.loads(text), base_dir=s.base_dir)
    assert again == s
    assert again.to_toml().split("\n", 2)[2] == text.split("\n", 2)[2]
    assert Scenario.from_dict(s.to_dict(), base_dir=s.base_dir) == s


def test_to_dict_is_plain():
    d = _rich_scenario().to_dict()
    assert d["lattice"]["shape"] == [16, 20]
    assert d["lattice"]["mask"]["center"] == pytest.approx([0.95, 0.75])
    assert d["coupling"]["stencil"][1] == [1.0, -4.0, 1.0]
    assert "speed" not in d["coupling"]  # None values are omitted


# --- bundled scenarios ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_validate(name):
    s = load_scenario(SCENARIO_DIR / f"{name}.toml")
    assert s.meta.name == name and s.meta.description
    assert s.source.endswith(f"{name}.toml")
    assert s.base_dir == SCENARIO_DIR.resolve()
    assert s.n_steps * s.lattice.ny * s.lattice.nx <= 2e9
    assert s.stability_number() < 2


def test_bundled_scenario_specifics():
    pw = load_scenario(SCENARIO_DIR / "plane_wave.toml")
    assert pw.stability_number() == pytest.approx(0.04 * np.sqrt(8 * 0.3**2 / 0.05**2))
    assert (pw.initial.kind, pw.initial.wavelength, pw.initial.direction) == (
        "plane_wave",
        1.6,
        30.0,
    )
    assert pw.record.fields == ("y", "ydot") and pw.record_stride == 10
    sp = load_scenario(SCENARIO_DIR / "spiral.toml")
    assert (sp.lattice.boundary, sp.lattice.sponge_width, sp.initial.charge) == (
        "absorbing",
        0.8,
        1,
    )
    pr = load_scenario(SCENARIO_DIR / "pinwheel_rotation.toml")
    assert pr.map.wavelength / pr.lattice.dx == pytest.approx(16)
    assert pr.drive.kind == "grating" and pr.coupling.kappa == 1.0
    assert len(pr.record.electrodes) >= 3
    nwm = load_scenario(SCENARIO_DIR / "nwm_default.toml")
    assert nwm.lattice.shape == (36, 36) and nwm.n_steps == 800
    assert "lattice units" in nwm.meta.description


# --- files ------------------------------------------------------------------------------------


def test_bad_toml_reports_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[run]\nduration = 10\ndt = = 0.1\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert str(path) in msg and "invalid TOML" in msg and "line 3" in msg


def test_typo_in_file_suggests(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("[run]\nduration = 10\ndtt = 0.1\n\n[lattice]\nshape = [8, 8]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert str(path) in msg and "[run] dtt = 0.1" in msg and "did you mean 'dt'?" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match="does not exist") as info:
        load_scenario(path)
    assert str(path) in str(info.value)


def test_relative_paths_resolve_against_scenario_dir(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "gamma.npy", np.full((8, 8), 0.1))
    path = tmp_path / "sub" / "s.toml"
    path.write_text(
        '[run]\nduration = 1\n[lattice]\nshape = [8, 8]\n[model]\ngamma = "gamma.npy"\n'
    )
    monkeypatch.chdir(tmp_path)
    s = load_scenario("sub/s.toml")
    assert s.model.gamma.resolved == (tmp_path / "sub" / "gamma.npy").resolve()
    assert s.meta.name == "s"


def test_documented_example_validates(tmp_path):
    doc = (Path(__file__).parent.parent / "docs" / "scenarios.md").read_text()
    example = doc.split("## An annotated complete example", 1)[1].split("```toml\n", 1)[1]
    example = example.split("```", 1)[0]
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "gamma.npy", np.full((96, 128), 0.3))
    path = tmp_path / "demo.toml"
    path.write_text(example)
    s = load_scenario(path)
    assert s.lattice.mask.center == pytest.approx(s.lattice.center)
    assert s.stability_number() == pytest.approx(0.05 * np.sqrt(1 + 8 * 0.09 / 0.0025))
    assert Scenario.from_dict(tomllib.loads(s.to_toml()), base_dir=tmp_path) == s
