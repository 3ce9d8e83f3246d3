"""Generate the `config.auth`, `config.limits` and `config.ingestion` parts of the chart's
values.schema.json from the gateway's own settings models, so that the chart accepts exactly the
field names gateway/settings.py defines (and a renamed field fails `helm lint`, not the pod).

Secret fields (`SecretStr`: limits.storage_url, ingestion.id_key) are left out on purpose: the
chart takes secrets only from existing Secrets, never from values.

    python helm/tools/config_schema.py           # print the generated sections
    python helm/tools/config_schema.py --write   # rewrite them in values.schema.json
    python helm/tools/config_schema.py --check   # exit 1 when values.schema.json is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.settings import AuthSettings, IngestionSettings, LimitsSettings

SCHEMA = Path(__file__).resolve().parent.parent / "holdfast" / "values.schema.json"
SECTIONS: dict[str, type[BaseModel]] = {
    "auth": AuthSettings,
    "limits": LimitsSettings,
    "ingestion": IngestionSettings,
}
# JSON-schema keywords kept; titles, defaults and pydantic's formats are noise to Helm.
_KEEP = {
    "type",
    "description",
    "properties",
    "additionalProperties",
    "items",
    "anyOf",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "required",
}


def _is_secret(node: dict[str, Any]) -> bool:
    return bool(node.get("writeOnly")) or any(_is_secret(n) for n in node.get("anyOf", []))


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        resolved: dict[str, Any] = defs[node["$ref"].rsplit("/", 1)[-1]]
        return resolved
    return node


def _clean(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s, drop secret fields and keywords Helm does not need."""
    if isinstance(node, list):
        return [_clean(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return _clean({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {
                name: _clean(field, defs)
                for name, field in value.items()
                if not _is_secret(
                    field if "$ref" not in field else defs[field["$ref"].split("/")[-1]]
                )
            }
        elif key in ("items", "anyOf", "additionalProperties"):
            out[key] = _clean(value, defs)  # a bool additionalProperties passes through
        else:
            out[key] = value
    return out


def section_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    schema: dict[str, Any] = _clean(raw, raw.get("$defs", {}))
    schema["description"] = f"holdfast.yaml `{_name(model)}` section (gateway/settings.py " + (
        f"{model.__name__}; secrets only through Secrets)."
    )
    return schema


def _name(model: type[BaseModel]) -> str:
    return next(name for name, m in SECTIONS.items() if m is model)


def generated() -> dict[str, dict[str, Any]]:
    return {name: section_schema(model) for name, model in SECTIONS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    sections = generated()
    if not (args.write or args.check):
        print(json.dumps(sections, indent=2))
        return 0
    schema = json.loads(SCHEMA.read_text())
    config = schema["properties"]["config"]["properties"]
    if args.check:
        stale = [name for name, part in sections.items() if config.get(name) != part]
        if stale:
            print(
                f"values.schema.json is stale for config.{', config.'.join(stale)}: "
                "run python helm/tools/config_schema.py --write",
                file=sys.stderr,
            )
            return 1
        return 0
    config.update(sections)
    SCHEMA.write_text(json.dumps(schema, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
