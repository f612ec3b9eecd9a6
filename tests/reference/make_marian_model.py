#!/usr/bin/python3
"""Writes a small random model in the exact HuggingFace Marian / OPUS-MT layout.

OUT_DIR gets config.json, model.safetensors, vocab.json (and target_vocab.json with
--separate-vocab), source.spm and target.spm. The SentencePiece models are trained on the spot
on lines of real text; vocab.json maps their pieces to model ids in a shuffled order, so that
SentencePiece ids and model ids differ, and leaves out two source pieces, which must then map to
<unk>. The weights are random but shaped so that outputs are varied and end at varied lengths
(see make_weights and calibrate_eos_bias; the calibration runs the reference model).

--dump FILE writes, for the loader tests, the values of a few tensors as stored (after any
float16/bfloat16 rounding) and facts about the vocabularies.
"""

import argparse
import io
import json
import math
import os
import sys

import numpy as np
import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TESTSETS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testsets"))

# Special pieces of an OPUS-MT vocabulary and where Marian puts them.
EOS, UNK, PAD = "</s>", "<unk>", "<pad>"
# SentencePiece ids (after its <unk>, <s>, </s>) of the source pieces left out of vocab.json.
DROPPED_SOURCE_SPM_IDS = (10, 20)
LANGUAGE_CODES = (">>deu<<", ">>fra<<")
# Texts whose SentencePiece pieces and decoding the dump records.
SAMPLE_TEXTS = ("Hello world.", "The research is still in its early days, he said.",
                "Grüße aus München! 日本", "")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--pre-norm", action="store_true",
                   help="write normalize_before: true and the final encoder/decoder layer norms")
    p.add_argument("--activation", default="swish",
                   choices=["relu", "gelu", "swish", "silu", "gelu_new", "gelu_pytorch_tanh"])
    p.add_argument("--separate-vocab", action="store_true",
                   help="share_encoder_decoder_embeddings: false, with target_vocab.json")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers")
    p.add_argument("--encoder-layers", type=int)
    p.add_argument("--decoder-layers", type=int)
    p.add_argument("--ffn", type=int, default=64)
    p.add_argument("--scale-embedding", dest="scale_embedding", action="store_true", default=True)
    p.add_argument("--no-scale-embedding", dest="scale_embedding", action="store_false")
    p.add_argument("--max-positions", type=int, default=64)
    p.add_argument("--source-spm-size", type=int, default=200)
    p.add_argument("--target-spm-size", type=int, default=160)
    p.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    p.add_argument("--untied-lm-head", action="store_true", help="write lm_head.weight")
    p.add_argument("--embedding-names", default="shared", choices=["shared", "all"],
                   help="shared vocab: write model.shared.weight only, or also the encoder's and "
                   "decoder's embed_tokens copies")
    p.add_argument("--no-position-tensors", action="store_true",
                   help="leave out model.{encoder,decoder}.embed_positions.weight")
    p.add_argument("--eos-bias", type=float, default=0.0,
                   help="</s>'s final_logits_bias, added to the calibrated one")
    p.add_argument("--eos-step", type=int, default=8,
                   help="calibrate </s>'s bias so that greedy outputs end around this step "
                   "(needs torch); 0: no calibration")
    p.add_argument("--eos-position", type=int, default=8,
                   help="the step around which </s> becomes likely")
    p.add_argument("--eos-weight", type=float, default=4.0,
                   help="norm of the </s> output row")
    p.add_argument("--input-gain", type=float, default=1.0,
                   help="std * sqrt(fan_in) of the Q/K/V and fc1 weights")
    p.add_argument("--output-gain", type=float, default=1.0,
                   help="std * sqrt(fan_in) of the out_proj and fc2 weights")
    p.add_argument("--bias-std", type=float, default=0.1)
    p.add_argument("--logit-gain", type=float, default=1.0,
                   help="std of the gamma of the decoder's last layer norm")
    p.add_argument("--embedding-std", type=float, default=2.0,
                   help="std of the embeddings once scaled")
    p.add_argument("--num-beams", type=int, default=4)
    p.add_argument("--source-text", default=os.path.join(DEFAULT_TESTSETS,
                                                         "flores200.devtest.eng_Latn"))
    p.add_argument("--target-text", default=os.path.join(DEFAULT_TESTSETS,
                                                         "flores200.devtest.deu_Latn"))
    p.add_argument("--lines", type=int, default=300, help="lines of text to train on")
    p.add_argument("--dump", help="JSON file for the loader tests")
    return p.parse_args(argv)


