"""Compile crimelens' registered incident queries (Ibis) to DuckDB SQL, into the package's compiled_sql.json.

Run after changing a query registered with ``compiled_query`` (tests/test_compiled_queries.py fails until then):

    .venv/bin/python scripts/compile_queries.py
"""

from __future__ import annotations

import json

from crimelens.analysis.incidents.compiled import CATALOG_PATH, compile_catalog


def main() -> None:
    catalog = compile_catalog()
    CATALOG_PATH.write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(catalog['queries'])} queries to {CATALOG_PATH}")


if __name__ == "__main__":
    main()
