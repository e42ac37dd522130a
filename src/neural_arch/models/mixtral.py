"""A sparse mixture-of-experts decoder in the Mixtral layout, so ``MixtralForCausalLM`` checkpoints load.

    model = MixtralForCausalLM.from_pretrained("path/to/mixtral")   # config.json + model.safetensors
    out = model(ids, labels=ids, output_router_logits=True)          # out.loss includes the aux loss

It is the modern (Llama) transformer with one change: every layer's SwiGLU
MLP becomes ``num_local_experts`` SwiGLU experts and a router (Shazeer et
al. 2017, Fedus et al. 2021, Jiang et al. 2024):

    p = softmax(x W_gate^T)                       (N, E) router probabilities per token
    S = top-k experts of p, w_e = p_e / sum_{j in S} p_j   (renormalised over the chosen k)
    y = sum_{e in S} w_e * expert_e(x)

Each expert runs only on the tokens routed to it: the (token, slot) pairs
are sorted by expert, the tokens gathered in that order, each expert applied
to its contiguous run, and the results put back in (token, slot) order and
summed with their weights. No expert ever sees a token it was not chosen for.

The load-balancing loss (Switch Transformer, eq. 4-6) pushes the router to
spread tokens: with f_e the fraction of routed slots that went to expert e
and P_e the mean router probability of e, ``aux = E * sum_e f_e * P_e``
(f carries no gradient; P does). Summed over layers by averaging f and P
across them, as transformers does, and added to the loss times
``router_aux_loss_coef``.

Tensor names are the published Mixtral ones, which transformers still
writes in ``save_pretrained``: ``model.layers.N.block_sparse_moe.gate.weight``
and ``block_sparse_moe.experts.M.{w1,w2,w3}.weight`` (w1 = gate, w3 = up,
w2 = down of the SwiGLU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.errors import ConfigError
from neural_arch.models.generation import (
    CausalLMOutputWithPast,
    GenerationMixin,
    attention_bias,
    head_logits_and_loss,
    matrix_decay_groups,
    token_ids,
)
from neural_arch.models.hf import load_causal_lm, load_safetensors_dir, read_config, save_causal_lm
from neural_arch.models.modern import Attention, ModernConfig, rope_cos_sin
from neural_arch.ops.moe import permute_rows

__all__ = ["MixtralConfig", "MixtralForCausalLM", "MoeCausalLMOutputWithPast", "load_balancing_loss"]


@dataclass
class MixtralConfig(ModernConfig):
    """``transformers.MixtralConfig``'s fields: the Llama ones plus the experts and the router."""

    num_local_experts: int = 8
    num_experts_per_tok: int = 2
    router_aux_loss_coef: float = 0.001
    output_router_logits: bool = False
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.num_experts_per_tok <= self.num_local_experts:
            raise ConfigError(f"MixtralConfig: num_experts_per_tok ({self.num_experts_per_tok}) must lie in "
                              f"[1, num_local_experts = {self.num_local_experts}]")

    @classmethod
    def from_dict(cls, d: dict) -> MixtralConfig:
        """From a Mixtral ``config.json``; a sliding window is refused (full causal attention only)."""
        if d.get("sliding_window") is not None:
            raise ConfigError(f"MixtralConfig: sliding_window={d['sliding_window']} is not supported; "
                              "set it to null in config.json (full causal attention)")
        return super().from_dict(d)

    def to_dict(self) -> dict:
        """The ``config.json`` dict that ``transformers.MixtralConfig`` reads."""
        return {**asdict(self), "rope_parameters": {"rope_theta": self.rope_theta, "rope_type": "default"},
                "hidden_act": "silu", "model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
                "sliding_window": None, "router_jitter_noise": 0.0, "dtype": "float32"}


@dataclass
class MoeCausalLMOutputWithPast(CausalLMOutputWithPast):
    """A causal LM output plus ``aux_loss`` and the per-layer ``router_logits`` (each (B*T, E))."""

    aux_loss: object = None
    router_logits: tuple | None = None


