"""US states and DC: postal abbreviation <-> name, and the canonical jurisdiction ids built from them."""

from __future__ import annotations

__all__ = ["NATION_ID", "STATE_ABBR", "STATE_NAMES", "resolve_state", "state_id"]

#: The jurisdiction id of the United States as a whole.
NATION_ID = "US"

STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip
STATE_ABBR: dict[str, str] = {name.lower(): abbr for abbr, name in STATE_NAMES.items()}
STATE_ABBR["washington dc"] = "DC"
STATE_ABBR["washington, d.c."] = "DC"


def state_id(abbr: str) -> str:
    """Canonical jurisdiction id of a state: ``US-`` and its postal abbreviation, e.g. ``US-IL``."""
    return f"{NATION_ID}-{abbr.upper()}"


#: How sources write the United States as a whole.
_NATION_WORDS = frozenset({"", "all", "united states", "us", "u.s."})


def resolve_state(text: str) -> tuple[str, str, str, str | None] | None:
    """(jurisdiction id, name, kind, state abbreviation) for a state written as its postal code or name, or
    for the nation ('' / 'All' / 'United States'); None when it is neither."""
    key = text.strip()
    if key.lower() in _NATION_WORDS:
        return NATION_ID, "United States", "nation", None
    abbr = key.upper() if key.upper() in STATE_NAMES else STATE_ABBR.get(key.lower())
    if abbr is None:
        return None
    return state_id(abbr), STATE_NAMES[abbr], "state", abbr
