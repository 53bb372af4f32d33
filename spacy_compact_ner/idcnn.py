"""The student encoder: hashed lexical embeddings, then iterated dilated convolutions (ID-CNN,
Strubell et al. 2017)."""

import importlib
from typing import Callable, Dict, List, Optional, Tuple

import numpy
from spacy.ml.featureextractor import FeatureExtractor
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.ml.staticvectors import StaticVectors
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vectors import Mode, Vectors
from thinc.api import HashEmbed, Maxout, Model, chain, concatenate, list2ragged, ragged2list, residual, with_array
from thinc.types import Floats2d, Ints1d, Ragged
from thinc.util import to_numpy

from .cpu_ops import use_cpu_gemm
from .lean import (
    _CHAIN_FORWARD,
    _no_backprop,
    fuse_maxout_layernorm,
    is_maxout_layernorm,
    maxout_layernorm_finish,
    piecewise_maxout_weights,
    release_activations,
)

_RESIDUAL_FORWARD = importlib.import_module("thinc.layers.residual").forward
_CONCATENATE_FORWARD = importlib.import_module("thinc.layers.concatenate").forward


@registry.architectures("spacy-compact-ner.IDCNN.v1")
def build_idcnn_encoder(
    *,
    width: int = 96,
    attrs: List[str] = ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
    rows: List[int] = [5000, 1000, 2500, 2500],
    include_static_vectors: bool = False,
    dilations: List[int] = [1, 2, 1],
    n_iter: int = 3,
    maxout_pieces: int = 2,
    cpu_gemm: str = "numpy",
    embed_width: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Build the ID-CNN token encoder.

    width (int): Width of the embeddings and of every convolution layer.
    attrs (List[str]): Token attributes embedded with hash embeddings (case and shape matter for NER).
    rows (List[int]): Rows of each hash embedding table, one per attribute.
    include_static_vectors (bool): Also embed the vocab's static vectors (loaded in [initialize]).
    dilations (List[int]): Dilations of the convolutions in one block.
    n_iter (int): How often the block is applied; its parameters are shared between iterations.
    maxout_pieces (int): Maxout pieces of each convolution layer.
    cpu_gemm (str): Matrix products on CPU through "numpy" (numpy's BLAS) or "blis" (thinc's default);
        same results; numpy was faster on this project's machines (see cpu_ops.py; measured in
        docs/results.md, "Speed and size").
    embed_width (Optional[int]): Width of the hash embedding tables and of the static vectors'
        projection (None: ``width``, spaCy's MultiHashEmbed as it is). Narrower tables cut the
        parameters (``sum(rows) * embed_width``) but not the inference cost: at inference each table
        is multiplied into the embedding's maxout once, and a token's embedding is a gather of rows
        ``width`` wide (``embed_inference``).
    RETURNS (Model[List[Doc], List[Floats2d]]): One ``(n_tokens, width)`` array per doc.
    """
    if width < 1:
        raise ValueError(f"IDCNN width must be a positive integer, got {width}")
    if len(rows) != len(attrs):
        raise ValueError(f"IDCNN needs one row count per attribute: {len(attrs)} attrs, {len(rows)} rows")
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"IDCNN dilations must be a non-empty list of positive integers, got {dilations}")
    if n_iter < 1 or maxout_pieces < 1:
        raise ValueError(f"IDCNN n_iter and maxout_pieces must be >= 1, got {n_iter} and {maxout_pieces}")
    if embed_width is not None and embed_width < 1:
        raise ValueError(f"IDCNN embed_width must be a positive integer or null, got {embed_width}")
    if embed_width is None or embed_width == width:
        embed = MultiHashEmbed(width=width, attrs=attrs, rows=rows, include_static_vectors=include_static_vectors)
    else:
        embed = narrow_hash_embed(width, embed_width, attrs, rows, include_static_vectors)
    block = chain(*[_residual_conv(width, d, maxout_pieces) for d in dilations])
    # Repeating the same block object shares its weights across iterations (thinc walks each
    # node once), as in the iterated dilated CNN.
    encoder = chain(_conv(width, 1, maxout_pieces), *([block] * n_iter))
    model = chain(embed, list2ragged(), encoder, ragged2list())
    model.set_ref("embed", embed)
    model.attrs["receptive_field"] = 1 + n_iter * sum(dilations)
    release_activations(fuse_maxout_layernorm(model))
    if _embed_parts(embed) is not None:
        embed._func = embed_forward
    model._func = idcnn_forward
    return use_cpu_gemm(model, cpu_gemm)


def narrow_hash_embed(
    width: int, embed_width: int, attrs: List[str], rows: List[int], include_static_vectors: bool
) -> Model[List[Doc], List[Floats2d]]:
    """spaCy's MultiHashEmbed (the same layers, seeds and maxout of 3 pieces) with tables and a static
    vectors projection ``embed_width`` wide, whose concatenation the maxout maps to ``width``."""
    embeddings = [HashEmbed(embed_width, n_rows, column=i, seed=8 + i, dropout=0.0) for i, n_rows in enumerate(rows)]
    features = [FeatureExtractor(attrs), list2ragged(), with_array(concatenate(*embeddings))]
    n_inputs = embed_width * (len(embeddings) + include_static_vectors)
    max_out = with_array(Maxout(width, n_inputs, nP=3, dropout=0.0, normalize=True))
    if include_static_vectors:
        return chain(concatenate(chain(*features), StaticVectors(embed_width, dropout=0.0)), max_out, ragged2list())
    return chain(*features, max_out, ragged2list())


def idcnn_forward(model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool) -> Tuple[List, Callable]:
    """``chain(embed, list2ragged, encoder, ragged2list)``: thinc's chain for training; at inference
    ``idcnn_inference``, split into one array per doc."""
    if is_train:
        return _CHAIN_FORWARD(model, docs, is_train)
    return split_rows(idcnn_inference(model, docs)), _no_backprop


def idcnn_inference(model: Model[List[Doc], List[Floats2d]], docs: List[Doc]) -> Ragged:
    """The encoder's output at inference as one Ragged: the embedding's rows go to the convolutions
    without being split per doc and concatenated again."""
    embed, _list2ragged, encoder, _ragged2list = model.layers
    Xr = embed_inference(embed, docs) if embed._func is embed_forward else None
    if Xr is None:
        Xr = _list2ragged(embed(docs, is_train=False)[0], is_train=False)[0]
    return encoder(Xr, is_train=False)[0]


def split_rows(Xr: Ragged) -> List[Floats2d]:
    """One view of ``Xr``'s rows per doc (thinc's ``ragged2list`` without ``numpy.split``)."""
    X = Xr.dataXd
    ends = to_numpy(Xr.lengths).cumsum().tolist()
    return [X[start:end] for start, end in zip([0] + ends[:-1], ends)]


def _conv(width: int, dilation: int, pieces: int) -> Model[Ragged, Ragged]:
    conv = chain(
        dilated_window(dilation),
        with_array(Maxout(nO=width, nI=3 * width, nP=pieces, normalize=True, dropout=0.0)),
    )
    conv._func = conv_forward
    return conv


def _residual_conv(width: int, dilation: int, pieces: int) -> Model[Ragged, Ragged]:
    block = residual(_conv(width, dilation, pieces))
    block._func = residual_conv_forward
    return block


def conv_forward(model: Model[Ragged, Ragged], Xr: Ragged, is_train: bool) -> Tuple[Ragged, Callable]:
    """A convolution layer (``chain(dilated_window, with_array(Maxout))``): thinc's chain for
    training; at inference the same arithmetic without the 3x-wide window (``conv_inference``)."""
    if is_train:
        return _CHAIN_FORWARD(model, Xr, is_train)
    return Ragged(conv_inference(model, Xr), Xr.lengths), _no_backprop


def residual_conv_forward(model: Model[Ragged, Ragged], Xr: Ragged, is_train: bool) -> Tuple[Ragged, Callable]:
    """``residual(conv)``: thinc's residual for training; at inference the input is added in place to
    the convolution's fresh output."""
    if is_train:
        return _RESIDUAL_FORWARD(model, Xr, is_train)
    conv = model.layers[0]
    Y = conv_inference(conv, Xr) if conv._func is conv_forward else conv(Xr, is_train=False)[0].dataXd
    Y += Xr.dataXd
    return Ragged(Y, Xr.lengths), _no_backprop


