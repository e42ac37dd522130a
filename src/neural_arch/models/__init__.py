"""Layer 6: model architectures, one readable file each, loading Hugging Face checkpoints.

    gpt2        GPT2LMHeadModel, GPT2Config
    bert        BertModel, BertForMaskedLM, BertForSequenceClassification, Roberta* (same heads), BertConfig
    sentence    SentenceEncoder (sentence-transformers directories: pooling + normalisation)
    bert_tokenizer  BertTokenizer (padded encoder batches via ``tokenizers``: tokenizer.json or vocab.txt)
    modern      ModernTransformer, ModernConfig (the Llama layout; aliases LlamaForCausalLM, LlamaConfig)
    generation  generate(): greedy / temperature / top-k / top-p, stop token, KV cache
    tokenizers  BPETokenizer (byte-level BPE via ``tokenizers``), tokenizer files next to a model
    resnet      ResNet, resnet18/34/50 (torchvision layout), resnet_small (28x28)
    vit         ViTModel, ViTForImageClassification (HF layout), attention_rollout
    clip        CLIPModel (HF layout), clip_loss, zero-shot classifier, retrieval Recall@K
    mixtral     MixtralForCausalLM (sparse mixture of experts: top-k routing, load-balancing loss)
    mamba       MambaForCausalLM (selective state-space model, recurrent generation)
    efficientnet  EfficientNet B0-B7 (torchvision layout), efficientnet_small (28x28)
    idefics     IdeficsForVisionText2Text (Flamingo-style: perceiver resampler, gated cross-attention)
    hf          the Hugging Face directory layout (config.json + model.safetensors), shared by all models

``AutoModelForCausalLM.from_pretrained(directory)`` picks the class from
``config.json``'s ``model_type``, as transformers' does.
"""

from neural_arch.errors import CheckpointError
from neural_arch.models import hf  # noqa: F401
from neural_arch.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaModel,
)
from neural_arch.models.bert_tokenizer import BertTokenizer
from neural_arch.models.clip import CLIPConfig, CLIPModel
from neural_arch.models.efficientnet import EfficientNet, efficientnet, efficientnet_b0, efficientnet_small
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel
from neural_arch.models.idefics import IdeficsConfig, IdeficsForVisionText2Text
from neural_arch.models.mamba import MambaConfig, MambaForCausalLM
from neural_arch.models.mixtral import MixtralConfig, MixtralForCausalLM
from neural_arch.models.modern import LlamaConfig, LlamaForCausalLM, ModernConfig, ModernTransformer
from neural_arch.models.resnet import ResNet, resnet18, resnet34, resnet50, resnet_small
from neural_arch.models.sentence import SentenceEncoder
from neural_arch.models.tokenizers import BPETokenizer, load_tokenizer, save_char_tokenizer
from neural_arch.models.vit import ViTConfig, ViTForImageClassification, ViTModel

CAUSAL_LM_CLASSES = {"gpt2": GPT2LMHeadModel, "llama": ModernTransformer, "mixtral": MixtralForCausalLM,
                     "mamba": MambaForCausalLM}


class AutoModelForCausalLM:
    """``AutoModelForCausalLM.from_pretrained(directory)``: the causal LM that ``config.json`` names."""

    @staticmethod
    def from_pretrained(directory, dtype=None):
        model_type = hf.read_config(directory).get("model_type")
        if model_type not in CAUSAL_LM_CLASSES:
            raise CheckpointError(f"AutoModelForCausalLM: model_type {model_type!r} in {str(directory)!r} is not one "
                                  f"of {sorted(CAUSAL_LM_CLASSES)}")
        return CAUSAL_LM_CLASSES[model_type].from_pretrained(directory, dtype=dtype)


__all__ = ["AutoModelForCausalLM", "BPETokenizer", "GPT2Config", "GPT2LMHeadModel", "LlamaConfig",
           "LlamaForCausalLM", "ModernConfig", "ModernTransformer", "load_tokenizer", "save_char_tokenizer",
           "CLIPConfig", "CLIPModel", "ResNet", "resnet18", "resnet34", "resnet50", "resnet_small", "ViTConfig",
           "ViTForImageClassification", "ViTModel", "BertConfig", "BertModel", "BertForMaskedLM",
           "BertForSequenceClassification", "RobertaConfig", "RobertaModel", "RobertaForMaskedLM",
           "RobertaForSequenceClassification", "BertTokenizer", "SentenceEncoder",
           "MixtralConfig", "MixtralForCausalLM", "MambaConfig", "MambaForCausalLM", "EfficientNet", "efficientnet",
           "efficientnet_b0", "efficientnet_small", "IdeficsConfig", "IdeficsForVisionText2Text"]
