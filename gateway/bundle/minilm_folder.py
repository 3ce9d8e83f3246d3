"""A sentence-transformers folder of all-MiniLM-L6-v2 rebuilt from its installed ONNX export.

Servers that load Hugging Face folders (TEI in the Ansible ``embeddings`` role and the Helm chart,
Ollama's importer) need safetensors; the torch-free venv no longer carries the packaged folder,
and the weights are all in the fp32 ONNX file that ``scripts/install-models.sh`` installs. This
reads its initialisers with a small protobuf reader (no ``onnx`` package), names each as Hugging
Face's ``BertModel`` does (a linear layer's weight is the ``MatMul`` input of the node named after
it, stored transposed), writes ``model.safetensors`` and the small config files, and takes the
vocabulary from the ONNX folder's ``tokenizer.json``. The bundle ships the result; the Ollama
test imports it and compares Ollama's vectors with the in-process ones.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from services.onnx_embedder import ONNX_MODELS

SPEC = ONNX_MODELS["all-minilm-l6-v2"]
FLOAT, INT64 = 1, 7  # onnx.TensorProto data types

CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 384,
    "initializer_range": 0.02,
    "intermediate_size": 1536,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "vocab_size": 30522,
}
SPECIAL = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
SMALL_FILES = {
    "config.json": CONFIG,
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ],
    "1_Pooling/config.json": {
        "word_embedding_dimension": 384,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    },
    "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
    "special_tokens_map.json": SPECIAL,
    "tokenizer_config.json": {
        "do_lower_case": True,
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "tokenizer_class": "BertTokenizer",
        "model_max_length": 512,
        **SPECIAL,
    },
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            yield number, data[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _tensor(message: bytes) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    name, dtype, raw = "", 0, b""
    for number, value in _fields(message):
        if number == 1:  # dims: packed or one varint each
            if isinstance(value, bytes):
                pos = 0
                while pos < len(value):
                    dim, pos = _varint(value, pos)
                    dims.append(dim)
            else:
                dims.append(value)
        elif number == 2 and isinstance(value, int):
            dtype = value
        elif number == 8 and isinstance(value, bytes):
            name = value.decode()
        elif number == 9 and isinstance(value, bytes):
            raw = value
    kind = {FLOAT: np.float32, INT64: np.int64}.get(dtype)
    if kind is None or not raw:
        return name, np.zeros(0, dtype=np.float32)  # constants the BERT weights do not need
    return name, np.frombuffer(raw, dtype=kind).reshape(dims)


def onnx_weights(model_file: Path) -> dict[str, np.ndarray]:
    """The BERT weights of an ONNX export, by their Hugging Face names."""
    graph = next(v for n, v in _fields(model_file.read_bytes()) if n == 7 and isinstance(v, bytes))
    initialisers: dict[str, np.ndarray] = {}
    matmuls: dict[str, str] = {}  # initialiser name -> node name
    for number, value in _fields(graph):
        if number == 5 and isinstance(value, bytes):
            name, array = _tensor(value)
            initialisers[name] = array
        elif number == 1 and isinstance(value, bytes):
            node = dict.fromkeys(("name", "op"), "")
            inputs: list[str] = []
            for field, item in _fields(value):
                if not isinstance(item, bytes):
                    continue
                if field == 1:
                    inputs.append(item.decode())
                elif field == 3:
                    node["name"] = item.decode()
                elif field == 4:
                    node["op"] = item.decode()
            if node["op"] == "MatMul" and len(inputs) == 2:
                matmuls[inputs[1]] = node["name"]
    weights: dict[str, np.ndarray] = {}
    for name, array in initialisers.items():
        if name in matmuls:  # "/encoder/layer.0/attention/self/query/MatMul" -> ...query.weight
            path = matmuls[name].strip("/").removesuffix("/MatMul").replace("/", ".")
            weights[f"{path}.weight"] = np.ascontiguousarray(array.T)
        elif name.startswith(("embeddings.", "encoder.", "pooler.")):
            weights[name] = array
    return weights


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {}
    offset = 0
    for name, array in tensors.items():
        kind = "F32" if array.dtype == np.float32 else "I64"
        header[name] = {
            "dtype": kind,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for array in tensors.values():
            out.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def minilm_folder(models_dir: Path, dest: Path) -> Path:
    """Write the sentence-transformers folder of the installed ONNX all-MiniLM-L6-v2 to ``dest``."""
    source = models_dir / SPEC.name
    weights = onnx_weights(source / SPEC.model_file)
    layers = sum(1 for name in weights if name.endswith("attention.self.query.weight"))
    if layers != CONFIG["num_hidden_layers"] or "embeddings.word_embeddings.weight" not in weights:
        raise ValueError(f"{source / SPEC.model_file}: not the BERT graph expected ({layers})")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "1_Pooling").mkdir(exist_ok=True)
    for name, content in SMALL_FILES.items():
        (dest / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    tokenizer = json.loads((source / SPEC.tokenizer_file).read_text(encoding="utf-8"))
    tokenizer["truncation"] = tokenizer["padding"] = None  # the export pads to 128
    (dest / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    (dest / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    write_safetensors(dest / "model.safetensors", weights)
    return dest