def conv_inference(model: Model[Ragged, Ragged], Xr: Ragged) -> Floats2d:
    """The convolution's output at inference, as a sum of per-offset matrix products.

    The window ``[x[i-d], x[i], x[i+d]]`` times the maxout's weights is ``x[i-d] @ W_left + x[i] @ W_mid
    + x[i+d] @ W_right``: each product runs on the unshifted input, and the left/right ones are added
    to the rows ``d`` below/above, leaving out the rows whose neighbour lies in another doc (zeros in
    the window). Then the bias, maxout and LayerNorm, fused (``lean.maxout_layernorm_finish``).
    """
    window, with_maxout = model.layers
    maxout, layernorm = _maxout_and_layernorm(with_maxout)
    ops = maxout.ops
    X = ops.as_contig(Xr.dataXd)
    n_tokens, width = X.shape
    W_blocks, b_blocks = piecewise_maxout_weights(maxout)  # (3 * width, nP * nO): left, mid, right
    Y = ops.gemm(X, ops.as_contig(W_blocks[width : 2 * width]))
    shift = window.attrs["dilation"]
    if shift < n_tokens:
        no_left, no_right = _cross_doc_rows(ops, Xr.lengths, shift)
        side = ops.alloc2f(n_tokens, Y.shape[1], zeros=False)
        # A row whose right neighbour is in another doc is nobody's left neighbour, and vice versa.
        ops.gemm(X, ops.as_contig(W_blocks[:width]), out=side)
        side[no_right] = 0.0
        Y[shift:] += side[: n_tokens - shift]
        ops.gemm(X, ops.as_contig(W_blocks[2 * width :]), out=side)
        side[no_left] = 0.0
        Y[: n_tokens - shift] += side[shift:]
    return maxout_layernorm_finish(maxout, layernorm, Y, b_blocks)