def train_spm(path, text_file, lines, vocab_size):
    with open(text_file, encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for _, line in zip(range(lines), f)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, num_threads=1, input_sentence_size=0,
        shuffle_input_sentence=False, hard_vocab_limit=False, minloglevel=2)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    processor = spm.SentencePieceProcessor(model_file=path)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())
            if not (processor.is_control(i) or processor.is_unknown(i))]


def make_vocabulary(pieces, rng):
    """Marian's order: </s> 0, <unk> 1, the pieces in a shuffled order, <pad> last."""
    order = rng.permutation(len(pieces))
    vocab = {EOS: 0, UNK: 1}
    for rank, index in enumerate(order):
        vocab[pieces[index]] = rank + 2
    vocab[PAD] = len(vocab)
    return vocab


def marian_positions(n_pos, dim):
    """HuggingFace's MarianSinusoidalPositionalEmbedding._init_weight, verbatim in numpy."""
    position_enc = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = np.zeros((n_pos, dim), dtype=np.float32)
    sentinel = dim // 2 if dim % 2 == 0 else (dim // 2) + 1
    out[:, 0:sentinel] = np.sin(position_enc[:, 0::2])
    out[:, sentinel:] = np.cos(position_enc[:, 1::2])
    return out


class WeightWriter:
    def __init__(self, dtype):
        self.dtype = dtype
        self.tensors = []
        self.stored = {}

    def add(self, name, values, dtype=None):
        dtype = dtype or self.dtype
        raw, stored = safetensors_io.encode_tensor(values, dtype)
        self.tensors.append((name, dtype, np.shape(values), raw))
        self.stored[name] = stored


def spm_samples(out_dir):
    samples = {}
    for name in ("source.spm", "target.spm"):
        processor = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, name))
        samples[name] = []
        for text in SAMPLE_TEXTS:
            pieces = processor.encode(text, out_type=str)
            samples[name].append({"text": text, "pieces": pieces,
                                  "decoded": processor.decode_pieces(pieces)})
    return samples


def make_weights(args, source_size, target_size, encoder_layers, decoder_layers, eos_id, rng):
    """{name: float32 array} in HuggingFace Marian's names, in the order they are written.

    Random Transformers tend to repeat one token forever or stop at once. Three choices keep
    these ones varied: embeddings larger than the position encodings; a zero-mean gamma in the
    decoder's last layer norm, which takes away the tied output projection's pull towards the
    input token; and a </s> output row aligned with the position encoding of --eos-position
    through that gamma, so that </s> grows likely around that step instead of anywhere.
    """
    d, ffn = args.d_model, args.ffn

    def normal(shape, std):
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    weights = {}
    # The scaled embeddings get std --embedding-std whether or not scale_embedding is on.
    embedding_std = args.embedding_std / (np.sqrt(d) if args.scale_embedding else 1.0)
    if args.separate_vocab:
        weights["model.encoder.embed_tokens.weight"] = normal((source_size, d), embedding_std)
        weights["model.decoder.embed_tokens.weight"] = normal((target_size, d), embedding_std)
        output_name = "model.decoder.embed_tokens.weight"
    else:
        weights["model.shared.weight"] = normal((source_size, d), embedding_std)
        output_name = "model.shared.weight"
    if not args.no_position_tensors:
        positions = marian_positions(args.max_positions, d)
        weights["model.encoder.embed_positions.weight"] = positions
        weights["model.decoder.embed_positions.weight"] = positions

    def linear(prefix, out_dim, in_dim, gain):
        weights[prefix + ".weight"] = normal((out_dim, in_dim), gain / np.sqrt(in_dim))
        weights[prefix + ".bias"] = normal((out_dim,), args.bias_std)

    def layer_norm(prefix, gamma_mean=1.0, gamma_std=0.1):
        weights[prefix + ".weight"] = gamma_mean + normal((d,), gamma_std)
        weights[prefix + ".bias"] = normal((d,), 0.1)

    last_norm = ("model.decoder.layer_norm" if args.pre_norm
                 else f"model.decoder.layers.{decoder_layers - 1}.final_layer_norm")
    for side, count in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        for i in range(count):
            prefix = f"model.{side}.layers.{i}"
            attentions = ("self_attn", "encoder_attn") if side == "decoder" else ("self_attn",)
            for attention in attentions:
                for proj in ("q", "k", "v", "out"):
                    linear(f"{prefix}.{attention}.{proj}_proj", d, d,
                           args.output_gain if proj == "out" else args.input_gain)
                layer_norm(f"{prefix}.{attention}_layer_norm")
            linear(f"{prefix}.fc1", ffn, d, args.input_gain)
            linear(f"{prefix}.fc2", d, ffn, args.output_gain)
            layer_norm(f"{prefix}.final_layer_norm")
        if args.pre_norm:
            layer_norm(f"model.{side}.layer_norm")
    layer_norm(last_norm, 0.0, args.logit_gain)
    if args.untied_lm_head:
        weights["lm_head.weight"] = normal((target_size, d), embedding_std)
        output_name = "lm_head.weight"

    gamma = weights[last_norm + ".weight"]
    position = marian_positions(args.eos_position + 1, d)[args.eos_position]
    eos_row = gamma * (position - position.mean())
    weights[output_name][eos_id] = args.eos_weight * eos_row / np.linalg.norm(eos_row)
    bias = normal((1, target_size), 0.5)
    bias[0, eos_id] = args.eos_bias
    weights["final_logits_bias"] = bias
    if not args.separate_vocab and args.embedding_names == "all":
        weights["model.encoder.embed_tokens.weight"] = weights["model.shared.weight"]
        weights["model.decoder.embed_tokens.weight"] = weights["model.shared.weight"]
    return weights


