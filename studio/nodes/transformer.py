"""Transformer pieces (the seed's BERT baseline, section 4): the encoder stack, positional encodings and
learned CLS / SEP tokens. The CLS output is taken with select_step (index 0), the input projection to
d_model is input_projection."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import BoolParam, ChoiceParam, FloatParam, IntParam
from studio.core.shapes import SEQ, TensorShape
from studio.nodes.common import MAX_CHANNELS, MAX_LAYERS, in_channels_param

CATEGORY = "Transformer"
MAX_POSITIONS = 1_000_000


class TransformerEncoder(NodeType):
    type_id = "transformer_encoder"
    category = CATEGORY
    title = "Transformer encoder"
    doc = ("num_layers torch.nn.TransformerEncoderLayer in series (torch.nn.TransformerEncoder): each is "
           "multi-head self-attention over the steps of one stock's sequence and a feed-forward network, "
           "each with a residual connection and LayerNorm (after it, or before it with norm_first). "
           "batch_first is fixed by the tensor layout; no attention mask (every step sees every step). "
           "Channels stay d_model, which nhead must divide; an input_projection before it sets d_model. "
           "Each layer is initialised on its own (torch's clones would start equal).")
    inputs = (Port("x", (SEQ,), "N×L×d_model"),)
    outputs = (Port("y", (SEQ,), "N×L×d_model"),)
    params = (
        in_channels_param("d_model", "channels of every token (the embedding width)"),
        IntParam("nhead", 1, "attention heads; each attends on d_model/nhead channels", min=1, max=1024),
        IntParam("dim_feedforward", 64, "hidden width of each layer's feed-forward network", min=1,
                 max=MAX_CHANNELS),
        FloatParam("dropout", 0.1, "dropout on attention weights, in the feed-forward network and on both "
                   "residual branches while training", min=0.0, below=1.0),
        ChoiceParam("activation", "relu", "activation of the feed-forward network", choices=("relu", "gelu")),
        FloatParam("layer_norm_eps", 1e-5, "eps of every LayerNorm (added to the variance)", min=0.0),
        BoolParam("norm_first", False, "LayerNorm before attention and feed-forward (pre-LN) instead of "
                  "after the residual additions (post-LN, the original and BERT's)"),
        BoolParam("bias", True, "biases in the attention projections, the feed-forward layers and the "
                  "LayerNorms"),
        IntParam("num_layers", 1, "encoder layers in series (the seed's \"layers\")", min=1, max=MAX_LAYERS),
        BoolParam("final_norm", False, "a LayerNorm after the last layer (the norm argument of "
                  "nn.TransformerEncoder; usual with norm_first)"),
    )
    examples = (
        {"nhead": 2, "num_layers": 2, "activation": "gelu", "norm_first": True, "final_norm": True},
        {"d_model": 4, "nhead": 4, "dim_feedforward": 8, "bias": False, "dropout": 0.0},
        {"final_norm": True, "bias": False, "layer_norm_eps": 1e-3},
    )

    def check_params(self, params):
        if params["d_model"] is not None and params["d_model"] % params["nhead"]:
            return [("nhead", f"nhead {params['nhead']} must divide d_model {params['d_model']}")]
        return []

    def warn_params(self, params):
        if params["final_norm"] and not params["norm_first"]:
            return [("final_norm", "post-LN layers already end in a LayerNorm; a final one normalises twice")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        d_model = self.resolve_channels(params, "d_model", x, "x")
        if d_model % params["nhead"]:
            raise ShapeError(f"nhead {params['nhead']} must divide the {d_model} channels (d_model); project "
                             "the features to a wider d_model first (input_projection)", param="nhead")
        return {"y": x}

    def param_count(self, params, inputs, ctx):
        d, ff, bias = inputs["x"].channels, params["dim_feedforward"], params["bias"]
        # attention in/out projections, two feed-forward layers, two LayerNorm weights; then the biases
        layer = 4 * d * d + 2 * d * ff + 2 * d + ((7 * d + ff) if bias else 0)
        final = (d + (d if bias else 0)) if params["final_norm"] else 0
        return params["num_layers"] * layer + final

    def activation_count(self, params, inputs, outputs, ctx):
        # each layer: attention weights of every head over every pair of steps (scores, softmax and its
        # dropout), the projections and norms of the steps, the feed-forward's hidden steps
        steps, d, ff = inputs["x"].length, inputs["x"].channels, params["dim_feedforward"]
        layer = 3 * params["nhead"] * steps * steps + steps * (12 * d + 3 * ff)
        return params["num_layers"] * layer + super().activation_count(params, inputs, outputs, ctx)

    def recipe(self, params, inputs, ctx):
        names = ("nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps", "norm_first", "bias",
                 "num_layers", "final_norm")
        return Recipe("studio.modules.transformer.SeqTransformerEncoder",
                      {"d_model": inputs["x"].channels, **{k: params[k] for k in names}})


class PositionalEncoding(NodeType):
    type_id = "positional_encoding"
    category = CATEGORY
    title = "Positional encoding"
    doc = ("Adds a code of each step's position to its channels, so attention (which ignores order) knows "
           "where a step is; then dropout. sinusoidal: the fixed sine/cosine code of the original "
           "transformer (no weights, any length); learned: one learned vector per position (BERT), a table "
           "of max_len rows of which the first L are used.")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (SEQ,), "N×L×C"),)
    params = (
        in_channels_param("d_model", "channels"),
        ChoiceParam("mode", "sinusoidal", "sinusoidal (fixed) or learned", choices=("sinusoidal", "learned")),
        IntParam("max_len", None, "learned: positions in the table; it must cover the input length",
                 min=1, max=MAX_POSITIONS, optional=True, none_means="the input's length"),
        FloatParam("dropout", 0.0, "dropout after adding the code, while training", min=0.0, below=1.0),
    )
    examples = ({"mode": "learned"}, {"mode": "learned", "max_len": 20, "dropout": 0.1},
                {"d_model": 4, "dropout": 0.2})

    def warn_params(self, params):
        if params["mode"] == "sinusoidal" and params["max_len"] is not None:
            return [("max_len", "used only by the learned mode (the sinusoidal code fits any length)")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "d_model", x, "x")
        if params["mode"] == "learned" and params["max_len"] is not None and params["max_len"] < x.length:
            raise ShapeError(f"max_len {params['max_len']} is shorter than the {x.length} steps arriving",
                             param="max_len")
        return {"y": x}

    def _max_len(self, params, x: TensorShape) -> int | None:
        if params["mode"] != "learned":
            return None
        return params["max_len"] if params["max_len"] is not None else x.length

    def param_count(self, params, inputs, ctx):
        x = inputs["x"]
        rows = self._max_len(params, x)
        return rows * x.channels if rows else 0

    def recipe(self, params, inputs, ctx):
        x = inputs["x"]
        return Recipe("studio.modules.transformer.PositionalEncoding", {
            "d_model": x.channels, "mode": params["mode"], "max_len": self._max_len(params, x),
            "dropout": params["dropout"]})


class SpecialTokens(NodeType):
    type_id = "cls_sep_tokens"
    category = CATEGORY
    title = "CLS / SEP tokens"
    doc = ("BERT's special tokens: a learned CLS vector put before the first step and a learned SEP vector "
           "after the last (each one vector of C channels, shared by every stock). Through the encoder the "
           "CLS step gathers a summary of the whole sequence: take it with select_step (index 0) for the "
           "score. Put it before the positional encoding, so the tokens get positions too.")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (SEQ,), "N×(L + cls + sep)×C"),)
    params = (
        in_channels_param("d_model", "channels"),
        BoolParam("cls", True, "prepend the CLS token (step 0)"),
        BoolParam("sep", True, "append the SEP token (the last step)"),
    )
    examples = ({"sep": False}, {"cls": False, "d_model": 4})

    def check_params(self, params):
        if not (params["cls"] or params["sep"]):
            return [("cls", "add at least one of the CLS and SEP tokens")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "d_model", x, "x")
        return {"y": TensorShape.seq(x.length + int(params["cls"]) + int(params["sep"]), x.channels)}

    def param_count(self, params, inputs, ctx):
        return (int(params["cls"]) + int(params["sep"])) * inputs["x"].channels

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.transformer.SpecialTokens", {
            "d_model": inputs["x"].channels, "cls": params["cls"], "sep": params["sep"]})
