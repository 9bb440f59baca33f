"""The acknowledgement's response promise, one sentence in the requester's language.

"We will answer within 1 hour" when the target's calendar is open all along, else
"We will answer by Monday 10:00 JST" in the calendar's time zone.  Weekday, unit
and number wording come from CLDR (babel); only the sentence frame is ours.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.lists import format_list
from babel.units import format_unit

from rules.engine import Entitlement

__all__ = ["acknowledgement_promise", "answered_in_sentence", "product_question",
           "promise_sentence"]

_WITHIN = {
    "en": "We will answer within {}.",
    "ja": "{}以内にご回答いたします。",
    "de": "Wir antworten Ihnen innerhalb von {}.",
    "it": "Le risponderemo entro {}.",
    "nl": "We antwoorden binnen {}.",
}
_BY = {
    "en": "We will answer by {}.",
    "ja": "{}までにご回答いたします。",
    "de": "Wir antworten Ihnen bis {}.",
    "it": "Le risponderemo entro {}.",
    "nl": "We antwoorden uiterlijk {}.",
}
_ANSWERED_IN = {
    "en": "Outside our {} support hours, our answer will be in {}.",
    "ja": "{}サポートの営業時間外のため、{}でご回答いたします。",
    "de": "Außerhalb der Supportzeiten auf {} antworten wir Ihnen auf {}.",
    "it": "Fuori dall'orario del supporto in {}, le risponderemo in {}.",
    "nl": "Buiten de supporturen in het {} antwoorden we in het {}.",
}
_UNITS_SEPARATOR = {"ja": ""}
_WHICH_PRODUCT = {
    "en": "Which product is your request about: {}? Please reply with its name, so that "
          "we can apply your team's terms for it.",
    "ja": "お問い合わせの対象製品（{}）をご返信ください。貴社のご契約条件を適用いたします。",
    "de": "Welches Produkt betrifft Ihre Anfrage: {}? Bitte antworten Sie mit dem Namen, "
          "damit wir die Konditionen Ihres Teams dafür anwenden können.",
    "it": "A quale prodotto si riferisce la sua richiesta: {}? Risponda con il nome, così "
          "potremo applicare le condizioni del suo team.",
    "nl": "Over welk product gaat uw vraag: {}? Antwoord met de naam, zodat we de "
          "voorwaarden van uw team kunnen toepassen.",
}


def _unit(number: int, unit: str, language: str) -> str:
    text = format_unit(number, unit, length="long", locale=language)
    # babel falls back to the unit's id when a locale lacks the long form (ja, nl).
    return format_unit(number, unit, length="short", locale=language) if unit in text else text


def _duration(value: timedelta, language: str) -> str:
    return _minutes_as_text(int(value.total_seconds() // 60), language)


# Both remembered: every acknowledgement of a plan asks for the same few durations, and
# requests of the same minute for the same due time; CLDR formatting costs ~0.1 ms a call,
# inside the writer lane (notify).
@functools.lru_cache(maxsize=256)
def _minutes_as_text(total_minutes: int, language: str) -> str:
    hours, minutes = divmod(total_minutes, 60)
    parts = [_unit(n, unit, language)
             for n, unit in ((hours, "duration-hour"), (minutes, "duration-minute")) if n]
    return _UNITS_SEPARATOR.get(language, " ").join(parts)


def promise_sentence(language: str, target: timedelta, due: datetime, timezone: str,
                     within: bool, now: datetime | None = None) -> str:
    """The sentence for ``language`` (falls back to English)."""
    language = language if language in _WITHIN else "en"
    if within:
        return _WITHIN[language].format(_duration(target, language))
    far = now is not None and due - now > timedelta(days=6)
    return _BY[language].format(_local_when(due.replace(second=0, microsecond=0), timezone,
                                            far, language))


@functools.lru_cache(maxsize=256)
def _local_when(due: datetime, timezone: str, far: bool, language: str) -> str:
    """``due`` (to the minute) as the requester reads it in ``timezone``."""
    local = due.astimezone(ZoneInfo(timezone))
    pattern = "EEEE d MMMM HH:mm" if far else "EEEE HH:mm"
    return f"{format_datetime(local, pattern, locale=language)} {local.tzname()}"


def product_question(language: str, products: list[str]) -> str:
    """Ask which of the team's products a request is about (names joined by CLDR's "or")."""
    language = language if language in _WHICH_PRODUCT else "en"
    names = format_list(products, style="or", locale=language)
    return _WHICH_PRODUCT[language].format(names)


def answered_in_sentence(language: str, requested: str, served: str) -> str:
    """"Outside our Japanese support hours, our answer will be in English", in ``language``
    (language names from CLDR, in lower case where the language writes them so)."""
    language = language if language in _ANSWERED_IN else "en"
    names = Locale.parse(language).languages
    return _ANSWERED_IN[language].format(names.get(requested, requested),
                                         names.get(served, served))


def acknowledgement_promise(entitlement: Entitlement, language: str,
                            ask_product: Sequence[str] = ()) -> str:
    """The promise for a new ticket's entitlement, followed by the question which product
    it is about when the team has several and none was named (``ask_product``).

    A request in a support language that arrived outside that language's hours (Japanese
    at night) is told that the answer comes in the language that serves it then."""
    target = timedelta(minutes=int(entitlement.target.total_seconds() // 60))
    promise = promise_sentence(language, target, entitlement.due,
                               entitlement.timezone or "UTC", entitlement.within)
    if entitlement.outside_hours_of:
        promise += " " + answered_in_sentence(language, entitlement.outside_hours_of,
                                              entitlement.language or "en")
    if ask_product:
        promise += " " + product_question(language, list(ask_product))
    return promise
