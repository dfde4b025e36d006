"""Gaussian variational autoencoder for tabular expression data (e.g. 5,000 genes → 100 dims).

The encoder is an :class:`~dlpipe.models.mlp.MLP` from the features to the mean and log-variance
of a diagonal Gaussian posterior; the decoder is an MLP with the mirrored widths from the latent
space to the mean of a Gaussian likelihood whose per-feature variance is learned. The loss is
the negative ELBO, ``-log p(x | z) + beta * KL(q(z | x) || N(0, I))`` per sample. It suits
continuous, roughly Gaussian features: log-expression, z-scored on the training side (for raw
single-cell counts use scVI, whose likelihood is a count distribution).

It is not registered as a supervised family: it has no targets and returns a
:class:`VAEOutput`, not raw outputs. :mod:`dlpipe.embed` trains it with Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from dlpipe.models.mlp import MLP

_LOG_2PI = math.log(2 * math.pi)


class VAEOutput(NamedTuple):
    """What a forward pass returns: reconstruction mean, posterior mean and log-variance, z."""

    recon: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class ELBOTerms(NamedTuple):
    """Per-sample averages over a batch: loss = nll + beta * kl."""

    loss: torch.Tensor
    nll: torch.Tensor
    kl: torch.Tensor


class GaussianVAE(nn.Module):
    """VAE with a Gaussian posterior, a standard normal prior and a Gaussian likelihood.

    Parameters
    ----------
    n_inputs
        Number of features.
    n_latent
        Latent dimensions.
    hidden_layers
        Encoder widths; the decoder uses them in reverse order.
    dropout
        Dropout after each hidden layer.
    batch_norm
        Batch normalisation before each activation.
    """

    def __init__(
        self,
        n_inputs: int,
        n_latent: int = 100,
        hidden_layers: Sequence[int] = (512,),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_latent < 1:
            raise ValueError("a VAE needs at least one input feature and one latent dimension")
        self.n_latent = n_latent
        self.encoder = MLP(n_inputs, 2 * n_latent, hidden_layers, dropout, batch_norm)
        self.decoder = MLP(n_latent, n_inputs, list(hidden_layers)[::-1], dropout, batch_norm)
        # log σ² of each feature's likelihood, shared by all samples (homoscedastic).
        self.log_var = nn.Parameter(torch.zeros(n_inputs))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each ``(batch, n_latent)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        # Bounded log-variance keeps exp() finite in the first, wild epochs.
        return mu, logvar.clamp(-12.0, 12.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood mean ``(batch, n_inputs)`` of latent points."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """Encode, sample ``z`` (the posterior mean in eval mode) and decode."""
        mu, logvar = self.encode(x)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return VAEOutput(self.decode(z), mu, logvar, z)

    def elbo_terms(self, x: torch.Tensor, out: VAEOutput, beta: float = 1.0) -> ELBOTerms:
        """Negative ELBO of a batch: Gaussian negative log-likelihood plus ``beta`` × KL."""
        log_var = self.log_var.clamp(-12.0, 12.0)
        squared = (x - out.recon) ** 2 * torch.exp(-log_var)
        nll = 0.5 * (squared + log_var + _LOG_2PI).sum(dim=-1).mean()
        kl = -0.5 * (1 + out.logvar - out.mu**2 - out.logvar.exp()).sum(dim=-1).mean()
        return ELBOTerms(nll + beta * kl, nll, kl)
