"""Drop-in mode: PyTorch scripts (tests/compat/scripts/) run unchanged under real torch and under
`python -m neural_arch.compat` from the same initial weights (written by the torch run) and reach
the same losses within float32 noise (float64 for the L-BFGS one); the facade's behaviour (device
queries, torch.save/load, the one clear error for a missing name) in a subprocess of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neural_arch as na
from neural_arch.errors import ConfigError

SCRIPTS = Path(__file__).parent / "scripts"
SRC = Path(na.__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("NEURAL_ARCH_NUM_THREADS", "1")
    return env


def _run(args, cwd, compat: bool):
    cmd = [sys.executable] + (["-m", "neural_arch.compat"] if compat else []) + [str(a) for a in args]
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{'compat' if compat else 'torch'} run failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _both(script, tmp_path, extra=()):
    """Run ``script`` with real torch (which writes the initial weights), then in drop-in mode."""
    init = tmp_path / "init.npz"
    _run([SCRIPTS / script, "--init", init, "--out", tmp_path / "torch.json", *extra], tmp_path, compat=False)
    _run([SCRIPTS / script, "--init", init, "--out", tmp_path / "ours.json", *extra], tmp_path, compat=True)
    return json.loads((tmp_path / "torch.json").read_text()), json.loads((tmp_path / "ours.json").read_text())


def test_cnn_adadelta_steplr_script_matches_torch(tmp_path):
    ref, ours = _both("cnn_adadelta.py", tmp_path, ["--ckpt", "ckpt.pt"])
    assert len(ours["losses"]) == len(ref["losses"]) == 12
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=2e-5)
    np.testing.assert_allclose([t[0] for t in ours["tests"]], [t[0] for t in ref["tests"]], rtol=2e-5)
    assert [t[1] for t in ours["tests"]] == [t[1] for t in ref["tests"]]
    assert ours["lr"] == pytest.approx(ref["lr"], rel=1e-14)
    assert ours["reloaded_test"] == ours["tests"][-1] and ours["epoch"] == 3
    assert ref["losses"][-1] < ref["losses"][0]  # it learns, so equal losses mean something


def test_word_language_model_script_matches_torch(tmp_path):
    ref, ours = _both("word_lstm_lm.py", tmp_path)
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-4)
    np.testing.assert_allclose(ours["vals"], ref["vals"], rtol=1e-4)
    assert ours["lr"] == ref["lr"]


def test_lstmcell_lbfgs_script_matches_torch(tmp_path):
    ref, ours = _both("lstmcell_lbfgs.py", tmp_path)
    assert len(ours["losses"]) == len(ref["losses"])  # the same number of closure evaluations
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-7)
    np.testing.assert_allclose(ours["tests"], ref["tests"], rtol=1e-7)


def test_gru_packed_classifier_script_matches_torch(tmp_path):
    ref, ours = _both("gru_packed.py", tmp_path)
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-4)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])


FACADE_SCRIPT = r'''
import json, io, sys
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
out = {}
out["module"] = type(torch).__module__
out["devices"] = [torch.cuda.is_available(), torch.cuda.device_count(), torch.backends.mps.is_available(),
                  torch.accelerator.is_available(), str(torch.device("cpu")), torch.device("cuda").type]
out["dtypes"] = [str(torch.float32), str(torch.long), str(torch.zeros(2, dtype=torch.double).dtype)]
torch.backends.cudnn.benchmark = True
torch.manual_seed(0)
torch.cuda.manual_seed_all(0)
m = nn.Linear(3, 2)
torch.save(m.state_dict(), "sd.pt")
m2 = nn.Linear(3, 2)
m2.load_state_dict(torch.load("sd.pt", map_location="cpu", weights_only=True))
out["state_dict_round_trip"] = bool((m2.weight == m.weight).all().item())
x = torch.randn(4, 3)
buf = io.BytesIO()
torch.save([x, {"n": 3}], buf)
buf.seek(0)
back = torch.load(buf)
out["list_round_trip"] = [bool((back[0] == x).all().item()), back[1]]
with torch.serialization.safe_globals([nn.Linear]):
    torch.load("sd.pt")
errors = {}
def catch(key, fn):
    try:
        fn()
        errors[key] = None
    except BaseException as e:
        errors[key] = [type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]
catch("attr", lambda: torch.nn.NoSuchLayer)
catch("functional", lambda: F.no_such_function)
catch("tensor_method", lambda: x.no_such_method())
catch("cuda_to", lambda: x.to("cuda"))
catch("cuda_call", lambda: x.cuda())
catch("cuda_sync", lambda: torch.cuda.synchronize())
catch("save_module", lambda: torch.save(m, "m.pt"))
catch("torch_pickle", lambda: torch.load("real_torch.pt"))
def from_import():
    from torch import no_such_name  # noqa: F401
catch("from_import", from_import)
def import_missing():
    import torch.jit  # noqa: F401
catch("import_missing", import_missing)
out["errors"] = errors
out["functional_alias"] = bool((torch.log_softmax(x, dim=1) == F.log_softmax(x, dim=1)).all().item())
out["hasattr"] = [hasattr(torch, "no_such_name"), hasattr(torch.nn, "Linear"), hasattr(torch, "distributed")]
json.dump(out, open("facade.json", "w"))
'''


def test_facade_behaves_as_torch_on_a_cpu_machine(tmp_path):
    import torch

    torch.save({"w": torch.ones(2)}, tmp_path / "real_torch.pt")  # a real PyTorch pickle
    (tmp_path / "facade_script.py").write_text(FACADE_SCRIPT)
    _run(["facade_script.py"], tmp_path, compat=True)
    out = json.loads((tmp_path / "facade.json").read_text())
    assert out["module"] == "neural_arch.compat.facade"
    assert out["devices"] == [False, 0, False, False, "cpu", "cuda"]
    assert out["dtypes"] == ["float32", "int64", "float64"]
    assert out["state_dict_round_trip"] and out["list_round_trip"] == [True, {"n": 3}]
    errors = out["errors"]
    for key, name in [("attr", "torch.nn.NoSuchLayer"), ("functional", "torch.nn.functional.no_such_function"),
                      ("tensor_method", "torch.Tensor.no_such_method")]:
        cls, mro, msg = errors[key]
        assert cls == "MissingFeatureError" and "AttributeError" in mro and "NeuralArchError" in mro
        assert msg.startswith(name + " is not available") and "docs/coverage.md" in msg
    assert errors["cuda_to"][0] == errors["cuda_call"][0] == errors["cuda_sync"][0] == "DeviceError"
    assert errors["save_module"][0] == "CheckpointError" and "state_dict()" in errors["save_module"][2]
    assert errors["torch_pickle"][0] == "CheckpointError" and "PyTorch's own torch.save" in errors["torch_pickle"][2]
    assert errors["from_import"][0] == "ImportError" and "docs/coverage.md" in errors["from_import"][2]
    assert errors["import_missing"][0] == "MissingModuleError" and "torch.jit" in errors["import_missing"][2]
    assert out["hasattr"] == [False, True, False]
    assert out["functional_alias"]  # torch.log_softmax is F.log_softmax


def test_cli_usage_and_missing_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neural_arch.compat"], env=_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "neural_arch.compat", str(tmp_path / "nope.py")], env=_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such script" in proc.stderr


def test_install_refuses_when_real_torch_is_imported():
    import torch  # noqa: F401  (the real one, in this test process)

    from neural_arch import compat

    with pytest.raises(ConfigError, match="already imported"):
        compat.install()
    assert not compat.is_installed()
