"""One outer iteration of Wang et al.'s dataset distillation in plain PyTorch, on a peer network with
jaxviz's weights (``torch_models.lenet_from_jaxviz``).

The distilled images ``(steps, n, C, H, W)`` and the raw (pre-softplus) step sizes are leaf tensors.
Each initialisation takes ``epochs * steps`` plain gradient steps on them, ``torch.autograd.grad(...,
create_graph=True)`` through :func:`torch.func.functional_call`, so autograd keeps every inner step's
graph for the second-order backward (the modern form of the reference code, which writes that
reverse pass by hand with Hessian-vector products). The outer loss is the cross-entropy of the
trained network on a real batch, averaged over initialisations, and one Adam step (images at
``lr``, raw step sizes at ``step_size_lr``, ``betas=(beta1, 0.999)``) updates both leaves: what
``jaxviz.distill.make_outer_step`` does in one compiled call.

Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018); reference code
github.com/SsnL/dataset-distillation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

Params = dict[str, torch.Tensor]


def params_of(net: nn.Module) -> Params:
    """The parameters of ``net`` as fresh leaves (the initialisation an inner run starts from)."""
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def fresh_init(net: nn.Module) -> Params:
    """A new random initialisation of ``net``'s architecture (its layers' own ``reset_parameters``)."""
    with torch.no_grad():
        for m in net.modules():
            if m is not net and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return params_of(net)


def inner_train(net: nn.Module, theta: Params, x: torch.Tensor, labels: torch.Tensor, raw_lrs: torch.Tensor) -> Params:
    """``len(raw_lrs)`` SGD steps from ``theta``; step ``k`` on ``x[k % steps]`` with step size ``softplus(raw_lrs[k])``.

    The steps stay in autograd's graph (``create_graph=True``), so the result is differentiable in
    ``x`` and ``raw_lrs``.
    """
    steps = x.shape[0]
    lrs = F.softplus(raw_lrs)
    names = list(theta)
    theta = {k: v if v.requires_grad else v.requires_grad_() for k, v in theta.items()}
    for k in range(raw_lrs.shape[0]):
        i = k % steps
        loss = F.cross_entropy(functional_call(net, theta, (x[i],)), labels[i])
        grads = torch.autograd.grad(loss, [theta[n] for n in names], create_graph=True)
        theta = {n: theta[n] - lrs[k] * g for n, g in zip(names, grads)}
    return theta


def outer_loss(net: nn.Module, inits: Sequence[Params], x: torch.Tensor, labels: torch.Tensor, raw_lrs: torch.Tensor,
               xr: torch.Tensor, yr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean real-batch cross-entropy (and accuracy) of the networks trained from each of ``inits``."""
    losses, accs = [], []
    for theta0 in inits:
        logits = functional_call(net, inner_train(net, theta0, x, labels, raw_lrs), (xr,))
        losses.append(F.cross_entropy(logits, yr))
        accs.append((logits.argmax(-1) == yr).float().mean())
    return torch.stack(losses).mean(), torch.stack(accs).mean().detach()


class OuterStep:
    """``step(xr, yr) -> (loss, acc)``: one outer iteration, Adam on ``self.x`` and ``self.raw_lrs``.

    Args:
      net: the architecture (its parameters are not used unless ``inits`` says so).
      x: ``(steps, n, C, H, W)`` starting images; ``labels``: ``(steps, n)`` classes.
      raw_lrs: ``(epochs * steps,)`` raw step sizes.
      inits: a list of initialisations (fixed ones), or a callable returning a fresh list each call
        (random initialisations, as ``init="random"`` samples them every iteration).
    """

    def __init__(self, net: nn.Module, x: torch.Tensor, labels: torch.Tensor, raw_lrs: torch.Tensor,
                 inits: Sequence[Params] | Callable[[], Sequence[Params]], *, lr: float = 0.01, step_size_lr: float = 0.02,
                 beta1: float = 0.5):
        self.net, self.labels, self.inits = net, labels, inits
        self.x = x.detach().clone().requires_grad_()
        self.raw_lrs = raw_lrs.detach().clone().requires_grad_()
        self.opt = torch.optim.Adam([{"params": [self.x], "lr": lr}, {"params": [self.raw_lrs], "lr": step_size_lr}],
                                    betas=(beta1, 0.999), eps=1e-8)

    def gradients(self, xr: torch.Tensor, yr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outer loss and its gradients in the images and raw step sizes (no update)."""
        inits = self.inits() if callable(self.inits) else self.inits
        loss, _ = outer_loss(self.net, inits, self.x, self.labels, self.raw_lrs, xr, yr)
        gx, glr = torch.autograd.grad(loss, [self.x, self.raw_lrs])
        return loss.detach(), gx, glr

    def __call__(self, xr: torch.Tensor, yr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inits = self.inits() if callable(self.inits) else self.inits
        self.opt.zero_grad(set_to_none=True)
        loss, acc = outer_loss(self.net, inits, self.x, self.labels, self.raw_lrs, xr, yr)
        loss.backward(inputs=[self.x, self.raw_lrs])  # not into the initialisations
        self.opt.step()
        return loss.detach(), acc
