"""The message catalogue: every key has both languages, plurals choose by n, missing keys fail loudly."""

import pytest

from hub.messages import LANGUAGES, MessageError, catalogue, render, render_all


def test_every_message_has_every_language():
    missing = [(key, lang) for key, entry in catalogue().items() for lang in LANGUAGES if lang not in entry]
    assert missing == []


def test_plural_forms_follow_n():
    assert render("unit.tickets", "en", n=1) == "1 ticket"
    assert render("unit.tickets", "en", n=2) == "2 tickets"
    assert render("unit.tickets", "zh", n=2) == "2张票"
    assert render_all("unit.counters", n=1) == {"zh": "1个窗口", "en": "1 counter"}


def test_unknown_key_or_language_is_an_error():
    with pytest.raises(MessageError):
        render("no.such.key", "en")
    with pytest.raises(MessageError):
        render("unit.tickets", "fr", n=1)


def test_every_language_of_a_message_takes_the_same_parameters():
    import string

    def fields(entry) -> set[str]:
        texts = entry.values() if isinstance(entry, dict) else [entry]
        return {f for t in texts for _, f, _, _ in string.Formatter().parse(t) if f}

    mismatched = [key for key, entry in catalogue().items() if len({frozenset(fields(v)) for v in entry.values()}) > 1]
    assert mismatched == []
