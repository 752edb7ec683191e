"""Dynamic knowledge propagation: student frames attend to teacher frames (cross-attention).

What the paper leaves open is configurable (defaults in brackets): width [256], heads [4],
layers [1], feed-forward expansion [2], dropout [0.1], normalisation placement ["pre"],
and the time encoding ["sinusoidal" of the frame's time divided by the video's duration, so
any n_s, n_t and either sampling strategy share one scale; "none" disables it].
Attention is written with plain matmuls so fvcore counts its cost.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def time_encoding(times: torch.Tensor, dim: int, scale: float = 100.0) -> torch.Tensor:
    """Sinusoidal code ``(..., dim)`` of normalised times in [0, 1], as if ``scale`` positions."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=times.device, dtype=torch.float32) / half
    )
    angles = times.float().unsqueeze(-1) * scale * freqs
    code = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(code, (0, dim - 2 * half))


class CrossAttention(nn.Module):
    """Multi-head attention of queries over keys/values with a key padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"propagation.dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Query ``(B, Nq, D)``, key/value ``(B, Nk, D)``, mask ``(B, Nk)`` -> out, weights."""
        batch, n_q, dim = query.shape
        head_dim = dim // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, self.heads, head_dim).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(key)), split(self.v(value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        mixed = torch.matmul(self.dropout(weights), v).transpose(1, 2).reshape(batch, n_q, dim)
        return self.out(mixed), weights


class PropagationLayer(nn.Module):
    """Cross-attention and a feed-forward part, each residual and layer-normalised."""

    def __init__(self, dim: int, heads: int, ff_mult: float, dropout: float, norm: str) -> None:
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"propagation.norm: {norm!r} is not 'pre' or 'post'")
        self.pre = norm == "pre"
        self.attention = CrossAttention(dim, heads, dropout)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.norm_ff = nn.LayerNorm(dim)
        hidden = int(dim * ff_mult)
        self.ff = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pre:
            kv = self.norm_kv(memory)
            attended, weights = self.attention(self.norm_q(x), kv, kv, memory_mask)
            x = x + self.dropout(attended)
            x = x + self.dropout(self.ff(self.norm_ff(x)))
        else:
            attended, weights = self.attention(x, memory, memory, memory_mask)
            x = self.norm_q(x + self.dropout(attended))
            x = self.norm_ff(x + self.dropout(self.ff(x)))
        return x, weights


class PropagationBlock(nn.Module):
    """Enriches each student frame's features with what the teacher saw.

    Queries come from student features, keys and values from teacher features, both projected
    to ``dim`` and tagged with their time encodings. Returns the enriched student features
    ``(B, N_s, dim)`` and the last layer's attention averaged over heads ``(B, N_s, N_t)``.
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        dim: int = 256,
        heads: int = 4,
        layers: int = 1,
        ff_mult: float = 2.0,
        dropout: float = 0.1,
        norm: str = "pre",
        time_encoding: str = "sinusoidal",
        time_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if time_encoding not in ("sinusoidal", "none"):
            raise ValueError(f"propagation.time_encoding: {time_encoding!r} is not sinusoidal/none")
        if layers < 1:
            raise ValueError(f"propagation.layers: must be >= 1, got {layers}")
        self.dim = dim
        self.time_encoding = time_encoding
        self.time_scale = time_scale
        self.student_proj = nn.Linear(student_dim, dim)
        self.teacher_proj = nn.Linear(teacher_dim, dim)
        self.layers = nn.ModuleList(
            PropagationLayer(dim, heads, ff_mult, dropout, norm) for _ in range(layers)
        )
        self.norm_out = nn.LayerNorm(dim) if norm == "pre" else nn.Identity()

    def _encode(self, features: torch.Tensor, times: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        x = proj(features)
        if self.time_encoding == "sinusoidal":
            x = x + time_encoding(times, self.dim, self.time_scale).to(x.dtype)
        return x

    def forward(
        self,
        student: torch.Tensor,
        student_times: torch.Tensor,
        teacher: torch.Tensor,
        teacher_times: torch.Tensor,
        teacher_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Times are normalised to [0, 1] by each video's duration."""
        x = self._encode(student, student_times, self.student_proj)
        memory = self._encode(teacher, teacher_times, self.teacher_proj)
        weights = None
        for layer in self.layers:
            x, weights = layer(x, memory, teacher_mask)
        return self.norm_out(x), weights.mean(dim=1)
