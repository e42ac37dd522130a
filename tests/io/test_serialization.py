"""na.save / na.load: safetensors round trips, the file layout, and every way a file can be bad."""

import json
import struct

import numpy as np
import pytest
import safetensors.numpy

import neural_arch as na
from neural_arch.errors import CheckpointError


def nested_state():
    return {
        "weight": na.randn(3, 4),
        "scalar_tensor": na.tensor(2.5),
        "int_tensor": na.tensor([1, 2, 3]),
        "mask": na.tensor([True, False]),
        "state": {0: {"exp_avg": na.randn(2, 2, dtype=na.float64), "step": 3}, 1: {"step": 7}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "name": None}],
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_scalar": np.float32(0.1),
        "nan": float("nan"),
        "huge_int": 2**100,  # e.g. PCG64 generator states
    }


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, na.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_round_trip_keeps_structure_types_and_bits(tmp_path):
    state = nested_state()
    path = na.save(state, tmp_path / "s.safetensors")
    assert_same(state, na.load(path))


def test_bfloat16_round_trip(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = na.tensor(np.array([1.5, -2.25, 3e38], dtype=ml_dtypes.bfloat16))
    back = na.load(na.save({"x": x}, tmp_path / "b.safetensors"))["x"]
    assert back.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(back.numpy().view(np.uint16), x.numpy().view(np.uint16))


def test_file_is_plain_safetensors_with_dotted_names(tmp_path):
    path = na.save(nested_state(), tmp_path / "s.safetensors")
    flat = safetensors.numpy.load_file(path)
    assert set(flat) == {"weight", "scalar_tensor", "int_tensor", "mask", "state.0.exp_avg", "array", "np_scalar"}
    assert flat["state.0.exp_avg"].shape == (2, 2)
    assert flat["scalar_tensor"].shape == ()


def test_loads_a_foreign_safetensors_file_as_a_flat_dict(tmp_path):
    path = tmp_path / "hf.safetensors"
    safetensors.numpy.save_file({"h.0.attn.weight": np.ones((2, 3), np.float32)}, path)
    out = na.load(path)
    assert list(out) == ["h.0.attn.weight"]
    assert isinstance(out["h.0.attn.weight"], na.Tensor)
    np.testing.assert_array_equal(out["h.0.attn.weight"].numpy(), np.ones((2, 3)))


def test_loaded_tensors_are_writable_and_independent(tmp_path):
    out = na.load(na.save({"w": na.zeros(3)}, tmp_path / "w.safetensors"))
    out["w"].data[0] = 5.0  # optimizers update parameters in place


@pytest.mark.parametrize("cut", [0, 5, 8, 20, -1, -100])
def test_truncated_file_raises_checkpoint_error(tmp_path, cut):
    path = na.save({"w": na.randn(64, 64)}, tmp_path / "w.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(CheckpointError, match="truncated"):
        na.load(path)


def test_damaged_header_raises_checkpoint_error(tmp_path):
    path = na.save({"w": na.randn(4)}, tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    data[9] = ord("#")  # inside the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header .* not valid JSON"):
        na.load(path)


def test_altered_tensor_bytes_fail_the_checksum(tmp_path):
    path = na.save({"w": na.zeros(256)}, tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        na.load(path)


def test_tree_pointing_at_a_missing_tensor(tmp_path):
    path = tmp_path / "x.safetensors"
    tree = json.dumps({"w": {"__tensor__": "nope"}})
    safetensors.numpy.save_file({"w": np.zeros(2)}, path, metadata={"neural_arch.tree": tree})
    with pytest.raises(CheckpointError, match="'nope'"):
        na.load(path)


def test_header_length_larger_than_file(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(CheckpointError, match="declares a 1000000-byte header"):
        na.load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no file"):
        na.load(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="directory"):
        na.load(tmp_path)


@pytest.mark.parametrize("bad, match", [
    ([na.zeros(2)], "expected a dict"),
    ({"f": lambda x: x}, "cannot save a function at 'f'"),
    ({"a.b": na.zeros(1), "a": {"b": na.zeros(1)}}, "same name 'a.b'"),
    ({"s": {object(): 1}}, "dict key"),
])
def test_unsavable_objects_raise_and_leave_the_old_file(tmp_path, bad, match):
    path = na.save({"w": na.ones(3)}, tmp_path / "w.safetensors")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=match):
        na.save(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left behind


def test_dict_keys_that_look_like_markers_round_trip(tmp_path):
    state = {"x": {"__tensor__": "not a reference", "__dict__": 1}}
    assert na.load(na.save(state, tmp_path / "m.safetensors")) == state