# -- the experts -------------------------------------------------------------------------------------
class Expert(nn.Module):
    """One SwiGLU expert with Mixtral's names: w2(silu(w1(x)) * w3(x))."""

    def __init__(self, config: MixtralConfig):
        super().__init__()
        C, H = config.hidden_size, config.intermediate_size
        self.w1 = nn.Linear(C, H, bias=False)  # gate
        self.w2 = nn.Linear(H, C, bias=False)  # down
        self.w3 = nn.Linear(C, H, bias=False)  # up

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def route(router_logits, top_k: int):
    """Top-k softmax routing: (expert index (N, k) array, renormalised weights (N, k) Tensor).

    The choice of experts is discrete (no gradient); the weights are a gather
    of the softmax, so the router learns through them.
    """
    probs = F.softmax(router_logits, dim=-1)  # (N, E)
    p = probs.data
    chosen = np.argsort(-p, axis=-1, kind="stable")[:, :top_k]  # (N, k), most likely first, as torch.topk
    weights = probs.gather(1, chosen)  # (N, k)
    return chosen, weights / weights.sum(dim=-1, keepdim=True)


class SparseMoeBlock(nn.Module):
    """The router (``gate``) and the experts; each expert runs on the tokens routed to it only."""

    def __init__(self, config: MixtralConfig):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.gate = nn.Linear(config.hidden_size, config.num_local_experts, bias=False)
        self.experts = nn.ModuleList([Expert(config) for _ in range(config.num_local_experts)])

    def forward(self, x):
        """x (B, T, C) -> (y (B, T, C), router logits (B*T, E))."""
        B, T, C = x.shape
        flat = x.reshape(B * T, C)
        router_logits = self.gate(flat)  # (N, E)
        chosen, weights = route(router_logits, self.top_k)
        slots = chosen.reshape(-1)  # (N*k,) the expert of each (token, slot) pair, token-major
        order = np.argsort(slots, kind="stable")  # the pairs grouped by expert
        counts = np.bincount(slots, minlength=len(self.experts))
        tokens = permute_rows(flat.repeat_interleave(self.top_k, dim=0), order)  # (N*k, C) in expert order
        outs, start = [], 0
        for expert, n in zip(self.experts, counts):
            if n:
                outs.append(expert(tokens[start:start + n]))
            start += n
        by_expert = ops.cat(outs, dim=0)  # (N*k, C)
        by_slot = permute_rows(by_expert, np.argsort(order)).reshape(B * T, self.top_k, C)  # (N, k, C)
        y = (by_slot * weights.unsqueeze(-1)).sum(dim=1)  # the weighted sum over each token's k experts
        return y.reshape(B, T, C), router_logits


def load_balancing_loss(router_logits, num_experts: int, top_k: int, attention_mask=None):
    """Switch Transformer's auxiliary loss over all layers: E * sum_e f_e * P_e.

    f_e: share of routed (token, slot) pairs that chose expert e, times k (no
    gradient); P_e: mean router probability of e. Both are averaged over every
    layer's tokens; padding (``attention_mask`` == 0) is left out. Equals
    transformers' ``load_balancing_loss_func``.
    """
    mask = np.ones(router_logits[0].shape[0], np.float32) if attention_mask is None else \
        np.asarray(getattr(attention_mask, "data", attention_mask)).reshape(-1).astype(np.float32)
    counts = np.zeros(num_experts, np.float64)
    prob_sum = None
    for logits in router_logits:
        probs = F.softmax(logits, dim=-1)  # (N, E)
        chosen = np.argsort(-probs.data, axis=-1, kind="stable")[:, :top_k]
        counts += np.bincount(chosen.reshape(-1), weights=np.repeat(mask, top_k), minlength=num_experts)
        layer_sum = (probs * ops.tensor(mask[:, None].astype(probs.dtype))).sum(dim=0)  # (E,)
        prob_sum = layer_sum if prob_sum is None else prob_sum + layer_sum
    rows = mask.sum() * len(router_logits)
    f = ops.tensor((counts / rows).astype(prob_sum.dtype))
    return (f * (prob_sum / float(rows))).sum() * float(num_experts)