def write_weights(path, weights, dtype):
    w = WeightWriter(dtype)
    for name, values in weights.items():
        w.add(name, values)
    safetensors_io.write_safetensors(path, w.tensors, metadata={"format": "pt"})
    return w


def calibrate_eos_bias(args, eos_id):
    """</s>'s bias such that greedy search on random sources tends to end near --eos-step.

    Until </s> wins, greedy search follows the path it takes with </s> forbidden; on that path
    the gap g_t = (best other logit) - (</s> logit) at each step t gives, for a bias b, the
    length min{t : g_t < b}. The bias puts that length at --eos-step or before for about half
    of the sources, but rarely ends them at the first two steps. Uses the reference model.
    """
    import torch  # Only here: the model files alone need no torch.
    import marian_reference

    model = marian_reference.MarianModel(args.out_dir)
    rng = np.random.default_rng(args.seed + 1000)
    bias_now = float(model.final_logits_bias[eos_id])
    earliest, first_two = [], []
    with torch.no_grad():
        source_eos = model.source_vocab["</s>"]
        for length in (2, 4, 6, 8, 10, 12):
            # Ids 2 .. size-2 of Marian's layout are pieces: no </s>, <unk> or <pad>.
            source = [int(x) for x in rng.integers(2, len(model.source_vocab) - 1, size=length)]
            memory = model.encode(source + [source_eos])
            inputs = [model.start_id]
            gaps = []
            for _ in range(args.eos_step + 1):
                logits = model.decode(memory, [inputs])[0, -1]
                eos_logit = float(logits[eos_id]) - bias_now
                logits[eos_id] = -math.inf
                logits[model.pad_id] = -math.inf
                gaps.append(float(logits.max()) - eos_logit)
                inputs.append(int(logits.argmax()))
            first_two += gaps[:2]
            earliest.append(min(gaps[2:]))
    return min(float(np.median(earliest)), float(np.quantile(first_two, 0.2))) + args.eos_bias