def _maxout_and_layernorm(with_maxout: Model) -> Tuple[Model, Model]:
    for node in with_maxout.walk():
        if is_maxout_layernorm(node):
            return node.layers[0], node.layers[1]
    raise ValueError(f"No Maxout with LayerNorm in {with_maxout.name}")


def _cross_doc_rows(ops, lengths, dilation: int) -> Tuple[Ints1d, Ints1d]:
    """Rows with no left / no right neighbour ``dilation`` tokens away in their own doc."""
    lengths = ops.to_numpy(lengths).astype("int64")
    n_tokens = int(lengths.sum())
    position = numpy.arange(n_tokens) - numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    no_left = numpy.flatnonzero(position < dilation)
    no_right = numpy.flatnonzero(position >= numpy.repeat(lengths, lengths) - dilation)
    return ops.xp.asarray(no_left), ops.xp.asarray(no_right)


def dilated_window(dilation: int) -> Model[Ragged, Ragged]:
    """Concatenate each token's vector with those ``dilation`` tokens to its left and right.

    Neighbours outside the token's own doc are zeros, so docs in a batch never see each other.
    """
    return Model(f"dilated_window({dilation})", _window_forward, attrs={"dilation": dilation})


def _window_forward(model: Model, Xr: Ragged, is_train: bool) -> Tuple[Ragged, Callable]:
    dilation = model.attrs["dilation"]
    X = Xr.dataXd
    n_tokens, width = X.shape
    # Whole-array shifts, then zeros for the few rows whose neighbour lies in another doc (or none).
    no_left, no_right = _cross_doc_rows(model.ops, Xr.lengths, dilation)
    shift = min(dilation, n_tokens)
    Y = model.ops.alloc2f(n_tokens, 3 * width, zeros=False)
    Y[:, width : 2 * width] = X
    Y[shift:, :width] = X[: n_tokens - shift]
    Y[: n_tokens - shift, 2 * width :] = X[shift:]
    Y[no_left, :width] = 0.0
    Y[no_right, 2 * width :] = 0.0

    def backprop(dYr: Ragged) -> Ragged:
        dY = dYr.dataXd
        dX = dY[:, width : 2 * width].copy()
        d_left = dY[:, :width].copy()
        d_left[no_left] = 0.0
        d_right = dY[:, 2 * width :].copy()
        d_right[no_right] = 0.0
        dX[: n_tokens - shift] += d_left[shift:]
        dX[shift:] += d_right[: n_tokens - shift]
        return Ragged(dX, Xr.lengths)

    return Ragged(Y, Xr.lengths), backprop


