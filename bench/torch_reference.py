#!/usr/bin/python3
"""The PyTorch side of kvmt-bench: the same model, the same inputs, the same work, timed.

kvmt-bench writes MODEL_DIR (config.json + model.safetensors in kvmt's own tensor names, the
position tables included, so both engines compute exactly the same function) and WORKLOAD.json
(source ids, search settings, thread counts); this script runs the same searches with its own
KV cache and writes OUT.json: seconds, target tokens/s, batch-1 latencies, peak RSS and the
output ids (for the agreement with kvmt).

Threads: torch.set_num_threads for torch's own OpenMP pool and openblas_set_num_threads for
OpenBLAS, which does the matrix products of Debian's torch and keeps a pool of its own.

A straightforward, efficient eager implementation: torch.nn.functional linear / layer_norm /
softmax, one preallocated self-attention K/V cache per layer written in place and gathered by
beam parents (as HuggingFace's generate does), source K/V computed once per batch, beam search
vectorised over the batch. Since kvmt-bench fixes the output length (min = max decoding length),
</s> is masked at every step and the beam search of docs/DECODING.md reduces to keeping the K
best of the K x V candidates of each segment.

  torch_reference.py MODEL_DIR WORKLOAD.json OUT.json
"""

import ctypes
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import safetensors_io  # noqa: E402

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "swish": F.silu,
}


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            self.config = c = json.load(f)
        tensors = safetensors_io.read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {name: torch.from_numpy(np.array(value, dtype=np.float32))
                  for name, value in tensors.items()}
        self.d = c["d_model"]
        self.heads = c["num_heads"]
        self.head_dim = self.d // self.heads
        self.encoder_layers = c["encoder_layers"]
        self.decoder_layers = c["decoder_layers"]
        self.pre_norm = c["pre_norm"]
        self.eps = c["layer_norm_epsilon"]
        self.embedding_scale = c["embedding_scale"]
        self.activation = ACTIVATIONS[c["activation"]]
        self.start_id = c["decoder_start_id"]
        self.eos_id = c["eos_id"]
        self.vocab = self.w["output_projection.weight"].shape[0]

    def linear(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def norm(self, x, name):
        return F.layer_norm(x, (self.d,), self.w[name + ".gamma"], self.w[name + ".beta"],
                            self.eps)

    def sublayer(self, x, norm_name, fn):
        if self.pre_norm:
            return x + fn(self.norm(x, norm_name))
        return self.norm(x + fn(x), norm_name)

    def split_heads(self, x):
        """[N, T, d] -> [N, H, T, hd]."""
        n, t, _ = x.shape
        return x.view(n, t, self.heads, self.head_dim).transpose(1, 2)

    def attend(self, q, k, v, mask=None):
        """q [N, H, Tq, hd], k/v [N, H, Tk, hd] -> [N, Tq, d]."""
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        n, _, tq, _ = context.shape
        return context.transpose(1, 2).reshape(n, tq, self.d)

    def ffn(self, x, prefix):
        return self.linear(self.activation(self.linear(x, prefix + ".ffn_inner")),
                           prefix + ".ffn_outer")

    def encode(self, sources):
        """sources: lists of ids -> (encoder output [B, S, d], key padding mask [B, 1, 1, S])."""
        batch, length = len(sources), max(len(s) for s in sources)
        ids = torch.zeros(batch, length, dtype=torch.long)
        pad = torch.ones(batch, length, dtype=torch.bool)
        for b, s in enumerate(sources):
            ids[b, :len(s)] = torch.tensor(s)
            pad[b, :len(s)] = False
        mask = pad[:, None, None, :]
        x = (self.w["source_embeddings"][ids] * self.embedding_scale +
             self.w["source_positions"][:length])
        for l in range(self.encoder_layers):
            p = f"encoder.{l}"

            def self_attention(h, p=p):
                q, k, v = self.linear(h, p + ".self_attention_qkv").split(self.d, dim=-1)
                context = self.attend(self.split_heads(q), self.split_heads(k),
                                      self.split_heads(v), mask)
                return self.linear(context, p + ".self_attention_output")

            x = self.sublayer(x, p + ".self_attention_norm", self_attention)
            x = self.sublayer(x, p + ".ffn_norm", lambda h, p=p: self.ffn(h, p))
        if self.pre_norm:
            x = self.norm(x, "encoder_final_norm")
        return x, mask

    def source_kv(self, memory):
        """Every decoder layer's cross-attention K/V: [B, H, S, hd] each."""
        out = []
        for l in range(self.decoder_layers):
            k, v = self.linear(memory, f"decoder.{l}.cross_attention_kv").split(self.d, dim=-1)
            out.append((self.split_heads(k), self.split_heads(v)))
        return out


class DecoderState:
    """Self-attention K/V per layer, [N, H, max_length, hd], written in place step by step."""

    def __init__(self, model, rows, max_length, source_kv, source_mask):
        shape = (rows, model.heads, max_length, model.head_dim)
        self.keys = [torch.empty(shape) for _ in range(model.decoder_layers)]
        self.values = [torch.empty(shape) for _ in range(model.decoder_layers)]
        self.source_kv = source_kv
        self.source_mask = source_mask
        self.length = 0

    def reorder(self, parents):
        t = self.length
        for l in range(len(self.keys)):
            self.keys[l][:, :, :t] = self.keys[l][:, :, :t].index_select(0, parents)
            self.values[l][:, :, :t] = self.values[l][:, :, :t].index_select(0, parents)
        self.source_kv = [(k.index_select(0, parents), v.index_select(0, parents))
                          for k, v in self.source_kv]
        self.source_mask = self.source_mask.index_select(0, parents)

    def grow_rows(self, rows):
        if self.keys[0].shape[0] >= rows:
            return
        for store in (self.keys, self.values):
            for l in range(len(store)):
                extra = store[l].new_empty((rows - store[l].shape[0],) + store[l].shape[1:])
                store[l] = torch.cat([store[l], extra])


def decoder_step(model, state, tokens):
    """tokens [N] -> logits [N, V]; appends this position's K/V to the state."""
    t = state.length
    x = (model.w["target_embeddings"][tokens] * model.embedding_scale +
         model.w["target_positions"][t])[:, None, :]
    for l in range(model.decoder_layers):
        p = f"decoder.{l}"

        def self_attention(h, l=l, p=p):
            q, k, v = model.linear(h, p + ".self_attention_qkv").split(model.d, dim=-1)
            state.keys[l][:, :, t:t + 1] = model.split_heads(k)
            state.values[l][:, :, t:t + 1] = model.split_heads(v)
            context = model.attend(model.split_heads(q), state.keys[l][:, :, :t + 1],
                                   state.values[l][:, :, :t + 1])
            return model.linear(context, p + ".self_attention_output")

        def cross_attention(h, l=l, p=p):
            q = model.split_heads(model.linear(h, p + ".cross_attention_query"))
            k, v = state.source_kv[l]
            context = model.attend(q, k, v, state.source_mask)
            return model.linear(context, p + ".cross_attention_output")

        x = model.sublayer(x, p + ".self_attention_norm", self_attention)
        x = model.sublayer(x, p + ".cross_attention_norm", cross_attention)
        x = model.sublayer(x, p + ".ffn_norm", lambda h, p=p: model.ffn(h, p))
    if model.pre_norm:
        x = model.norm(x, "decoder_final_norm")
    state.length += 1
    return model.linear(x[:, 0, :], "output_projection")


def translate(model, sources, beam_size, length):
    """Fixed-length beam (or greedy) search; returns the best hypothesis' ids per source."""
    batch = len(sources)
    memory, mask = model.encode(sources)
    state = DecoderState(model, batch, length, model.source_kv(memory), mask)
    tokens = torch.full((batch,), model.start_id, dtype=torch.long)
    cumulative = torch.zeros(batch)
    history = torch.zeros(batch, 0, dtype=torch.long)
    beams = 1
    for _ in range(length):
        logp = torch.log_softmax(decoder_step(model, state, tokens), dim=-1)
        logp[:, model.eos_id] = float("-inf")  # min = max decoding length.
        if beam_size == 1:
            tokens = logp.argmax(dim=-1)
            history = torch.cat([history, tokens[:, None]], dim=1)
            continue
        scores = (cumulative[:, None] + logp).view(batch, beams * model.vocab)
        top_scores, top = scores.topk(beam_size, dim=-1)
        parents = (torch.arange(batch)[:, None] * beams + top // model.vocab).view(-1)
        tokens = (top % model.vocab).view(-1)
        cumulative = top_scores.view(-1)
        if beams == 1:
            state.grow_rows(batch * beam_size)
        state.reorder(parents)
        history = torch.cat([history.index_select(0, parents), tokens[:, None]], dim=1)
        beams = beam_size
    # Beams of a segment are sorted best first by topk; all have the same length.
    return history.view(batch, -1, length)[:, 0, :].tolist()


def set_blas_threads(threads):
    """torch.set_num_threads sizes torch's OpenMP pool only; Debian's torch does its matrix
    products in OpenBLAS (libopenblas0-pthread), whose own pool must be sized as well."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    sized = []
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        if hasattr(library, "openblas_set_num_threads"):
            library.openblas_set_num_threads(threads)
            sized.append(library.openblas_get_num_threads())
    return sized


def main(argv):
    model_dir, workload_path, out_path = argv
    with open(workload_path, encoding="utf-8") as f:
        work = json.load(f)
    torch.set_num_interop_threads(1)
    F.linear(torch.ones(2, 2), torch.ones(2, 2))  # Loads the BLAS library.
    model = Model(model_dir)
    length = work["length"]
    results = []
    with torch.no_grad():
        for threads in work["threads"]:
            torch.set_num_threads(threads)
            blas_threads = set_blas_threads(threads)
            if not blas_threads or any(t != threads for t in blas_threads):
                raise RuntimeError(f"could not size OpenBLAS to {threads} threads: {blas_threads}")
            translate(model, work["batch_sources"][:2], 2, 2)  # Warm-up.
            for name, beam in (("beam", work["beam_size"]), ("greedy", 1)):
                start, cpu_start = time.perf_counter(), time.process_time()
                outputs = translate(model, work["batch_sources"], beam, length)
                seconds = time.perf_counter() - start
                cpu_seconds = time.process_time() - cpu_start
                results.append({"threads": threads, "workload": name, "seconds": seconds,
                                "cpu_seconds": cpu_seconds,
                                "target_tokens": len(outputs) * length, "outputs": outputs})
            latencies = []
            latency_outputs = []
            for source in work["latency_sources"]:
                start = time.perf_counter()
                latency_outputs.append(translate(model, [source], 1, length)[0])
                latencies.append(time.perf_counter() - start)
            results.append({"threads": threads, "workload": "latency", "latencies": latencies,
                            "outputs": latency_outputs})
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"torch": torch.__version__, "peak_rss_bytes": peak_kb * 1024,
                   "results": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
