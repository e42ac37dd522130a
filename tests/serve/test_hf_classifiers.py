"""/v1/classify on Hugging Face folders: a ViT image classifier and a BERT text classifier, written by
transformers (tiny, random weights) and checked against transformers' own processor and model."""

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_helpers import live_server

from neural_arch.serve import ServeSettings, load_served_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LABELS = {0: "cat", 1: "dog", 2: "bird"}


def _softmax(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def _check(data, expected, labels):
    for item, probs in zip(data, expected):
        order = [labels.index(label) for label in item["labels"]]
        assert item["label"] == labels[int(np.argmax(probs))]
        np.testing.assert_allclose(item["probabilities"], probs[order], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    path = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32, id2label=LABELS,
                                    label2id={v: k for k, v in LABELS.items()})
    transformers.ViTForImageClassification(config).eval().save_pretrained(path)
    ViTImageProcessorPil(size={"height": 16, "width": 16}, image_mean=[0.4, 0.5, 0.6],
                         image_std=[0.2, 0.3, 0.25]).save_pretrained(path)
    return path


def test_a_vit_folder_classifies_images_as_transformers_does(vit_dir):
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    served = load_served_model(vit_dir)
    assert served.kind == "classify" and served.inputs == "image" and served.labels == ["cat", "dog", "bird"]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 3 * i, 30 - 2 * i, 3)).astype(np.uint8) for i in range(3)]
    processor = ViTImageProcessorPil.from_pretrained(vit_dir)
    model = transformers.ViTForImageClassification.from_pretrained(vit_dir).eval()
    pixels = processor(images=[Image.fromarray(a) for a in images], return_tensors="np")["pixel_values"]
    with torch.no_grad():
        expected = _softmax(model(pixel_values=torch.from_numpy(pixels)).logits.numpy().astype(np.float64))
    blobs = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        blobs.append(base64.b64encode(buf.getvalue()).decode())
    with (live_server(served, ServeSettings(max_batch_size=2)) as (url, _),
          httpx.Client(base_url=url, timeout=60) as c):
        r = c.post("/v1/classify", json={"input": blobs, "top_k": 3})
        text = c.post("/v1/classify", json={"input": "a sentence, not an image"})
    assert r.status_code == 200, r.text
    _check(r.json()["data"], expected, served.labels)
    assert text.status_code == 422 and text.json()["detail"][0]["loc"] == ["body", "input"]


@pytest.fixture(scope="module")
def bert_classifier_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert_cls")
    words = "the a cat dog sat on mat ran fast slow bird flew ##s ##ed good bad".split()
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                                     id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    transformers.BertForSequenceClassification(config).eval().save_pretrained(path)
    return path


def test_a_bert_sequence_classifier_folder_classifies_texts_as_transformers_does(bert_classifier_dir):
    path = bert_classifier_dir
    served = load_served_model(path, name="sentiment")
    assert served.kind == "classify" and served.inputs == "text" and served.labels == ["cat", "dog", "bird"]
    texts = ["the cat sat on the mat", "a dog ran fast", "bird flew", "The Cats sat"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.BertForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        expected = _softmax(model(**batch).logits.numpy().astype(np.float64))
    with (live_server(served, ServeSettings(max_batch_size=3)) as (url, _),
          httpx.Client(base_url=url, timeout=60) as c):
        many = c.post("/v1/classify", json={"model": "sentiment", "input": texts, "top_k": 2})
        one = c.post("/v1/classify", json={"input": texts[1]})
        paths = c.get("/openapi.json").json()["paths"]
    assert many.status_code == 200 and one.status_code == 200, (many.text, one.text)
    _check(many.json()["data"], expected, served.labels)
    assert [len(item["labels"]) for item in many.json()["data"]] == [2] * 4
    _check(one.json()["data"], expected[1:2], served.labels)
    assert "/v1/classify" in paths and "/v1/embeddings" not in paths


def test_the_vit_folder_exported_to_onnx_serves_the_same_probabilities(vit_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from neural_arch.cli.export import export_run

    folder = tmp_path / "vit"
    shutil.copytree(vit_dir, folder)
    served, ours = load_served_model(export_run(folder, "onnx")), load_served_model(vit_dir)
    assert served.kind == "classify" and served.labels == ours.labels and served.image_size == (16, 16)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 24, 3)).astype(np.uint8)).save(buf, format="JPEG")
    body = {"input": [base64.b64encode(buf.getvalue()).decode()] * 3, "top_k": 3}
    answers = []
    for s in (served, ours):
        with (live_server(s) as (url, _), httpx.Client(base_url=url, timeout=60) as c):
            answers.append(c.post("/v1/classify", json=body))
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    onnx_items, our_items = answers[0].json()["data"], answers[1].json()["data"]
    assert [i["labels"] for i in onnx_items] == [i["labels"] for i in our_items]
    np.testing.assert_allclose([i["probabilities"] for i in onnx_items], [i["probabilities"] for i in our_items],
                               rtol=1e-4, atol=1e-5)


def test_text_classifier_server_never_answers_500(bert_classifier_dir):
    pytest.importorskip("schemathesis")
    from test_schema_fuzz import _fuzz

    served = load_served_model(bert_classifier_dir)
    with live_server(served, ServeSettings(max_wait_ms=0)) as (url, app):
        assert _fuzz(url, app, examples=10) >= 20