# ---------------------------------------------------------------------------------------------------
# spaCy's MultiHashEmbed at inference
#
# ``chain(concatenate(chain(extract_features, list2ragged, with_array(concatenate(hash embeddings))),
# static_vectors), with_array(Maxout(normalize=True)), ragged2list)`` (or the same without the static
# vectors). The maxout's product with the concatenation is a sum of one product per block, and a hash
# embedding's block is the sum of four rows of its table: so ``table @ W_block`` is computed once (and
# again only when the weights change) and each token's sum of products is one gather of 4 rows per
# table; the static vectors' two products are folded into one (nM, nP * nO) matrix. No concatenation
# and no per-token product of the hash blocks remain; the result equals thinc's to float32 rounding.
# Parameters and structure are unchanged; training runs thinc's own forwards.


class _EmbedParts:
    def __init__(self, features: Model, hash_embeds: List[Model], static_vectors: Optional[Model], maxout_ln):
        self.features = features
        self.hash_embeds = hash_embeds
        self.static_vectors = static_vectors
        self.maxout, self.layernorm = maxout_ln


def _embed_parts(model: Model) -> Optional[_EmbedParts]:
    """The parts of a MultiHashEmbed ``model``, or None if it is not built as spaCy builds it."""
    layers = model.layers
    static_vectors = None
    if len(layers) == 3 and layers[0]._func is _CONCATENATE_FORWARD and len(layers[0].layers) == 2:
        branch, static_vectors = layers[0].layers
        if static_vectors.name != "static_vectors":
            return None
        front = branch.layers
    elif len(layers) == 5:
        front = layers[:3]
    else:
        return None
    if [layer.name for layer in front[:2]] != ["extract_features", "list2ragged"] or len(front) != 3:
        return None
    if layers[-1].name != "ragged2list" or len(front[2].layers) != 1:
        return None
    hash_concat = front[2].layers[0]
    if hash_concat._func is not _CONCATENATE_FORWARD:
        return None
    hash_embeds = []
    for node in hash_concat.layers:
        if [layer.name for layer in node.layers] != ["ints-getitem", "hashembed"]:
            return None
        hash_embeds.append(node.layers[1])
    try:
        maxout_ln = _maxout_and_layernorm(layers[-2])
    except ValueError:
        return None
    return _EmbedParts(front[0], hash_embeds, static_vectors, maxout_ln)


def embed_forward(model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool) -> Tuple[List, Callable]:
    """MultiHashEmbed: thinc's chain for training; at inference ``embed_inference``, split per doc."""
    if not is_train:
        Xr = embed_inference(model, docs)
        if Xr is not None:
            return split_rows(Xr), _no_backprop
    return _CHAIN_FORWARD(model, docs, is_train)


