"""A learned stopping score: how likely a checkpoint's top class is right, given its output.

The maximum class probability is a poor stopping signal where a model is confidently wrong
in a predictable way (a student that cannot see fine textures still picks one of them).
:class:`LearnedStop` fits, per checkpoint, a logistic regression on the shape of its
probabilities (the three highest, the entropy) and on which class is on top, to the event
"the top class is one of the video's labels", on held-out videos (the validation split). Its
output replaces the maximum probability in :class:`~dkp.models.early_exit.policy.ExitPolicy`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def stop_features(probs: Tensor) -> Tensor:
    """``(B, 4 + C)``: the three highest probabilities, the entropy over log(C), the top class
    one-hot."""
    c = probs.shape[1]
    top = probs.topk(min(3, c), dim=1).values
    top = nn.functional.pad(top, (0, 3 - top.shape[1]))
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1, keepdim=True) / math.log(max(c, 2))
    onehot = nn.functional.one_hot(probs.argmax(1), c).to(probs.dtype)
    return torch.cat([top, entropy, onehot], dim=1)


class LearnedStop(nn.Module):
    """One logistic regression per checkpoint on :func:`stop_features` (see module doc)."""

    def __init__(self, num_checkpoints: int, num_classes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(4 + num_classes, 1) for _ in range(num_checkpoints))

    def forward(self, k: int, probs: Tensor) -> Tensor:
        """The probability ``(B,)`` that checkpoint ``k``'s top class is right."""
        head = self.heads[k]
        return torch.sigmoid(head(stop_features(probs.to(head.weight.dtype)))).squeeze(1)

    @classmethod
    def fit(cls, probs: Tensor, right: Tensor, l2: float = 1e-2) -> LearnedStop:
        """Fitted on probabilities ``(V, K, C)`` at every checkpoint and whether each
        checkpoint's top class was right ``(V, K)``, by L2-penalised maximum likelihood."""
        _, k, c = probs.shape
        stop = cls(k, c).double()
        for j, head in enumerate(stop.heads):
            _fit_logistic(head, stop_features(probs[:, j].double()), right[:, j].double(), l2)
        return stop.float().eval()


@torch.enable_grad()
def _fit_logistic(head: nn.Linear, x: Tensor, y: Tensor, l2: float) -> None:
    """Logistic regression of ``y`` on ``x`` into ``head``, from zero weights, by L-BFGS."""
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> Tensor:
        optimizer.zero_grad()
        value = nn.functional.binary_cross_entropy_with_logits(head(x).squeeze(1), y)
        value = value + l2 * head.weight.pow(2).sum() / max(len(y), 1)
        value.backward()
        return value

    optimizer.step(loss)
