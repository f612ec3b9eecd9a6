#!/usr/bin/python3
"""Independent PyTorch reference for HuggingFace Marian / OPUS-MT models.

Written from HuggingFace's MarianMTModel definition (modeling_marian.py) and docs/DECODING.md,
in plain torch, float32, without a KV cache: every decoder call recomputes the whole prefix.

  marian_reference.py MODEL_DIR OUT.json [--seed S] [--text TEXT ...]
      writes, for a few random sources (model ids ending in </s>) and for each --text: the
      source ids, the encoder output, teacher-forced logits for a target id sequence, greedy and
      beam search results, and for texts the SentencePiece pieces and the detokenised outputs.
  marian_reference.py --self-test
      checks this reference against torch's own building blocks (nn.LayerNorm,
      nn.MultiheadAttention, F.gelu, F.silu) and against second computations, on freshly
      generated models; exits non-zero on a failure.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAYER_NORM_EPS = 1e-5
# MarianTokenizer.language_code_re: a target language code such as >>deu<<.
LANGUAGE_CODE = re.compile(">>.+<<")

# Search settings the C++ test uses too (it reads them from the output file).
GREEDY = {"beam_size": 1, "num_hypotheses": 1}
BEAM = {"beam_size": 4, "num_hypotheses": 2}
MAX_DECODING_LENGTH = 30
LENGTH_PENALTY = 1.0


# --- Building blocks, written out from their definitions --------------------------------------

def layer_norm(x, gamma, beta):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + LAYER_NORM_EPS) * gamma + beta


def activation(name, x):
    if name == "relu":
        return torch.clamp(x, min=0.0)
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name in ("swish", "silu"):
        return x / (1.0 + torch.exp(-x))
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(f"unknown activation {name}")


def linear(x, weights, prefix):
    return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]


def attention(query_input, key_input, weights, prefix, heads, causal):
    """HuggingFace MarianAttention: [B, Tq, d] x [B, Tk, d] -> [B, Tq, d]."""
    batch, tq, d = query_input.shape
    tk = key_input.shape[1]
    head_dim = d // heads
    q = linear(query_input, weights, prefix + ".q_proj") * head_dim ** -0.5
    k = linear(key_input, weights, prefix + ".k_proj")
    v = linear(key_input, weights, prefix + ".v_proj")

    def split(t, length):
        return t.view(batch, length, heads, head_dim).transpose(1, 2)

    scores = split(q, tq) @ split(k, tk).transpose(-1, -2)  # [B, H, Tq, Tk]
    if causal:
        future = torch.triu(torch.ones(tq, tk, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    context = (probs @ split(v, tk)).transpose(1, 2).reshape(batch, tq, d)
    return linear(context, weights, prefix + ".out_proj")


def marian_positions(n_pos, dim):
    """MarianSinusoidalPositionalEmbedding._init_weight: sines in the first half of a row
    (ceil(dim / 2) of them), cosines in the second, frequency 10000^(-2i / dim)."""
    position_enc = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = torch.zeros(n_pos, dim)
    sentinel = dim // 2 if dim % 2 == 0 else (dim // 2) + 1
    out[:, 0:sentinel] = torch.FloatTensor(np.sin(position_enc[:, 0::2]))
    out[:, sentinel:] = torch.FloatTensor(np.cos(position_enc[:, 1::2]))
    return out


# --- The model ---------------------------------------------------------------------------------

class MarianModel:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            c = json.load(f)
        self.config = c
        self.d = c["d_model"]
        self.encoder_layers = c["encoder_layers"]
        self.decoder_layers = c["decoder_layers"]
        self.encoder_heads = c["encoder_attention_heads"]
        self.decoder_heads = c["decoder_attention_heads"]
        self.activation = c["activation_function"]
        self.pre_norm = bool(c.get("normalize_before", False))
        self.embed_scale = math.sqrt(self.d) if c.get("scale_embedding", False) else 1.0
        self.pad_id = c["pad_token_id"]
        self.eos_id = c["eos_token_id"]
        start = c.get("decoder_start_token_id")
        self.start_id = self.pad_id if start is None else start
        shared = c.get("share_encoder_decoder_embeddings", True)

        tensors = safetensors_io.read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {name: torch.from_numpy(np.array(value, dtype=np.float32))
                  for name, value in tensors.items()}
        if shared:
            for name in ("model.shared.weight", "model.encoder.embed_tokens.weight",
                         "model.decoder.embed_tokens.weight"):
                if name in self.w:
                    self.source_embeddings = self.target_embeddings = self.w[name]
                    break
        else:
            self.source_embeddings = self.w["model.encoder.embed_tokens.weight"]
            self.target_embeddings = self.w["model.decoder.embed_tokens.weight"]
        self.lm_head = self.w.get("lm_head.weight", self.target_embeddings)
        self.final_logits_bias = self.w["final_logits_bias"].reshape(-1)
        self.positions = marian_positions(c["max_position_embeddings"], self.d)

        with open(os.path.join(model_dir, "vocab.json"), encoding="utf-8") as f:
            self.source_vocab = json.load(f)
        target_vocab_path = os.path.join(model_dir, "target_vocab.json")
        if os.path.exists(target_vocab_path):
            with open(target_vocab_path, encoding="utf-8") as f:
                self.target_vocab = json.load(f)
        else:
            self.target_vocab = self.source_vocab
        self.target_pieces = {i: piece for piece, i in self.target_vocab.items()}
        self.source_spm = spm.SentencePieceProcessor(
            model_file=os.path.join(model_dir, "source.spm"))
        self.target_spm = spm.SentencePieceProcessor(
            model_file=os.path.join(model_dir, "target.spm"))
        self.vocab_size = self.lm_head.shape[0]

    def embed(self, ids, embeddings):
        """ids [B, T] -> token embeddings * scale + positions 0..T-1."""
        return embeddings[ids] * self.embed_scale + self.positions[: ids.shape[1]]

    def _sublayer(self, h, norm_prefix, fn):
        if self.pre_norm:
            normed = layer_norm(h, self.w[norm_prefix + ".weight"], self.w[norm_prefix + ".bias"])
            return h + fn(normed)
        return layer_norm(h + fn(h), self.w[norm_prefix + ".weight"],
                          self.w[norm_prefix + ".bias"])

    def _ffn(self, prefix):
        return lambda x: linear(activation(self.activation, linear(x, self.w, prefix + ".fc1")),
                                self.w, prefix + ".fc2")

    def encode(self, source_ids):
        """source_ids: list of ids -> encoder output [S, d]."""
        h = self.embed(torch.tensor([source_ids]), self.source_embeddings)
        for i in range(self.encoder_layers):
            p = f"model.encoder.layers.{i}"
            h = self._sublayer(h, p + ".self_attn_layer_norm",
                               lambda x, p=p: attention(x, x, self.w, p + ".self_attn",
                                                        self.encoder_heads, causal=False))
            h = self._sublayer(h, p + ".final_layer_norm", self._ffn(p))
        if self.pre_norm:
            h = layer_norm(h, self.w["model.encoder.layer_norm.weight"],
                           self.w["model.encoder.layer_norm.bias"])
        return h[0]

    def decode(self, encoder_output, inputs):
        """inputs: [B, T] decoder input ids (start token first), all B on the same source ->
        logits [B, T, V]; row t sees inputs 0..t only."""
        inputs = torch.as_tensor(inputs)
        memory = encoder_output.unsqueeze(0).expand(inputs.shape[0], -1, -1)
        h = self.embed(inputs, self.target_embeddings)
        for i in range(self.decoder_layers):
            p = f"model.decoder.layers.{i}"
            h = self._sublayer(h, p + ".self_attn_layer_norm",
                               lambda x, p=p: attention(x, x, self.w, p + ".self_attn",
                                                        self.decoder_heads, causal=True))
            h = self._sublayer(h, p + ".encoder_attn_layer_norm",
                               lambda x, p=p: attention(x, memory, self.w, p + ".encoder_attn",
                                                        self.decoder_heads, causal=False))
            h = self._sublayer(h, p + ".final_layer_norm", self._ffn(p))
        if self.pre_norm:
            h = layer_norm(h, self.w["model.decoder.layer_norm.weight"],
                           self.w["model.decoder.layer_norm.bias"])
        return h @ self.lm_head.T + self.final_logits_bias

    def forced_logits(self, encoder_output, target_ids):
        """Row t: logits after the inputs start, target_ids[0..t-1]."""
        inputs = [self.start_id] + list(target_ids[:-1])
        return self.decode(encoder_output, [inputs])[0]

    # --- Text ------------------------------------------------------------------------------

    def tokenize(self, text):
        """MarianTokenizer: a leading language code as its own token, SentencePiece pieces of
        the rest -> vocab.json ids (unknown: <unk>), then </s>."""
        match = LANGUAGE_CODE.match(text)
        code = [match.group(0)] if match else []
        pieces = code + self.source_spm.encode(LANGUAGE_CODE.sub("", text), out_type=str)
        unk = self.source_vocab["<unk>"]
        return pieces, [self.source_vocab.get(p, unk) for p in pieces] + [
            self.source_vocab["</s>"]]

    def detokenize(self, ids):
        """Target ids -> text, special tokens skipped (decode(skip_special_tokens=True))."""
        special = {self.eos_id, self.pad_id, self.target_vocab.get("<unk>")}
        pieces = [self.target_pieces[i] for i in ids if i not in special]
        return self.target_spm.decode_pieces(pieces)


# --- Search, exactly as docs/DECODING.md -------------------------------------------------------

def beam_search(model, source_ids, beam_size, num_hypotheses, max_decoding_length,
                length_penalty=LENGTH_PENALTY, min_decoding_length=0, logits_fn=None):
    """Returns (hypotheses [(ids without </s>, score)], min_margin): min_margin is the smallest
    score gap at a decision this search took (which candidates survive, which </s> count, the
    order of the returned hypotheses), to tell near-ties apart from disagreements."""
    encoder_output = model.encode(source_ids)
    if logits_fn is None:
        def logits_fn(inputs):
            return model.decode(encoder_output, inputs)[:, -1, :]
    K = beam_size
    V = model.vocab_size
    eos = model.eos_id
    alive = [([], np.float32(0.0))]
    finished = []  # (ids including </s> when it ended so, score)
    margin = math.inf

    def final_score(cum, length):
        if length_penalty == 0:
            return np.float32(cum)
        return np.float32(np.float32(cum) /
                          np.float32(np.power(np.float32(length), np.float32(length_penalty))))

    for t in range(max_decoding_length):
        inputs = [[model.start_id] + ids for ids, _ in alive]
        logits = logits_fn(inputs)
        logp = torch.log_softmax(logits, dim=-1).numpy().astype(np.float32)
        logp[:, model.pad_id] = -np.inf
        if t < min_decoding_length:
            logp[:, eos] = -np.inf
        cum = np.array([c for _, c in alive], dtype=np.float32)
        flat = (cum[:, None] + logp).reshape(-1)
        order = np.argsort(-flat, kind="stable")  # Ties: lower flattened index first.
        top = order[: 2 * K]
        next_alive = []
        cutoff_rank = None
        for rank, index in enumerate(top):
            h, v = divmod(int(index), V)
            score = flat[index]
            if v == eos:
                if rank < K:
                    finished.append((alive[h][0] + [eos], final_score(score, t + 1)))
                continue
            if len(next_alive) < K:
                next_alive.append((alive[h][0] + [v], np.float32(score)))
                cutoff_rank = rank
        # Decisions: the last candidate kept against the next one, and the rank-K boundary when
        # a </s> sits on either side of it.
        if cutoff_rank is not None and cutoff_rank + 1 < len(order):
            margin = min(margin, float(flat[order[cutoff_rank]] - flat[order[cutoff_rank + 1]]))
        boundary = [int(order[r]) % V for r in (K - 1, K) if r < len(order)]
        if eos in boundary and len(order) > K:
            margin = min(margin, float(flat[order[K - 1]] - flat[order[K]]))
        if t + 1 == max_decoding_length:
            finished.extend((ids, final_score(c, t + 1)) for ids, c in next_alive)
            next_alive = []
        alive = next_alive
        if len(finished) >= K or not alive:
            break

    ranked = sorted(range(len(finished)), key=lambda i: (-finished[i][1], i))
    for a, b in zip(ranked[: num_hypotheses], ranked[1: num_hypotheses + 1]):
        margin = min(margin, float(finished[a][1] - finished[b][1]))
    hypotheses = []
    for i in ranked[: num_hypotheses]:
        ids, score = finished[i]
        hypotheses.append(([x for x in ids if x != eos], float(score)))
    return hypotheses, margin


def search_record(model, source_ids, settings):
    hypotheses, margin = beam_search(model, source_ids, settings["beam_size"],
                                     settings["num_hypotheses"], MAX_DECODING_LENGTH)
    return {"hypotheses": [{"ids": ids, "score": score} for ids, score in hypotheses],
            "min_margin": margin}


def random_sources(model, rng):
    eligible = [i for i in range(len(model.source_vocab))
                if i not in (model.pad_id, model.source_vocab["</s>"])]
    eos = model.source_vocab["</s>"]
    return [[int(x) for x in rng.choice(eligible, size=n)] + [eos] for n in (1, 6, 13)]


def run(model_dir, out_path, seed, texts):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MarianModel(model_dir)
    with torch.no_grad():
        sources = []
        for source_ids in random_sources(model, rng):
            target_ids = [int(x) for x in rng.choice(
                [i for i in range(model.vocab_size) if i not in (model.pad_id, model.eos_id)],
                size=7)] + [model.eos_id]
            encoder_output = model.encode(source_ids)
            sources.append({
                "ids": source_ids,
                "encoder_output": encoder_output.tolist(),
                "target_ids": target_ids,
                "forced_logits": model.forced_logits(encoder_output, target_ids).tolist(),
                "greedy": search_record(model, source_ids, GREEDY),
                "beam": search_record(model, source_ids, BEAM),
            })
        text_records = []
        for text in texts:
            pieces, source_ids = model.tokenize(text)
            greedy = search_record(model, source_ids, GREEDY)
            beam = search_record(model, source_ids, BEAM)
            text_records.append({
                "text": text,
                "pieces": pieces,
                "ids": source_ids,
                "greedy": greedy,
                "beam": beam,
                "greedy_text": model.detokenize(greedy["hypotheses"][0]["ids"]),
                "beam_texts": [model.detokenize(h["ids"]) for h in beam["hypotheses"]],
            })
    result = {
        "settings": {"greedy": GREEDY, "beam": BEAM, "max_decoding_length": MAX_DECODING_LENGTH,
                     "length_penalty": LENGTH_PENALTY},
        "sources": sources,
        "texts": text_records,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


# --- Self-test ---------------------------------------------------------------------------------

class SelfTest:
    def __init__(self):
        self.failures = 0

    def close(self, what, actual, expected, tolerance=1e-5):
        error = float((torch.as_tensor(actual) - torch.as_tensor(expected)).abs().max())
        ok = error <= tolerance
        self.failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs error {error:.3g}")

    def true(self, what, condition):
        self.failures += 0 if condition else 1
        print(f"{'ok  ' if condition else 'FAIL'} {what}")


def check_building_blocks(check):
    torch.manual_seed(0)
    d, heads = 30, 5
    x = torch.randn(2, 7, d)
    memory = torch.randn(2, 4, d)
    gamma, beta = 1 + 0.1 * torch.randn(d), 0.1 * torch.randn(d)
    check.close("layer_norm vs F.layer_norm", layer_norm(x, gamma, beta),
                F.layer_norm(x, (d,), gamma, beta, LAYER_NORM_EPS))
    check.close("relu vs F.relu", activation("relu", x), F.relu(x))
    check.close("gelu vs F.gelu", activation("gelu", x), F.gelu(x))
    check.close("swish vs F.silu", activation("swish", x), F.silu(x))
    check.close("gelu_new vs F.gelu(tanh)", activation("gelu_new", x),
                F.gelu(x, approximate="tanh"))

    weights = {}
    for proj in ("q", "k", "v", "out"):
        weights[f"a.{proj}_proj.weight"] = torch.randn(d, d) / math.sqrt(d)
        weights[f"a.{proj}_proj.bias"] = 0.1 * torch.randn(d)
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([weights[f"a.{p}_proj.weight"] for p in "qkv"]))
        mha.in_proj_bias.copy_(torch.cat([weights[f"a.{p}_proj.bias"] for p in "qkv"]))
        mha.out_proj.weight.copy_(weights["a.out_proj.weight"])
        mha.out_proj.bias.copy_(weights["a.out_proj.bias"])
        causal_mask = torch.triu(torch.full((7, 7), float("-inf")), diagonal=1)
        expected_self, _ = mha(x, x, x, attn_mask=causal_mask, need_weights=False)
        expected_cross, _ = mha(x, memory, memory, need_weights=False)
    check.close("causal self-attention vs nn.MultiheadAttention",
                attention(x, x, weights, "a", heads, causal=True), expected_self)
    check.close("cross-attention vs nn.MultiheadAttention",
                attention(x, memory, weights, "a", heads, causal=False), expected_cross)

    for dim in (32, 30, 7):
        table = marian_positions(50, dim)
        half = (dim + 1) // 2
        p = torch.arange(50, dtype=torch.float64)[:, None]
        sin_freq = torch.pow(10000.0, -2.0 * torch.arange(half, dtype=torch.float64) / dim)
        cos_freq = sin_freq[: dim - half]
        second = torch.cat([torch.sin(p * sin_freq), torch.cos(p * cos_freq)], dim=1).float()
        check.close(f"positions d={dim} vs sin/cos halves", table, second, 1e-6)


def check_model(check, model_dir, label):
    model = MarianModel(model_dir)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        source = random_sources(model, rng)[2]
        memory = model.encode(source)
        check.true(f"{label}: encoder output is finite and varied",
                   bool(torch.isfinite(memory).all()) and float(memory.std()) > 0.1)

        # The encoder on a batch of one equals the encoder on each prefix-free copy; the decoder's
        # causal mask means each row equals a run on the truncated input (no future leaks).
        target = [int(x) for x in rng.integers(0, model.vocab_size, size=6)]
        forced = model.forced_logits(memory, target)
        inputs = [model.start_id] + target[:-1]
        truncated = torch.stack([model.decode(memory, [inputs[: t + 1]])[0, -1]
                                 for t in range(len(target))])
        check.close(f"{label}: teacher forcing vs one run per prefix", forced, truncated, 1e-4)

        # float64 run of the same weights: the float32 reference is accurate.
        model64 = MarianModel(model_dir)
        for name in model64.w:
            model64.w[name] = model64.w[name].double()
        model64.source_embeddings = model64.source_embeddings.double()
        model64.target_embeddings = model64.target_embeddings.double()
        model64.lm_head = model64.lm_head.double()
        model64.final_logits_bias = model64.final_logits_bias.double()
        model64.positions = model64.positions.double()
        forced64 = model64.forced_logits(model64.encode(source), target)
        check.close(f"{label}: float32 vs float64 logits", forced, forced64.float(), 1e-4)

        greedy, _ = beam_search(model, source, 1, 1, MAX_DECODING_LENGTH)
        ids, score = greedy[0]
        # Greedy is argmax under teacher forcing of its own output, and its score is the sum of
        # those log-probabilities over the target tokens and </s>, divided by their count.
        ended = len(ids) < MAX_DECODING_LENGTH
        full = ids + ([model.eos_id] if ended else [])
        logits = model.forced_logits(memory, full)
        logits[:, model.pad_id] = float("-inf")
        check.true(f"{label}: greedy picks the argmax at every step",
                   logits.argmax(dim=-1).tolist() == full)
        logp = torch.log_softmax(model.forced_logits(memory, full), dim=-1)
        total = float(sum(logp[t, tok] for t, tok in enumerate(full)))
        check.close(f"{label}: greedy score vs forced log-probabilities", score,
                    total / len(full), 1e-4)

        beams, _ = beam_search(model, source, 4, 4, MAX_DECODING_LENGTH)
        for ids, score in beams:
            ended = len(ids) < MAX_DECODING_LENGTH
            full = ids + ([model.eos_id] if ended else [])
            logp = torch.log_softmax(model.forced_logits(memory, full), dim=-1)
            total = float(sum(logp[t, tok] for t, tok in enumerate(full)))
            check.close(f"{label}: beam score of {len(full)} tokens vs forced log-probabilities",
                        score, total / len(full), 1e-4)
            check.true(f"{label}: beam output has no <pad>", model.pad_id not in ids)
        check.true(f"{label}: beam hypotheses sorted",
                   all(a[1] >= b[1] for a, b in zip(beams, beams[1:])))
        outputs = [beam_search(model, s, 1, 1, MAX_DECODING_LENGTH)[0][0][0]
                   for s in random_sources(model, rng)]
        check.true(f"{label}: greedy outputs are varied: {outputs}",
                   len(set(sum(outputs, []))) >= 3)

        for K, n, max_length, penalty, min_length in ((4, 2, MAX_DECODING_LENGTH, 1.0, 0),
                                                      (3, 3, 7, 0.0, 0), (2, 1, 12, 0.6, 5)):
            fast, _ = beam_search(model, source, K, n, max_length, penalty, min_length)
            slow = naive_beam_search(model, source, K, n, max_length, penalty, min_length)
            check.true(f"{label}: beam K={K} n={n} max={max_length} lp={penalty} "
                       f"min={min_length} vs a naive implementation",
                       [h[0] for h in fast] == [h[0] for h in slow] and
                       all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(fast, slow)))

        # Beam search through the batch path equals one hypothesis at a time.
        def one_by_one(inputs):
            return torch.cat([model.decode(memory, [row])[:, -1, :] for row in inputs])

        beams_split, _ = beam_search(model, source, 4, 4, MAX_DECODING_LENGTH,
                                     logits_fn=one_by_one)
        check.true(f"{label}: beam search batched vs one hypothesis at a time",
                   [b[0] for b in beams] == [b[0] for b in beams_split])

        pieces, text_ids = model.tokenize("The diabetes research is still in its early days. 日本")
        unk = model.source_vocab["<unk>"]
        check.true(f"{label}: tokenisation maps unknown pieces to <unk>", unk in text_ids)
        check.true(f"{label}: tokenisation ends with </s>",
                   text_ids[-1] == model.source_vocab["</s>"] and len(pieces) + 1 == len(text_ids))
        coded, coded_ids = model.tokenize(">>deu<< The diabetes research")
        check.true(f"{label}: a language code is a token of its own",
                   coded[0] == ">>deu<<" and coded_ids[0] == model.source_vocab[">>deu<<"]
                   and coded[1:] == model.tokenize("The diabetes research")[0])
        spm_ids = model.source_spm.encode("The diabetes research", out_type=int)
        model_ids = model.tokenize("The diabetes research")[1][:-1]
        check.true(f"{label}: SentencePiece ids differ from model ids", spm_ids != model_ids)


def naive_beam_search(model, source_ids, K, num_hypotheses, max_length, length_penalty,
                      min_length):
    """docs/DECODING.md once more, with plain Python lists and one decoder call per hypothesis."""
    memory = model.encode(source_ids)
    eos = model.eos_id
    alive = [([], np.float32(0))]
    finished = []
    for t in range(max_length):
        candidates = []
        for h, (ids, cum) in enumerate(alive):
            logits = model.decode(memory, [[model.start_id] + ids])[0, -1]
            logp = torch.log_softmax(logits, dim=-1).numpy().astype(np.float32)
            for v in range(len(logp)):
                if v == model.pad_id or (v == eos and t < min_length):
                    continue
                candidates.append((np.float32(cum + logp[v]), h * len(logp) + v, h, v))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        survivors = []
        for rank, (score, _, h, v) in enumerate(candidates[: 2 * K]):
            if v == eos:
                if rank < K:
                    length = np.float32(t + 1)
                    norm = np.float32(1) if length_penalty == 0 else np.float32(
                        length ** np.float32(length_penalty))
                    finished.append((alive[h][0], np.float32(score / norm)))
            elif len(survivors) < K:
                survivors.append((alive[h][0] + [v], score))
        if t + 1 == max_length:
            for ids, cum in survivors:
                norm = np.float32(1) if length_penalty == 0 else np.float32(
                    np.float32(t + 1) ** np.float32(length_penalty))
                finished.append((ids, np.float32(cum / norm)))
            survivors = []
        alive = survivors
        if len(finished) >= K or not alive:
            break
    order = sorted(range(len(finished)), key=lambda i: (-finished[i][1], i))
    return [(finished[i][0], float(finished[i][1])) for i in order[:num_hypotheses]]


def self_test(testsets):
    check = SelfTest()
    check_building_blocks(check)
    generator = os.path.join(HERE, "make_marian_model.py")
    variants = {
        "post-norm swish shared": ["--activation", "swish"],
        "pre-norm gelu separate 5 heads": ["--pre-norm", "--activation", "gelu",
                                           "--separate-vocab", "--heads", "5", "--d-model", "40"],
        "post-norm relu unscaled untied": ["--activation", "relu", "--no-scale-embedding",
                                           "--untied-lm-head", "--seed", "23"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, flags) in enumerate(variants.items()):
            model_dir = os.path.join(tmp, str(index))
            text_flags = []
            if testsets:
                text_flags = ["--source-text", os.path.join(testsets, "flores200.devtest.eng_Latn"),
                              "--target-text", os.path.join(testsets, "flores200.devtest.deu_Latn")]
            subprocess.run([sys.executable, generator, model_dir, "--seed", str(index + 1)] + flags +
                           text_flags, check=True)  # A --seed in `flags` comes last and wins.
            check_model(check, model_dir, label)
    print("self-test:", "FAILED" if check.failures else "passed", f"({check.failures} failures)")
    return 1 if check.failures else 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", nargs="?")
    p.add_argument("out", nargs="?")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", action="append", default=[])
    p.add_argument("--texts-file", help="more texts, one per line")
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--testsets", help="self-test: the folder of the text to train SentencePiece "
                   "on (default: ../shared/testsets from the repository)")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test(args.testsets)
    if not args.model_dir or not args.out:
        p.error("MODEL_DIR and OUT are required")
    texts = list(args.text)
    if args.texts_file:
        with open(args.texts_file, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f]
    run(args.model_dir, args.out, args.seed, texts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
