"""benchmarks.coverage: the report's arithmetic on a small namespace (torch.optim.lr_scheduler, and a
made-up one), the exclusion rules, and the page it writes."""

import types

import torch
from benchmarks import coverage


def test_arithmetic_on_a_real_namespace(tmp_path):
    import torch.optim.lr_scheduler as ls

    names = coverage.public_names(ls)
    assert names == sorted(ls.__all__)  # torch's own list, not ours
    record = coverage.load_record(coverage.ROOT)
    report = coverage.namespace_report("torch.optim.lr_scheduler", names, {n: getattr(ls, n) for n in names},
                                       lambda n: coverage.ours_has("torch.optim.lr_scheduler", n), record)
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
            assert test.startswith("tests/") and coverage._test_exists(test, coverage.ROOT)


def test_arithmetic_on_a_made_up_namespace():
    objects = {"Good": type("Good", (), {"__module__": "torch.fake"}), "Missing": None, "_private": None,
               "cuda_thing": None, "to_sparse_csr": None, "quantize_per_tensor": None, "typing_import": types}
    have = {"Good", "cuda_thing"}
    record = {"torch.nn.Good": "tests/test_x.py::test_good"}
    report = coverage.namespace_report("torch.nn", sorted(objects), objects, lambda n: n in have, record)
    status = {n: s for n, s, _ in report["rows"]}
    assert status == {"Good": "yes", "Missing": "no", "_private": "internal", "cuda_thing": "CUDA/accelerator-specific",
                      "to_sparse_csr": "sparse-specific", "quantize_per_tensor": "quantization-specific",
                      "typing_import": "a namespace (listed on its own or out of scope)"}
    assert (report["public"], report["considered"], report["present"], report["tested"]) == (7, 2, 1, 1)
    assert report["percent"] == 50.0
    page = coverage.render([report])
    assert "| `torch.nn` | 7 | 5 | 2 | 1 | 50.0% | 1 |" in page
    assert "| `Good` | yes | tests/test_x.py::test_good |" in page and "| `Missing` | no |" in page
    assert "Exclusion rules" in page and torch.__version__ in page


def test_exclusion_rules():
    assert coverage.exclusion("cuda", None) == "CUDA/accelerator-specific"
    assert coverage.exclusion("SyncBatchNorm", None) == "distributed-specific"
    assert coverage.exclusion("LSTM", torch.nn.LSTM) is None
    assert coverage.exclusion("ScriptModule", None).startswith("internal")
    assert coverage.exclusion("OrderedDict", __import__("collections").OrderedDict) == "internal"


def test_the_record_claims_only_what_a_passing_comparison_used(tmp_path):
    """parity.check's reference run is recorded by torch name; the report reads only claims whose test exists."""
    import numpy as np
    import parity_record
    from parity import check

    import neural_arch as na

    before = set(parity_record.pending.get(parity_record.current_test(), set()))
    check(lambda x: x.sum(dim=0), [np.ones((2, 3))], torch_fn=lambda x: torch.sum(x, dim=x.size(0) - 2))
    claims = parity_record.pending[parity_record.current_test()] - before
    assert claims == {"torch.sum", "torch.Tensor.size"}  # what the reference called, nothing of ours
    try:  # a failing comparison claims nothing
        check(lambda x: na.exp(x), [np.ones(2)], torch_fn=lambda x: torch.cos(x))
    except AssertionError:
        pass
    assert "torch.cos" not in parity_record.pending[parity_record.current_test()]

    root = tmp_path
    (root / "tests").mkdir()
    (root / "tests" / "test_a.py").write_text("def test_kept():\n    pass\n")
    record = root / "record.json"
    parity_record.merge({"tests/test_a.py::test_kept", "tests/test_a.py::test_gone"},
                        {"tests/test_a.py::test_kept": {"torch.sum"}, "tests/test_a.py::test_gone": {"torch.cos"}},
                        path=record)
    assert coverage.load_record(root, record) == {"torch.sum": "tests/test_a.py::test_kept"}  # test_gone: no def
    parity_record.merge({"tests/test_a.py::test_kept"}, {}, path=record)  # it ran again and compared nothing
    assert coverage.load_record(root, record) == {}


