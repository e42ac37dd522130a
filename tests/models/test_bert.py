"""BERT and RoBERTa against ``transformers``: checkpoints both ways, padded batches with token types,
heads and their losses, gradients, RoBERTa positions, tokenization, and the errors users can cause."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import CheckpointError, ConfigError, DataError, DTypeError, IndexingError, ShapeError  # noqa: E402
from neural_arch.models import bert as ours_bert  # noqa: E402
from neural_arch.models.bert_tokenizer import BertTokenizer  # noqa: E402
from neural_arch.models.hf import load_safetensors_dir  # noqa: E402

V, T, P = 61, 9, 24      # vocabulary, sequence length, position table
TOL = dict(rtol=1e-4, atol=2e-5)
SMALL = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=P, type_vocab_size=2)

# (transformers class, our class, output attribute)
BERT_CASES = [
    ("BertModel", "last_hidden_state"),
    ("BertForMaskedLM", "logits"),
    ("BertForSequenceClassification", "logits"),
]
ROBERTA_CASES = [
    ("RobertaModel", "last_hidden_state"),
    ("RobertaForMaskedLM", "logits"),
    ("RobertaForSequenceClassification", "logits"),
]


def _hf_config(family: str, **kw):
    if family == "bert":
        return transformers.BertConfig(**SMALL, num_labels=3, **kw)
    return transformers.RobertaConfig(**SMALL, num_labels=3, pad_token_id=1, bos_token_id=0, eos_token_id=2, **kw)


def _perturb(model):
    """transformers initialises LayerNorms to (1, 0) and biases to 0: move them, so that every tensor matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _make_ref(class_name, family, path, **kw):
    torch.manual_seed(0)
    ref = _perturb(getattr(transformers, class_name)(_hf_config(family, **kw))).eval()
    ref.save_pretrained(path)
    return ref


