"""Write the Vega, Vega-Lite and vega-embed JavaScript bundle that the report inlines (run once per upgrade).

The bundle comes from ``vl-convert-python`` (pinned in constraints.txt), which ships these libraries
(BSD-3-Clause, the Vega project) compiled into one file. Shipping it inside crimelens means a report costs no
bundling time and needs no network: ``python scripts/make_vega_bundle.py`` after upgrading vl-convert-python.
"""

from __future__ import annotations

from pathlib import Path

import vl_convert

OUT = Path(__file__).resolve().parents[1] / "src" / "crimelens" / "report" / "vendor" / "vega-bundle.js"
SNIPPET = "window.vegaEmbed = vegaEmbed; window.vegaLite = vegaLite; window.vega = vega;"


def main() -> None:
    header = (
        f"/* Vega {vl_convert.get_vega_version()}, Vega-Lite {vl_convert.get_vegalite_versions()[-1]}, "
        f"vega-embed {vl_convert.get_vega_embed_version()} (BSD-3-Clause, the Vega project), bundled by "
        "vl-convert-python for crimelens: scripts/make_vega_bundle.py */\n"
    )
    OUT.write_text(header + vl_convert.javascript_bundle(SNIPPET), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
