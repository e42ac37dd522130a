"""benchmarks.coverage: the report's arithmetic on a small namespace (torch.optim.lr_scheduler, and a
made-up one), the exclusion rules, and the page it writes."""

import types

import torch
from benchmarks import coverage


def test_arithmetic_on_a_real_namespace(tmp_path):
    import torch.optim.lr_scheduler as ls

    names = coverage.public_names(ls)
    assert names == sorted(ls.__all__)  # torch's own list, not ours
    tests = coverage.load_tests(coverage.ROOT)
    report = coverage.namespace_report("torch.optim.lr_scheduler", names, {n: getattr(ls, n) for n in names},
                                       lambda n: coverage.ours_has("torch.optim.lr_scheduler", n), tests)
    rows = report["rows"]
    assert [r[0] for r in rows] == names and report["public"] == len(names)
    yes = [r for r in rows if r[1] == "yes"]
    no = [r for r in rows if r[1] == "no"]
    assert report["present"] == len(yes) and report["considered"] == len(yes) + len(no)
    assert report["tested"] == sum(1 for r in yes if r[2]) <= report["present"]
    assert report["percent"] == 100.0 * len(yes) / len(yes + no)
    for name, status, test in rows:  # each status is what drop-in mode answers
        if status in ("yes", "no"):
            assert (status == "yes") == coverage.ours_has("torch.optim.lr_scheduler", name)
        if test is not None:
            assert test.startswith("tests/") and name in (coverage.ROOT / test).read_text()


def test_arithmetic_on_a_made_up_namespace():
    objects = {"Good": type("Good", (), {"__module__": "torch.fake"}), "Missing": None, "_private": None,
               "cuda_thing": None, "to_sparse_csr": None, "quantize_per_tensor": None, "typing_import": types}
    have = {"Good", "cuda_thing"}
    tests = {"tests/test_x.py": "import torch\nx = nn.Good(3)\n"}
    report = coverage.namespace_report("torch.nn", sorted(objects), objects, lambda n: n in have, tests)
    status = {n: s for n, s, _ in report["rows"]}
    assert status == {"Good": "yes", "Missing": "no", "_private": "internal", "cuda_thing": "CUDA/accelerator-specific",
                      "to_sparse_csr": "sparse-specific", "quantize_per_tensor": "quantization-specific",
                      "typing_import": "a namespace (listed on its own or out of scope)"}
    assert (report["public"], report["considered"], report["present"], report["tested"]) == (7, 2, 1, 1)
    assert report["percent"] == 50.0
    page = coverage.render([report])
    assert "| `torch.nn` | 7 | 5 | 2 | 1 | 50.0% | 1 |" in page
    assert "| `Good` | yes | tests/test_x.py |" in page and "| `Missing` | no |" in page
    assert "Exclusion rules" in page and torch.__version__ in page


def test_exclusion_rules():
    assert coverage.exclusion("cuda", None) == "CUDA/accelerator-specific"
    assert coverage.exclusion("SyncBatchNorm", None) == "distributed-specific"
    assert coverage.exclusion("LSTM", torch.nn.LSTM) is None
    assert coverage.exclusion("ScriptModule", None).startswith("internal")
    assert coverage.exclusion("OrderedDict", __import__("collections").OrderedDict) == "internal"