def _batch(pad_id: int, seed: int = 0):
    """3 right-padded rows of lengths 9, 6, 2 (ids avoid the pad id), mixed token types, and the mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, V, size=(3, T)).astype(np.int64)
    mask = np.zeros((3, T), np.int64)
    for b, n in enumerate([T, 6, 2]):
        mask[b, :n] = 1
    ids[mask == 0] = pad_id
    types = np.zeros((3, T), np.int64)
    types[:, 4:] = 1
    types[mask == 0] = 0
    return ids, mask, types


def _run_ref(ref, ids, mask, types, **kw):
    with torch.no_grad():
        return ref(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   token_type_ids=torch.from_numpy(types), **kw)


def _compare(ours, ref, attr, ids, mask, types):
    out = ours(ids, attention_mask=mask, token_type_ids=types)
    expect = _run_ref(ref, ids, mask, types)
    got = getattr(out, attr)
    assert isinstance(got, na.Tensor)
    np.testing.assert_allclose(got.detach().numpy(), getattr(expect, attr).numpy(), **TOL)
    if attr == "last_hidden_state":
        assert isinstance(out.pooler_output, na.Tensor) and out.pooler_output.shape == (3, 32)
        np.testing.assert_allclose(out.pooler_output.detach().numpy(), expect.pooler_output.detach().numpy(), **TOL)


@pytest.mark.parametrize("family,cases", [("bert", BERT_CASES), ("roberta", ROBERTA_CASES)])
def test_transformers_checkpoints_load_and_match_on_padded_batches_both_ways(family, cases, tmp_path):
    for class_name, attr in cases:
        ref = _make_ref(class_name, family, tmp_path / class_name)
        ours = getattr(ours_bert, class_name).from_pretrained(tmp_path / class_name)
        assert not ours.training
        ids, mask, types = _batch(pad_id=ref.config.pad_token_id)
        _compare(ours, ref, attr, ids, mask, types)

        # and back: what we write loads into transformers, with the same tensor names it writes itself
        ours.save_pretrained(tmp_path / f"ours_{class_name}")
        written = load_safetensors_dir(tmp_path / f"ours_{class_name}")
        assert set(written) == set(load_safetensors_dir(tmp_path / class_name)), class_name
        back = getattr(transformers, class_name).from_pretrained(tmp_path / f"ours_{class_name}").eval()
        _compare(ours, back, attr, ids, mask, types)
        config = json.loads((tmp_path / f"ours_{class_name}" / "config.json").read_text())
        assert config["architectures"] == [class_name] and config["model_type"] == family


def test_defaults_without_mask_or_token_types_match(tmp_path):
    ref = _make_ref("BertModel", "bert", tmp_path)
    ours = ours_bert.BertModel.from_pretrained(tmp_path)
    ids = np.random.default_rng(1).integers(0, V, size=(2, 5))
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids)).last_hidden_state.detach().numpy()
    np.testing.assert_allclose(ours(ids).last_hidden_state.detach().numpy(), expect, **TOL)
    np.testing.assert_allclose(ours(na.tensor(ids)).last_hidden_state.detach().numpy(), expect, **TOL)  # a Tensor too


def test_mlm_tied_decoder_and_loss_with_ignored_labels(tmp_path):
    ref = _make_ref("BertForMaskedLM", "bert", tmp_path)
    ours = ours_bert.BertForMaskedLM.from_pretrained(tmp_path)
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    ids, mask, types = _batch(pad_id=0)
    labels = np.full_like(ids, -100)
    labels[:, 1:3] = ids[:, 1:3]
    out = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    expect = _run_ref(ref, ids, mask, types, labels=torch.from_numpy(labels))
    np.testing.assert_allclose(out.loss.item(), expect.loss.item(), rtol=1e-5)


@pytest.mark.parametrize("num_labels,kind", [(3, "single"), (1, "regression"), (3, "multi")])
def test_sequence_classification_losses_match(tmp_path, num_labels, kind):
    ref = _make_ref("BertForSequenceClassification", "bert", tmp_path)
    ref.config.num_labels = num_labels
    torch.manual_seed(1)
    ref.classifier = torch.nn.Linear(32, num_labels)
    ref.num_labels = num_labels
    ref.config.problem_type = None
    ref.save_pretrained(tmp_path)
    ours = ours_bert.BertForSequenceClassification.from_pretrained(tmp_path)
    ids, mask, types = _batch(pad_id=0)
    labels = {"single": np.array([0, 2, 1]), "regression": np.array([0.5, -1.0, 2.0], np.float32),
              "multi": np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]], np.float32)}[kind]
    out = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    expect = _run_ref(ref, ids, mask, types, labels=torch.from_numpy(labels))
    np.testing.assert_allclose(out.loss.item(), expect.loss.item(), rtol=1e-5)


def test_gradients_match_transformers(tmp_path):
    ref = _make_ref("BertForSequenceClassification", "bert", tmp_path)
    ours = ours_bert.BertForSequenceClassification.from_pretrained(tmp_path)
    ids, mask, types = _batch(pad_id=0)
    labels = np.array([0, 2, 1])
    ours(ids, attention_mask=mask, token_type_ids=types, labels=labels).loss.backward()
    ref(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), token_type_ids=torch.from_numpy(types),
        labels=torch.from_numpy(labels)).loss.backward()
    ours_params = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert ours_params[name].grad is not None, name
        np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), rtol=1e-3, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_skip_padding_gives_the_tokens_states_and_gradients_of_the_padded_forward(family, tmp_path):
    """The blocks run on the tokens alone (models/_tokens.py): the tokens' states match transformers' and the
    padded forward's, right- and left-padded; a loss read from the tokens has the padded forward's gradients."""
    ref = _make_ref("BertModel" if family == "bert" else "RobertaModel", family, tmp_path)
    ours = getattr(ours_bert, type(ref).__name__).from_pretrained(tmp_path)
    ids, mask, types = _batch(pad_id=ref.config.pad_token_id)
    left = (np.flip(ids, 1).copy(), np.flip(mask, 1).copy(), np.flip(types, 1).copy())
    for ids_, mask_, types_ in ((ids, mask, types), left):
        real = mask_ == 1
        skipped = ours(ids_, attention_mask=mask_, token_type_ids=types_, skip_padding=True).last_hidden_state
        padded = ours(ids_, attention_mask=mask_, token_type_ids=types_).last_hidden_state
        assert skipped.shape == padded.shape == (3, T, 32)
        expect = _run_ref(ref, ids_, mask_, types_).last_hidden_state.numpy()
        np.testing.assert_allclose(skipped.detach().numpy()[real], expect[real], **TOL)
        np.testing.assert_allclose(skipped.detach().numpy()[real], padded.detach().numpy()[real], rtol=1e-5, atol=1e-6)
        assert np.isfinite(skipped.detach().numpy()).all()  # padding holds a token's state, never garbage

    grads = []
    for skip in (True, False):
        ours.zero_grad()
        h = ours(ids, attention_mask=mask, token_type_ids=types, skip_padding=skip).last_hidden_state
        (h * na.tensor(mask[:, :, None].astype(np.float32))).sum().backward()
        grads.append({name: p.grad.numpy().copy() for name, p in ours.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and len(grads[0]) > 10
    for name in grads[1]:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_skip_padding_without_padding_or_with_an_empty_row_is_the_padded_forward(tmp_path):
    _make_ref("BertModel", "bert", tmp_path)
    ours = ours_bert.BertModel.from_pretrained(tmp_path)
    ids, mask, types = _batch(pad_id=0)
    for m in (np.ones_like(mask), np.concatenate([mask[:2], np.zeros_like(mask[:1])])):
        a = ours(ids, attention_mask=m, token_type_ids=types, skip_padding=True).last_hidden_state.detach().numpy()
        b = ours(ids, attention_mask=m, token_type_ids=types).last_hidden_state.detach().numpy()
        np.testing.assert_array_equal(a, b)


def test_roberta_position_ids_start_after_padding_and_skip_it(tmp_path):
    _make_ref("RobertaModel", "roberta", tmp_path)
    ours = ours_bert.RobertaModel.from_pretrained(tmp_path)
    ids = np.array([[0, 5, 6, 2, 1, 1], [0, 7, 2, 1, 1, 1], [1, 0, 9, 9, 9, 2]])
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    expect = RobertaEmbeddings.create_position_ids_from_input_ids(torch.from_numpy(ids), padding_idx=1).numpy()
    np.testing.assert_array_equal(ours.position_ids_from(ids), expect)
    np.testing.assert_array_equal(ours.position_ids_from(ids)[0], [2, 3, 4, 5, 1, 1])


def test_head_and_bare_checkpoints_load_into_each_other(tmp_path):
    """As transformers: prefix added/removed, a new head initialised (warned), unused weights skipped (warned)."""
    ref = _make_ref("BertForMaskedLM", "bert", tmp_path / "mlm")
    ids, mask, types = _batch(pad_id=0)
    with pytest.warns(UserWarning) as record:
        bare = ours_bert.BertModel.from_pretrained(tmp_path / "mlm")
    messages = " ".join(str(w.message) for w in record)
    assert "cls.predictions" in messages    # the MLM head has no place in a bare encoder: skipped
    assert "pooler" in messages             # the file has no pooler: freshly initialised
    expect = _run_ref(ref.bert, ids, mask, types).last_hidden_state.detach().numpy()
    np.testing.assert_allclose(bare(ids, mask, types).last_hidden_state.detach().numpy(), expect, **TOL)

    bare.save_pretrained(tmp_path / "bare")
    with pytest.warns(UserWarning, match="classifier"):
        clf = ours_bert.BertForSequenceClassification.from_pretrained(tmp_path / "bare", num_labels=4)
    np.testing.assert_allclose(clf.bert(ids, mask, types).last_hidden_state.detach().numpy(), expect, **TOL)
    assert clf(ids, mask, types).logits.shape == (3, 4)


def test_legacy_names_and_buffers_in_checkpoints_are_understood(tmp_path):
    """Old checkpoints: LayerNorm.gamma/beta, a stored position_ids buffer, an explicit tied decoder."""
    from safetensors.numpy import save_file

    ref = _make_ref("BertForMaskedLM", "bert", tmp_path)
    arrays = load_safetensors_dir(tmp_path)
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in arrays.items()}
    legacy["bert.embeddings.position_ids"] = np.arange(P)[None]
    legacy["cls.predictions.decoder.weight"] = arrays["bert.embeddings.word_embeddings.weight"]
    legacy["cls.predictions.decoder.bias"] = arrays["cls.predictions.bias"]
    save_file(legacy, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    ours = ours_bert.BertForMaskedLM.from_pretrained(tmp_path)
    ids, mask, types = _batch(pad_id=0)
    expect = _run_ref(ref, ids, mask, types).logits.detach().numpy()
    np.testing.assert_allclose(ours(ids, mask, types).logits.detach().numpy(), expect, **TOL)


def test_config_round_trip_keeps_unknown_fields():
    cfg = ours_bert.BertConfig.from_dict({"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4,
                                          "id2label": {"0": "neg", "1": "neu", "2": "pos"}, "foo": [1, 2]})
    assert cfg.num_labels == 3 and cfg.extra["foo"] == [1, 2]
    d = cfg.to_dict()
    assert d["id2label"] == {"0": "neg", "1": "neu", "2": "pos"} and d["foo"] == [1, 2] and "num_labels" not in d


def test_user_errors_are_typed_and_say_what_to_do(tmp_path):
    _make_ref("BertModel", "bert", tmp_path)
    ours = ours_bert.BertModel.from_pretrained(tmp_path)
    ids, mask, _ = _batch(pad_id=0)
    with pytest.raises(IndexingError, match="vocab_size"):
        ours(np.full((1, 3), V))
    with pytest.raises(IndexingError, match="type_vocab_size"):
        ours(ids, token_type_ids=np.full_like(ids, 2))
    with pytest.raises(DTypeError, match="integers"):
        ours(ids.astype(np.float32))
    with pytest.raises(ShapeError, match=r"\(B, T\)"):
        ours(ids[0])
    with pytest.raises(ShapeError, match="attention_mask"):
        ours(ids, attention_mask=mask[:, :4])
    with pytest.raises(ShapeError, match="max_position_embeddings"):
        ours(np.ones((1, P + 1), np.int64))
    with pytest.raises(ConfigError, match="multiple"):
        ours_bert.BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match="hidden_act"):
        ours_bert.BertConfig(hidden_act="swish")
    with pytest.raises(ConfigError, match="model_type"):
        ours_bert.RobertaModel.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not a directory"):
        ours_bert.BertModel.from_pretrained(tmp_path / "nowhere")
    small = dict(json.loads((tmp_path / "config.json").read_text()), num_hidden_layers=3)
    (tmp_path / "config.json").write_text(json.dumps(small))
    with pytest.raises(CheckpointError, match="encoder weight"):     # the file has 2 layers, the config 3
        ours_bert.BertModel.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------
# Tokenizer: the same ids as transformers' fast tokenizer
# ------------------------------------------------------------------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "##s", "run",
         "##ning", "a", ".", ",", "!", "hello", "world", "cafe"]
TEXTS = ["The cat sat on the mat.", "Dogs running!", "", "hello, world " * 10, "Café ünknown"]


@pytest.fixture
def vocab_dir(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return tmp_path


def _hf_tokenizer(vocab_dir):
    # transformers 5: BertTokenizer is the fast (Rust) one, and takes the vocab file as vocab=
    return transformers.BertTokenizer(vocab=str(vocab_dir / "vocab.txt"), do_lower_case=True)


@pytest.mark.parametrize("source", ["vocab.txt", "tokenizer.json"])
def test_tokenizer_matches_transformers_with_padding_truncation_and_pairs(vocab_dir, source):
    ref = _hf_tokenizer(vocab_dir)
    if source == "tokenizer.json":
        ref.save_pretrained(vocab_dir)
        (vocab_dir / "vocab.txt").unlink()
        assert (vocab_dir / "tokenizer.json").is_file()
    tok = BertTokenizer.from_pretrained(vocab_dir)
    for kw in [dict(), dict(max_length=8), dict(max_length=12, padding="max_length")]:
        got = tok(TEXTS, **kw)
        expect = ref(TEXTS, padding=kw.get("padding", True), truncation=True, max_length=kw.get("max_length"),
                     return_tensors="np")
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(got[key], expect[key], err_msg=f"{key} {kw}")
    got = tok(TEXTS[:2], text_pair=TEXTS[2:4], max_length=10)
    expect = ref(TEXTS[:2], TEXTS[2:4], padding=True, truncation=True, max_length=10, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(got[key], expect[key], err_msg=key)
    assert tok.decode(got["input_ids"][0]) == ref.decode(expect["input_ids"][0], skip_special_tokens=True)


def test_tokenizer_output_feeds_the_model_and_matches_transformers_end_to_end(vocab_dir):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(**dict(SMALL, vocab_size=len(WORDS)))
    ref_model = _perturb(transformers.BertModel(cfg)).eval()
    ref_model.save_pretrained(vocab_dir)
    tok = BertTokenizer.from_pretrained(vocab_dir)
    assert tok.model_max_length == P   # capped by max_position_embeddings
    batch = tok(TEXTS)
    ours = ours_bert.BertModel.from_pretrained(vocab_dir)
    expect = _run_ref(ref_model, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    got = ours(**batch)
    np.testing.assert_allclose(got.last_hidden_state.detach().numpy(), expect.last_hidden_state.detach().numpy(), **TOL)


def test_tokenizer_errors(vocab_dir, tmp_path):
    tok = BertTokenizer.from_pretrained(vocab_dir)
    with pytest.raises(ConfigError, match="padding"):
        tok(["a"], padding="sideways")
    with pytest.raises(DataError, match="lengths"):
        tok(["the cat", "the"], padding=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="tokenizer.json or vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path / "empty")