# -- the decoder -------------------------------------------------------------------------------------
class MixtralDecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + moe(norm(x))."""

    def __init__(self, config: MixtralConfig):
        super().__init__()
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.block_sparse_moe = SparseMoeBlock(config)

    def forward(self, x, cos, sin, bias=None, is_causal=False, layer_past=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, is_causal, layer_past)
        x = x + a
        m, router_logits = self.block_sparse_moe(self.post_attention_layernorm(x))
        return x + m, present, router_logits


class MixtralModel(nn.Module):
    """Token embedding, the decoder layers and the final norm."""

    def __init__(self, config: MixtralConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MixtralDecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False,
                output_hidden_states=False):
        T = ids.shape[1]
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = np.arange(past, past + T, dtype=np.int64)[None]
        position_ids = np.asarray(getattr(position_ids, "data", position_ids))
        dtype = self.embed_tokens.weight.dtype
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta, dtype)
        bias, is_causal = attention_bias(attention_mask, past, T, dtype)
        x = self.embed_tokens(ops.tensor(ids))  # (B, T, C)
        hidden, presents, routers = [], [], []
        for i, layer in enumerate(self.layers):
            hidden.append(x)
            x, present, router_logits = layer(x, cos, sin, bias, is_causal,
                                              None if past_key_values is None else past_key_values[i])
            presents.append(present)
            routers.append(router_logits)
        x = self.norm(x)
        hidden.append(x)
        return (x, tuple(presents) if use_cache else None, tuple(hidden) if output_hidden_states else None,
                tuple(routers))


class MixtralForCausalLM(GenerationMixin, nn.Module):
    """The sparse decoder with its output head: ids (B, T) -> logits (B, T, vocab_size)."""

    def __init__(self, config: MixtralConfig):
        super().__init__()
        self.config = config
        self.max_positions = None
        self.model = MixtralModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        for name, p in self.named_parameters():  # Mixtral's initialisation, as Llama's
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, 0.0, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, labels=None,
                use_cache=None, output_hidden_states=False, output_router_logits=None,
                logits_to_keep: int = 0) -> MoeCausalLMOutputWithPast:
        """As :meth:`ModernTransformer.forward`; ``output_router_logits`` adds ``aux_loss`` (and to ``loss``)."""
        ids = token_ids(input_ids, self.config.vocab_size, "MixtralForCausalLM")
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if output_router_logits is None:
            output_router_logits = self.config.output_router_logits
        x, presents, hidden, routers = self.model(ids, attention_mask, position_ids, past_key_values, use_cache,
                                                  output_hidden_states)
        logits, loss = head_logits_and_loss(self.lm_head, x, labels, logits_to_keep)
        aux = None
        if output_router_logits:
            aux = load_balancing_loss(routers, self.config.num_local_experts, self.config.num_experts_per_tok,
                                      attention_mask)
            if loss is not None:
                loss = loss + aux * self.config.router_aux_loss_coef
        return MoeCausalLMOutputWithPast(logits=logits, loss=loss, past_key_values=presents, hidden_states=hidden,
                                         aux_loss=aux, router_logits=routers if output_router_logits else None)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Parameter groups with weight decay on the 2-D weights only (not the norm gains):
        ``optim.AdamW(model.optimizer_groups(0.1), lr=1e-3)``. (Optimizers belong to the training layer.)"""
        return matrix_decay_groups(self, weight_decay)

    def num_active_parameters(self) -> int:
        """Parameters one token uses: everything but the experts it was not routed to."""
        c = self.config
        per_expert = 3 * c.hidden_size * c.intermediate_size
        total = sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())
        return total - c.num_hidden_layers * (c.num_local_experts - c.num_experts_per_tok) * per_expert

    # -- the Hugging Face directory layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, dtype=None) -> MixtralForCausalLM:
        """Load a ``MixtralForCausalLM`` directory (config.json + model.safetensors); eval mode."""
        model = cls(MixtralConfig.from_dict(read_config(directory)))
        arrays = {k: v for k, v in load_safetensors_dir(directory).items() if not k.endswith("rotary_emb.inv_freq")}
        return load_causal_lm(model, arrays, directory, dtype)

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads as MixtralForCausalLM."""
        save_causal_lm(self, directory)
