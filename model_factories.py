"""NIST TrojAI-compatible classifier heads (rounds 5-7).

Real round 5-7 ``model.pt`` files pickle instances of ``model_factories.<Name>Model``; this module is
importable under that exact name so those pickles load (through the allow-listed unpickler) and so
synthetic rounds write byte-compatible pickles. Attribute names and forward behaviour follow NIST's
``usnistgov/trojai-round-generation`` / ``trojai-example`` code. Unpickling restores ``__dict__``
without calling ``__init__``, so forward() must only rely on attributes NIST's objects carry.
"""
from __future__ import annotations

import torch
from torch import nn


class LstmLinearModel(nn.Module):
    """Bidirectional/unidirectional LSTM over the ``[N, 1, H]`` summary embedding, then linear."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.1,
                 bidirectional: bool = True, n_layers: int = 2):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=n_layers, bidirectional=bidirectional,
                           batch_first=True, dropout=0 if n_layers < 2 else dropout)
        self.linear = nn.Linear(hidden_size * 2 if bidirectional else hidden_size, output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self.rnn.flatten_parameters()
        _, (hidden, _) = self.rnn(data)
        hidden = torch.cat((hidden[-2], hidden[-1]), dim=1) if self.rnn.bidirectional else hidden[-1]
        return self.linear(self.dropout(hidden))


class GruLinearModel(nn.Module):
    """As LstmLinearModel with a GRU."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.1,
                 bidirectional: bool = True, n_layers: int = 2):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, num_layers=n_layers, bidirectional=bidirectional,
                          batch_first=True, dropout=0 if n_layers < 2 else dropout)
        self.linear = nn.Linear(hidden_size * 2 if bidirectional else hidden_size, output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self.rnn.flatten_parameters()
        _, hidden = self.rnn(data)
        hidden = torch.cat((hidden[-2], hidden[-1]), dim=1) if self.rnn.bidirectional else hidden[-1]
        return self.linear(self.dropout(hidden))


class FCLinearModel(nn.Module):
    """Fully connected layers on ``data[:, 0, :]``.

    NIST shipped this class with and without a ReLU between layers; a pickled model trained with it
    carries a ``relu`` child, so the ReLU is applied iff the attribute exists (TROJAI-FORMAT.md §6.1).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.1,
                 n_layers: int = 2, relu: bool = True):
        super().__init__()
        sizes = [input_size] + [hidden_size] * n_layers
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        if relu:
            self.relu = nn.ReLU()
        self.linear = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        data = data[:, 0, :]
        for layer in self.fc_layers:
            data = layer(data)
            if hasattr(self, "relu"):
                data = self.relu(data)
        return self.linear(self.dropout(data))


class LinearModel(nn.Module):
    """A single linear layer on ``data[:, 0, :]`` (defined by NIST, unused in released rounds)."""

    def __init__(self, input_size: int, output_size: int, dropout: float = 0.1):
        super().__init__()
        self.linear = nn.Linear(input_size, output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(data[:, 0, :]))


class NerLinearModel(nn.Module):
    """Round 7: a HuggingFace encoder followed by dropout and a per-token linear classifier."""

    def __init__(self, transformer: nn.Module, dropout: float, num_labels: int, ignore_index: int = -100):
        super().__init__()
        self.transformer = transformer
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(transformer.config.hidden_size, num_labels)
        self.num_labels = num_labels
        self.ignore_index = ignore_index

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None):
        outputs = self.transformer(input_ids, attention_mask=attention_mask)
        emissions = self.classifier(self.dropout(outputs[0]))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(emissions.reshape(-1, self.num_labels), labels.reshape(-1),
                                               ignore_index=getattr(self, "ignore_index", -100))
        return loss, emissions