def main(argv):
    args = parse_args(argv)
    if args.d_model % args.heads != 0:
        sys.exit(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
    encoder_layers = args.encoder_layers if args.encoder_layers is not None else args.layers
    decoder_layers = args.decoder_layers if args.decoder_layers is not None else args.layers
    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    source_pieces = train_spm(os.path.join(args.out_dir, "source.spm"), args.source_text,
                              args.lines, args.source_spm_size)
    target_pieces = train_spm(os.path.join(args.out_dir, "target.spm"), args.target_text,
                              args.lines, args.target_spm_size)
    source_processor = spm.SentencePieceProcessor(
        model_file=os.path.join(args.out_dir, "source.spm"))
    dropped = [source_processor.id_to_piece(i) for i in DROPPED_SOURCE_SPM_IDS]

    # Multilingual OPUS-MT vocabularies hold target language codes; the tokenizer splits them off.
    source_pieces = source_pieces + list(LANGUAGE_CODES)
    if args.separate_vocab:
        vocab = make_vocabulary([p for p in source_pieces if p not in dropped], rng)
        target_vocab = make_vocabulary(target_pieces, rng)
    else:
        union = source_pieces + [p for p in target_pieces if p not in set(source_pieces)]
        vocab = make_vocabulary([p for p in union if p not in dropped], rng)
        target_vocab = vocab
    with open(os.path.join(args.out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    if args.separate_vocab:
        with open(os.path.join(args.out_dir, "target_vocab.json"), "w", encoding="utf-8") as f:
            json.dump(target_vocab, f, ensure_ascii=False, indent=2)

    d, ffn = args.d_model, args.ffn
    source_size, target_size = len(vocab), len(target_vocab)
    pad_id = target_vocab[PAD]
    eos_id = target_vocab[EOS]
    assert vocab[EOS] == eos_id

    weights = make_weights(args, source_size, target_size, encoder_layers, decoder_layers,
                           eos_id, rng)
    config = {
        "_name_or_path": "kvmt-random-marian",
        "activation_dropout": 0.0,
        "activation_function": args.activation,
        "architectures": ["MarianMTModel"],
        "attention_dropout": 0.0,
        "bad_words_ids": [[pad_id]],
        "bos_token_id": 0,
        "classifier_dropout": 0.0,
        "d_model": d,
        "decoder_attention_heads": args.heads,
        "decoder_ffn_dim": ffn,
        "decoder_layerdrop": 0.0,
        "decoder_layers": decoder_layers,
        "decoder_start_token_id": pad_id,
        "decoder_vocab_size": target_size,
        "dropout": 0.1,
        "encoder_attention_heads": args.heads,
        "encoder_ffn_dim": ffn,
        "encoder_layerdrop": 0.0,
        "encoder_layers": encoder_layers,
        "eos_token_id": eos_id,
        "forced_eos_token_id": eos_id,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": 512,
        "max_position_embeddings": args.max_positions,
        "model_type": "marian",
        "normalize_embedding": False,
        "num_beams": args.num_beams,
        "num_hidden_layers": encoder_layers,
        "pad_token_id": pad_id,
        "scale_embedding": args.scale_embedding,
        "share_encoder_decoder_embeddings": not args.separate_vocab,
        "static_position_embeddings": True,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[args.dtype],
        "transformers_version": "4.30.0",
        "use_cache": True,
        "vocab_size": source_size,
    }
    if args.pre_norm:
        config["normalize_before"] = True
    with open(os.path.join(args.out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)

    weights_path = os.path.join(args.out_dir, "model.safetensors")
    w = write_weights(weights_path, weights, args.dtype)
    if args.eos_step > 0:
        weights["final_logits_bias"][0, eos_id] = calibrate_eos_bias(args, eos_id)
        w = write_weights(weights_path, weights, args.dtype)
    target_embedding_name = ("model.decoder.embed_tokens.weight" if args.separate_vocab
                             else "model.shared.weight")

    if args.dump:
        def sample(name):
            values = w.stored[name]
            return {"shape": list(values.shape), "values": values.reshape(-1).tolist()}

        first = "model.encoder.layers.0"
        last_decoder = f"model.decoder.layers.{decoder_layers - 1}"
        dump = {
            "tensors": {name: sample(name) for name in (
                "model.shared.weight" if not args.separate_vocab
                else "model.encoder.embed_tokens.weight",
                target_embedding_name,
                f"{first}.self_attn.q_proj.weight", f"{first}.self_attn.k_proj.weight",
                f"{first}.self_attn.v_proj.weight", f"{first}.self_attn.v_proj.bias",
                f"{first}.self_attn_layer_norm.weight", f"{first}.fc1.weight",
                f"{last_decoder}.encoder_attn.k_proj.weight",
                f"{last_decoder}.encoder_attn.v_proj.bias",
                f"{last_decoder}.final_layer_norm.bias", "final_logits_bias")
                + (("lm_head.weight",) if args.untied_lm_head else ())},
            "positions": marian_positions(args.max_positions, d).reshape(-1).tolist(),
            "dropped_source_pieces": dropped,
            "language_codes": list(LANGUAGE_CODES),
            "spm_samples": spm_samples(args.out_dir),
            "spm_id_differs": sum(1 for p in source_pieces if p in vocab and
                                  source_processor.piece_to_id(p) != vocab[p]),
            "pad_id": pad_id,
            "eos_id": eos_id,
            "source_vocab_size": source_size,
            "target_vocab_size": target_size,
        }
        with open(args.dump, "w", encoding="utf-8") as f:
            json.dump(dump, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