def test_the_cuda_only_rule_names_only_what_torch_cannot_run_on_the_cpu():
    """Each name the "CUDA-only" rule excludes fails on the CPU in torch itself; its neighbours that run on the
    CPU (scaled_mm, grouped_mm) stay counted."""
    import torch.nn.functional as TF

    assert coverage.exclusion("scaled_grouped_mm", TF.scaled_grouped_mm).startswith("CUDA-only")
    assert coverage.exclusion("scaled_mm", TF.scaled_mm) is None
    assert coverage.exclusion("grouped_mm", TF.grouped_mm) is None
    a = torch.randn(16, 16).to(torch.float8_e4m3fn)
    b = torch.randn(2, 16, 16).to(torch.float8_e4m3fn).transpose(-2, -1)
    row = TF.ScalingType.RowWise
    try:
        TF.scaled_grouped_mm(a, b, torch.ones(16), row, torch.ones(2, 16), row,
                             offs=torch.tensor([8, 16], dtype=torch.int32))
    except NotImplementedError as e:
        assert "CPU" in str(e)
    else:
        raise AssertionError("torch runs scaled_grouped_mm on the CPU now: count it (drop it from the rule)")
    tensorwise = TF.ScalingType.TensorWise
    out = TF.scaled_mm(a, a.t(), torch.tensor(1.0), tensorwise, torch.tensor(1.0), tensorwise,
                       output_dtype=torch.float32)
    assert out.shape == (16, 16)  # a CPU user can call it: it counts (and is missing here)


def test_the_recorder_only_watches():
    """The reference computes the same under the recorder (a TorchFunctionMode would not: it drops l1_loss's
    weight), and calls torch makes inside a function are not claimed."""
    from reference_names import Recorder

    x, y, w = torch.randn(3, 4), torch.randn(3, 4), torch.rand(3, 4)
    plain = torch.nn.functional.l1_loss(x, y, weight=w)
    with Recorder() as seen:
        watched = torch.nn.functional.l1_loss(x, y, weight=w)
    assert torch.equal(plain, watched)
    assert seen.names == {"torch.nn.functional.l1_loss"}  # not the torch.abs, mean, ... it runs inside


def test_a_comparison_written_without_check_can_claim_its_reference():
    import numpy as np
    import parity_record
    from parity import compare, reference

    import neural_arch as na

    x = np.arange(6.0)
    test = parity_record.current_test()
    with reference():
        want = torch.cumsum(torch.tensor(x), 0)
    assert "torch.cumsum" not in parity_record.pending.get(test, set())  # used, not yet compared
    compare(na.cumsum(na.tensor(x), 0), want)
    assert "torch.cumsum" in parity_record.pending[test]  # kept if this test passes


def test_a_reference_with_no_comparison_after_it_claims_nothing():
    import parity_record
    from parity import reference

    with reference():
        torch.cumprod(torch.ones(3), 0)
    assert "torch.cumprod" not in parity_record.pending.get(parity_record.current_test(), set())


def test_the_recorder_sees_the_classes_a_reference_builds_and_the_outermost_module_it_runs():
    from reference_names import Recorder

    class Squares(torch.utils.data.Dataset):  # a user's dataset counts as torch's Dataset
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return torch.tensor([float(i * i)])

    block = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    with Recorder() as seen:
        w = torch.nn.Parameter(torch.ones(2))
        opt = torch.optim.SGD([w], lr=0.1)
        torch.optim.lr_scheduler.StepLR(opt, 2)
        list(torch.utils.data.DataLoader(Squares(4), batch_size=2))
        torch.distributions.Normal(0.0, 1.0).log_prob(torch.zeros(1))
        block(torch.ones(1, 2))
        torch.nn.Linear(3, 3)  # built, never run: not claimed
    expected = {"torch.nn.Parameter", "torch.optim.SGD", "torch.optim.lr_scheduler.StepLR", "torch.utils.data.Dataset",
                "torch.utils.data.DataLoader", "torch.distributions.Normal", "torch.nn.Sequential"}
    assert expected <= seen.names
    assert not {"torch.nn.Linear", "torch.nn.ReLU", "torch.utils.data.SequentialSampler"} & seen.names


def test_the_recorder_tells_apart_the_functions_of_one_shared_wrapper():
    """F.max_pool1d, F.adaptive_max_pool2d, ... run one boolean_dispatch wrapper's code: its closure tells which."""
    from reference_names import Recorder

    x = torch.randn(1, 2, 4, 4)
    with Recorder() as seen:
        torch.nn.functional.max_pool1d(x[0], 2)
        torch.nn.functional.adaptive_max_pool2d(x, 1, return_indices=True)
    assert seen.names == {"torch.nn.functional.max_pool1d", "torch.nn.functional.adaptive_max_pool2d"}


def test_an_attribute_read_is_claimed_by_the_comparison_after_it():
    import numpy as np
    import parity_record
    from parity import attribute, compare

    import neural_arch as na

    x = np.arange(6.0).reshape(2, 3)
    test = parity_record.current_test()
    want = attribute(torch.tensor(x), "mT")
    assert "torch.Tensor.mT" not in parity_record.pending.get(test, set())
    compare(na.tensor(x).mT, want)
    assert "torch.Tensor.mT" in parity_record.pending[test]
