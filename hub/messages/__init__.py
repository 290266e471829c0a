"""The one message catalogue: every text a person reads (alert suggestions, reports, notices) in zh and en.

Rules and reports never build sentences with f-strings: they name a message key and its
parameters, and ``render`` looks the words up here. Translators then edit one YAML file,
both languages of a message sit side by side, and a missing translation is a test failure
rather than an English sentence on a Chinese board.

Format of ``catalogue.yaml``::

    long_wait.open_counter:            # a message key
      en: "open counter {counter}"     # str.format() with the parameters given to render()
      zh: "开启{counter}号窗口"
    unit.tickets:                      # plural forms, chosen by the parameter ``n``
      en: {one: "{n} ticket", other: "{n} tickets"}
      zh: "{n}张票"

A parameter may itself be a ``Localized`` text (what ``render_all`` returns): each language
then gets its own words, so sentences nest without f-strings ("{people}, {tickets} for ...").

Example::

    >>> render("unit.tickets", "en", n=1)
    '1 ticket'
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"


class Localized(dict):
    """One text in every language (language -> text); as a ``render`` parameter it is taken per language."""


class MessageError(KeyError):
    """A key or language the catalogue lacks: a programming error, raised so tests catch it."""


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, Any]]:
    """The parsed catalogue (key -> language -> text or plural forms), read once from the package."""
    text = resources.files(__package__).joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return dict(YAML(typ="safe").load(text) or {})


def render(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The text of ``key`` in ``lang`` with ``params`` filled in; plural forms are chosen by ``n``."""
    try:
        entry = catalogue()[key][lang]
    except KeyError:
        raise MessageError(f"message {key!r} has no {lang!r} text in hub/messages/catalogue.yaml") from None
    if isinstance(entry, dict):
        entry = entry["one" if params.get("n") == 1 else "other"]
    return entry.format(**{k: v[lang] if isinstance(v, Localized) else v for k, v in params.items()})


def label(prefix: str, value: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The catalogue's name for a code (``label("kind", "long_wait", "zh")`` -> "等候过长"); the code itself
    when the catalogue has none, for codes from outside (a peer hub's alert kind) that must still show."""
    try:
        return render(f"{prefix}.{value}", lang)
    except MessageError:
        return value


def render_all(key: str, /, **params: Any) -> Localized:
    """The text in every language, for contracts that carry both (the board switches language live)."""
    return Localized({lang: render(key, lang, **params) for lang in LANGUAGES})


def suggestion_texts(where: Localized | str, detail: Localized | str, action: Localized | str) -> dict[str, dict[str, str]]:
    """An alert's ``texts`` (contract v2): per language its parts and the whole suggestion
    ("where: detail: action", key ``alert.suggestion``). A plain str part (a zone name from the
    site file) is the same in every language."""
    out = {}
    for lang in LANGUAGES:
        parts = {k: v[lang] if isinstance(v, Localized) else v
                 for k, v in (("where", where), ("detail", detail), ("action", action))}
        out[lang] = {**parts, "suggestion": render("alert.suggestion", lang, **parts)}
    return out
