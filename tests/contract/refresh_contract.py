"""Rebuild ``stackone-lms-contract.json`` from StackOne's published LMS OpenAPI document.

The contract keeps only facts: paths, methods, parameters, status codes, schema names,
types, required lists, enums and nullability. Descriptions, summaries and examples are
dropped, so no prose of StackOne's is kept in this repository.

    python tests/contract/refresh_contract.py ../shared/reference/stackone-lms-openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DROP = {"description", "summary", "example", "examples", "x-speakeasy-name-override", "tags", "x-speakeasy-group"}
HERE = Path(__file__).with_name("stackone-lms-contract.json")


def strip(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        return {k: strip(v, in_properties=(k == "properties")) for k, v in node.items()
                if in_properties or k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def contract_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": spec["openapi"], "paths": strip(spec["paths"]),
            "components": {"schemas": strip(spec["components"]["schemas"])}}


def main(source: str) -> None:
    contract = contract_of(json.loads(Path(source).read_text()))
    HERE.write_text(json.dumps(contract, indent=1, sort_keys=True) + "\n")
    print(f"wrote {HERE} ({len(contract['paths'])} paths)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/stackone-lms-openapi.json")