def embed_inference(model: Model[List[Doc], List[Floats2d]], docs: List[Doc]) -> Optional[Ragged]:
    """The embedding of ``docs`` as one Ragged (None where the fused path does not apply: no tokens,
    spans instead of docs, or vectors other than spaCy's default table)."""
    parts = _embed_parts(model)
    if parts is None or not docs or not all(isinstance(doc, Doc) for doc in docs):
        return None
    lengths = [len(doc) for doc in docs]
    if not sum(lengths):
        return None
    sv = parts.static_vectors
    vectors = docs[0].vocab.vectors if sv is not None else None
    if sv is not None and not (isinstance(vectors, Vectors) and vectors.mode == Mode.default):
        return None
    ops = parts.maxout.ops
    xp = ops.xp
    columns = list(parts.features.attrs["columns"])
    if sv is not None:
        columns.append(getattr(vectors, "attr", "ORTH"))
    features = numpy.concatenate([doc.to_array(columns).reshape(len(doc), len(columns)) for doc in docs])
    features = features.astype("uint64", copy=False)
    W_blocks, b_blocks = piecewise_maxout_weights(parts.maxout)
    table, offsets = _hash_product_table(parts, W_blocks)
    keys = []
    for embed, offset in zip(parts.hash_embeds, offsets):
        ids = ops.asarray(numpy.ascontiguousarray(features[:, embed.attrs["column"]]))
        keys.append(ops.hash(ids, embed.attrs["seed"]) % embed.get_dim("nV") + offset)
    Y = ops.gather_add(table, xp.concatenate(keys, axis=1))
    if sv is not None:
        rows = vectors.find(keys=features[:, -1])
        V = ops.as_contig(ops.asarray(vectors.data)[rows])
        V[rows < 0] = 0.0  # keys without a vector embed as zeros
        width = sum(embed.get_dim("nO") for embed in parts.hash_embeds)
        # (V @ W_sv.T) @ W_block == V @ (W_sv.T @ W_block)
        folded = ops.gemm(ops.as_contig(sv.get_param("W")), ops.as_contig(W_blocks[width:]), trans1=True)
        Y += ops.gemm(V, folded)
    out = maxout_layernorm_finish(parts.maxout, parts.layernorm, Y, b_blocks)
    return Ragged(out, ops.asarray1i(lengths))


# maxout node id -> (the weights the table was made from, the table, each hash embedding's first row)
_PRODUCT_TABLES: Dict[int, Tuple[List, Floats2d, List[int]]] = {}
_MAX_TABLES = 8


def _hash_product_table(parts: _EmbedParts, W_blocks: Floats2d) -> Tuple[Floats2d, List[int]]:
    """Every hash embedding's table times its block of the maxout's weights, stacked (the rows of
    embedding ``k`` start at ``offsets[k]``). Kept while the weights are equal to those it was made
    from (training changes them in place, so they are compared, not their identity)."""
    ops = parts.maxout.ops
    xp = ops.xp
    weights = [parts.maxout.get_param("W")] + [embed.get_param("E") for embed in parts.hash_embeds]
    cached = _PRODUCT_TABLES.get(parts.maxout.id)
    if cached is not None and all(a.shape == b.shape and xp.array_equal(a, b) for a, b in zip(cached[0], weights)):
        return cached[1], cached[2]
    products = []
    offsets = []
    row = start = 0
    for embed in parts.hash_embeds:
        E = ops.as_contig(embed.get_param("E"))
        width = E.shape[1]
        products.append(ops.gemm(E, ops.as_contig(W_blocks[row : row + width])))
        offsets.append(start)
        row += width
        start += E.shape[0]
    table = xp.concatenate(products)
    if len(_PRODUCT_TABLES) >= _MAX_TABLES:
        _PRODUCT_TABLES.pop(next(iter(_PRODUCT_TABLES)))
    _PRODUCT_TABLES[parts.maxout.id] = ([w.copy() for w in weights], table, offsets)
    return table, offsets
