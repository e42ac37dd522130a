"""Mamba (Gu & Dao 2023), a selective state-space language model, in the ``MambaForCausalLM`` layout.

    model = MambaForCausalLM.from_pretrained("path/to/mamba")     # config.json + model.safetensors
    logits = model(ids).logits                                    # ids: (B, T) int64
    text = model.generate(ids, max_new_tokens=50)                 # constant-size state per token

No attention. Each block mixes the sequence with a linear recurrence whose
parameters depend on the input (that is what "selective" means):

    x, z   = in_proj(norm(h)).chunk(2)                 (B, T, D) each, D = expand * hidden_size
    x      = silu(causal_depthwise_conv1d(x))          a short local filter over the last K tokens
    dt, B, C = x_proj(x).split(rank, N, N)             per-token step size and state projections
    delta  = softplus(dt_proj(dt))                     (B, T, D), positive
    y      = selective_scan(x, delta, A = -exp(A_log), B, C) + D * x
    h      = h + out_proj(y * silu(z))

The scan is ``neural_arch.ops.scan.selective_scan`` (a numba kernel with a
NumPy twin). Generation keeps, per layer, the last K-1 conv inputs and the
(B, D, N) scan state: each new token costs the same, however long the text.
That cache travels as ``past_key_values`` (one ``(conv_state, ssm_state)``
pair per layer), so the shared ``generate()`` drives it.

The tensor names are transformers' (``backbone.layers.N.mixer.A_log``,
``mixer.conv1d.weight`` (D, 1, K), ``backbone.norm_f``, ...); the lm head is
tied to the embedding by default, as in the published checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.models.generation import CausalLMOutputWithPast, GenerationMixin, head_logits_and_loss, token_ids
from neural_arch.models.hf import config_from_dict, load_causal_lm, load_safetensors_dir, read_config, save_causal_lm
from neural_arch.nn import Parameter
from neural_arch.ops.scan import causal_depthwise_conv1d, selective_scan

__all__ = ["MambaConfig", "MambaForCausalLM", "MambaModel"]


@dataclass
class MambaConfig:
    """Hyperparameters with the field names of ``transformers.MambaConfig``."""

    vocab_size: int = 50280
    hidden_size: int = 768
    state_size: int = 16
    num_hidden_layers: int = 32
    layer_norm_epsilon: float = 1e-5
    expand: int = 2
    conv_kernel: int = 4
    use_bias: bool = False
    use_conv_bias: bool = True
    time_step_rank: int | str = "auto"  # "auto": ceil(hidden_size / 16)
    time_step_scale: float = 1.0
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_floor: float = 1e-4
    initializer_range: float = 0.1
    tie_word_embeddings: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 0
    eos_token_id: int | None = 0
    pad_token_id: int | None = 0

    def __post_init__(self):
        if self.time_step_rank == "auto":
            self.time_step_rank = math.ceil(self.hidden_size / 16)
        if self.conv_kernel < 1 or self.state_size < 1 or self.expand < 1:
            raise ConfigError(f"MambaConfig: conv_kernel ({self.conv_kernel}), state_size ({self.state_size}) and "
                              f"expand ({self.expand}) must be >= 1")

    @property
    def intermediate_size(self) -> int:
        return int(self.expand * self.hidden_size)

    @classmethod
    def from_dict(cls, d: dict) -> MambaConfig:
        """From a Mamba ``config.json``."""
        if d.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"MambaConfig: hidden_act {d['hidden_act']!r} is not supported (only silu)")
        return config_from_dict(cls, d)

    def to_dict(self) -> dict:
        """The ``config.json`` dict that ``transformers.MambaConfig`` reads."""
        return {**asdict(self), "intermediate_size": self.intermediate_size, "hidden_act": "silu",
                "residual_in_fp32": True, "model_type": "mamba", "architectures": ["MambaForCausalLM"],
                "dtype": "float32"}


class CausalConv1d(nn.Module):
    """The depthwise conv's parameters in torch's Conv1d shapes: weight (D, 1, K), bias (D,)."""

    def __init__(self, channels: int, kernel: int, bias: bool):
        super().__init__()
        self.weight = Parameter(ops.randn(channels, 1, kernel) * (1.0 / math.sqrt(kernel)))
        self.bias = Parameter(ops.zeros(channels)) if bias else None

    def forward(self, x, prefix=None):
        return causal_depthwise_conv1d(x, self.weight, self.bias, prefix=prefix)


class MambaMixer(nn.Module):
    """The selective SSM of one block: (B, T, C) -> (B, T, C), with an optional carried state."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        C, D, N, R = config.hidden_size, config.intermediate_size, config.state_size, config.time_step_rank
        self.N, self.R, self.K = N, R, config.conv_kernel
        self.in_proj = nn.Linear(C, 2 * D, bias=config.use_bias)
        self.conv1d = CausalConv1d(D, config.conv_kernel, config.use_conv_bias)
        self.x_proj = nn.Linear(D, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, D, bias=True)
        self.A_log = Parameter(ops.tensor(np.log(np.tile(np.arange(1, N + 1, dtype=np.float32), (D, 1)))))
        self.D = Parameter(ops.ones(D))
        self.out_proj = nn.Linear(D, C, bias=config.use_bias)
        self._init_time_step(config)

    def _init_time_step(self, c: MambaConfig) -> None:
        """Mamba's initialisation: dt_proj's bias is softplus^-1 of steps log-uniform in [min, max]."""
        std = c.time_step_rank ** -0.5 * c.time_step_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        u = ops.rand(c.intermediate_size, dtype=np.float64).numpy()  # from manual_seed's generator
        dt = np.exp(u * (math.log(c.time_step_max) - math.log(c.time_step_min)) + math.log(c.time_step_min))
        dt = np.maximum(dt, c.time_step_floor)
        self.dt_proj.bias.data[...] = dt + np.log(-np.expm1(-dt))

    def forward(self, h, state=None, padding=None):
        """h (B, T, C); ``state``: (conv_state (B, K-1, D), ssm_state (B, D, N)) or None -> (out, new state).

        ``padding`` (B, T, 1): 0 at padded positions, which then feed neither the conv nor the scan.
        """
        if padding is not None:
            h = h * padding
        x, z = self.in_proj(h).chunk(2, dim=-1)  # (B, T, D) each
        conv_prefix, ssm_state = (None, None) if state is None else state
        x_in = x
        x = F.silu(self.conv1d(x, prefix=conv_prefix))  # (B, T, D)
        if padding is not None:  # the conv's bias would otherwise feed padded positions into the scan
            x = x * padding
        dt, B, C = self.x_proj(x).split([self.R, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # (B, T, D)
        A = -self.A_log.exp()  # (D, N), negative: the state decays
        y, last = selective_scan(x, delta, A, B, C, initial_state=ssm_state, return_last_state=True)
        y = (y + x * self.D) * F.silu(z)
        new_state = (self._conv_tail(conv_prefix, x_in.data), last)
        return self.out_proj(y), new_state

    def _conv_tail(self, prefix, x):
        """The last K-1 conv inputs after this chunk: the state the next token's conv looks back on."""
        B, T, D = x.shape
        if prefix is None:
            prefix = np.zeros((B, self.K - 1, D), x.dtype)
        return np.concatenate([prefix, x], axis=1)[:, T:]


class MambaBlock(nn.Module):
    """Pre-norm residual: h + mixer(norm(h))."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = MambaMixer(config)

    def forward(self, h, state=None, padding=None):
        out, state = self.mixer(self.norm(h), state, padding)
        return h + out, state


class MambaModel(nn.Module):
    """Embedding, the blocks and the final norm: ids -> hidden states (B, T, C)."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MambaBlock(config) for _ in range(config.num_hidden_layers)])
        self.norm_f = nn.RMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)

    def forward(self, ids, cache=None, padding=None, output_hidden_states=False):
        h = self.embeddings(ops.tensor(ids))
        hidden, states = [], []
        for i, layer in enumerate(self.layers):
            h, state = layer(h, None if cache is None else cache[i], padding)
            states.append(state)
            hidden.append(h)  # as transformers' Mamba: each block's output, then the final norm's
        h = self.norm_f(h)
        hidden.append(h)
        return h, tuple(states), (tuple(hidden) if output_hidden_states else None)


class MambaForCausalLM(GenerationMixin, nn.Module):
    """The Mamba backbone with its (tied) output head: ids (B, T) -> logits (B, T, vocab_size)."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.config = config
        self.max_positions = None  # no positions: any length
        self.backbone = MambaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight
        for name, p in self.named_parameters():  # transformers' initialisation
            if name.endswith(("embeddings.weight", "lm_head.weight", "in_proj.weight", "x_proj.weight")):
                nn.init.normal_(p, 0.0, config.initializer_range)
            elif name.endswith(("out_proj.weight", "conv1d.weight")):
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))
            elif name.endswith(("in_proj.bias", "out_proj.bias", "conv1d.bias")):
                nn.init.zeros_(p)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, labels=None, use_cache=None,
                output_hidden_states=False, logits_to_keep: int = 0, **_ignored) -> CausalLMOutputWithPast:
        """``past_key_values``: the per-layer (conv_state, ssm_state) left by an earlier call with ``use_cache``.

        ``attention_mask`` (B, T_past + T): padded positions (0) enter each mixer and its scan as zeros,
        as in transformers; pad on the left, so that the state after the prompt is the real tokens'.
        ``position_ids`` (passed by ``generate``) are ignored: the recurrence is the position.
        """
        ids = token_ids(input_ids, self.config.vocab_size, "MambaForCausalLM")
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        padding = None
        if attention_mask is not None:
            mask = np.asarray(getattr(attention_mask, "data", attention_mask))
            if mask.ndim != 2 or mask.shape[0] != ids.shape[0] or mask.shape[1] < ids.shape[1]:
                raise ShapeError(f"MambaForCausalLM: attention_mask must be (batch, past + seq_len), got {mask.shape}")
            mask = mask[:, -ids.shape[1]:]
            if not mask.all():
                padding = ops.tensor(mask[:, :, None].astype(self.lm_head.weight.dtype))
        h, states, hidden = self.backbone(ids, past_key_values, padding, output_hidden_states)
        logits, loss = head_logits_and_loss(self.lm_head, h, labels, logits_to_keep)
        return CausalLMOutputWithPast(logits=logits, loss=loss, past_key_values=states if use_cache else None,
                                      hidden_states=hidden)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Weight decay on the projection and embedding matrices only (not A_log, D, norms, biases, conv taps),
        as Mamba's reference training does: ``optim.AdamW(model.optimizer_groups(0.1), lr=1e-3)``."""
        params = {id(p): (n, p) for n, p in self.named_parameters()}.values()
        decay = [p for n, p in params if p.ndim == 2 and not n.endswith("A_log")]
        ids = {id(p) for p in decay}
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": [p for _, p in params if id(p) not in ids], "weight_decay": 0.0}]

    # -- the Hugging Face directory layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, dtype=None) -> MambaForCausalLM:
        """Load a ``MambaForCausalLM`` directory (config.json + model.safetensors); eval mode."""
        model = cls(MambaConfig.from_dict(read_config(directory)))
        arrays = dict(load_safetensors_dir(directory))
        return load_causal_lm(model, arrays, directory, dtype)

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads as MambaForCausalLM."""
        save_causal_lm(self, directory)
