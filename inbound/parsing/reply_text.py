"""Split a reply body into the new text, the quoted history and the signature.

Why: a ticket should show what the customer wrote *this time*, not the whole
thread again, but losing customer words is worse than keeping a quote. So this
module only removes what it recognises with confidence, and when in doubt it
keeps the text.

How: the body is read line by line (no regex ever sees more than a few short
lines, so pathological input stays fast):

* quote headers: "On ... wrote:", "Am ... schrieb ...:", "Op ... schreef:",
  "Il ... ha scritto:", "... のメッセージ:", "...さんは書きました:", Gmail's
  "2014-03-20 8:48 GMT+01:00 Name <a@b>:", possibly wrapped over a few lines.
  ``mail-parser-reply``'s per-language header expressions are consulted too;
* Outlook header blocks ("From:/Von:/Van:/Da:/差出人:" followed by "Sent:/
  Gesendet:/Verzonden:/Inviato:/送信日時:" ...) and separators
  ("-----Original Message-----", "Begin forwarded message:", "____");
* "Support wrote:" or "Quoting Support:" right above a ">" block (no date, no address:
  only a name may stand before the verb);
* lines starting with ">" (or the full-width "＞" of Japanese writers). Text *between*
  quoted blocks is new text (inline
  replies); a header whose history is not ">"-quoted (Outlook style) ends the
  new text for good;
* signatures: a "-- " line, "Sent from my iPhone"-style lines (mail-parser-reply's
  list plus ours, and the Outlook apps' localized "Get Outlook for iOS"), an underscore
  line, a final "-Name" line, or a company's confidentiality disclaimer under the text;
* a mail system's "this message comes from outside the organisation" banner above the
  text (Exchange Online puts one on mail reaching a shared mailbox).

Boilerplate (signature, disclaimer, banner) goes to ``ReplyParts.signature``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from mailparser_reply.constants import MAIL_LANGUAGES

from inbound.parsing.phrases import Phrases, own_needles

__all__ = ["DEFAULT_LANGUAGES", "ReplyParts", "split_reply"]

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ("en", "de", "it", "nl", "ja")

#: Lines examined for structure; anything after belongs to the last region.
_MAX_LINES = 5000
#: Characters of one line that the patterns look at.
_MAX_LINE_CHARS = 1000
#: Lines a wrapped quote header may span (blank lines included).
_HEADER_SPAN = 6


@dataclass(frozen=True)
class ReplyParts:
    visible: str  # the new text the sender wrote (quoted history and signature removed)
    quoted: str  # the quoted history ("" if none)
    signature: str  # the signature block ("" if none)


# --- per-language vocabulary ----------------------------------------------------------

# Words that open a quote header ("On <date>, X wrote:").
_LEADS = {
    "en": ["On", "At"],
    "de": ["Am"],
    "it": ["Il", "Il giorno", "In data"],
    "nl": ["Op"],
    "ja": [],
}
# The verb of a quote header. A few other languages' verbs are cheap to add
# and catch nested quotes from colleagues abroad.
_VERBS = {
    "en": ["wrote", "writes"],
    "de": ["schrieb", "geschrieben"],
    "it": ["ha scritto", "scrive"],
    "nl": ["schreef", "geschreven"],
    "ja": ["書きました"],
}
_EXTRA_VERBS = [
    "a écrit",
    "escribió",
    "escreveu",
    "skrev",
    "napisał",
    "napisał\\(a\\)",
    "kirjoitti",
    "написал",
    "написав",
    "написала",
    "írta",
    "yazdı",
    "写道",
    "작성",
    "ha escrit",
    "pisze",
    "napsal",
    "пише",
    "пишет",
    "寫道",
]
# Outlook header block: the "From" field and the fields that follow it.
_FROM_FIELDS = {
    "en": ["From"],
    "de": ["Von"],
    "it": ["Da"],
    "nl": ["Van"],
    "ja": ["差出人", "送信者"],
}
_OTHER_FIELDS = {
    "en": ["Sent", "Date", "To", "Subject", "Cc", "Reply-To"],
    "de": ["Gesendet", "Datum", "An", "Betreff", "Cc", "Antwort an"],
    "it": ["Inviato", "Data", "A", "Oggetto", "Cc", "Risposta"],
    "nl": ["Verzonden", "Datum", "Aan", "Onderwerp", "Cc", "Beantwoorden"],
    "ja": ["送信日時", "日付", "宛先", "件名", "CC"],
}
_SEPARATORS = {
    "en": ["Original Message", "Forwarded message", "Forwarded Message", "Reply message"],
    "de": ["Ursprüngliche Nachricht", "Originalnachricht", "Weitergeleitete Nachricht"],
    "it": ["Messaggio originale", "Messaggio inoltrato"],
    "nl": ["Oorspronkelijk bericht", "Origineel bericht", "Doorgestuurd bericht"],
    "ja": ["元のメッセージ", "転送メッセージ", "転送されたメッセージ"],
}
_FORWARD_INTROS = {
    "en": ["Begin forwarded message"],
    "de": ["Anfang der weitergeleiteten Nachricht", "Beginn der weitergeleiteten Nachricht"],
    "it": ["Inizio messaggio inoltrato"],
    "nl": ["Begin doorgestuurd bericht", "Begin van doorgestuurd bericht"],
    "ja": ["転送されたメッセージ", "転送メッセージ"],
}
# Outlook header blocks, separators and quote-header leads of more languages (French,
# Spanish, Portuguese, Swedish, Norwegian, Danish, Finnish, Polish, Czech, Russian,
# Ukrainian, Chinese, Korean): always on, like _EXTRA_VERBS, because a block needs a
# "From" field and a second field, and a lead needs a date or address and a verb.
_EXTRA_FROM_FIELDS = [
    "De", "Från", "Fra", "Lähettäjä", "Od", "От", "Від", "发件人", "寄件者", "보낸 사람",
]
_EXTRA_OTHER_FIELDS = [
    "Envoyé", "À", "Objet", "Date", "Enviado", "Para", "Asunto", "Assunto", "Fecha", "Data",
    "Skickat", "Till", "Ämne", "Sendt", "Til", "Emne", "Dato", "Lähetetty", "Vastaanottaja",
    "Aihe", "Päivämäärä", "Wysłano", "Do", "Temat", "Odesláno", "Komu", "Předmět",
    "Отправлено", "Кому", "Тема", "Дата", "Надіслано", "发送时间", "收件人", "主题", "寄件日期",
    "收件者", "主旨", "보낸 날짜", "받는 사람", "제목",
]
_EXTRA_SEPARATORS = [
    "Message d'origine", "Message original", "Mensaje original", "Mensagem original",
    "Ursprungligt meddelande", "Opprinnelig melding", "Oprindelig meddelelse",
    "Alkuperäinen viesti", "Wiadomość oryginalna", "Původní zpráva", "Исходное сообщение",
    "Пересылаемое сообщение", "原始邮件", "원본 메시지",
]
_EXTRA_LEADS = ["Le", "El", "Em", "Den", "W dniu", "Dne", "På"]

# Device signatures ("Sent from my iPhone"); each opens the rest of the block.
_SENT_FROM = {
    "en": [
        r"Sent from (?:my|a|the|Mail|Outlook|Yahoo|Windows|Mailbox|\[?mail\]?|TypeApp|AOL|Samsung)",
        r"Sent (?:via|with|using) ",
        r"Get Outlook for",
        r"Sent from [\w.-]+(?: [\w.-]+){0,3}$",
        r"\(?Sent from (?:a |my )?(?:mobile|phone|iPhone|iPad)",
        r"<<sent by",
    ],
    "de": [r"Gesendet (?:von|mit|vom) ", r"Von meinem [^.!?]{1,60} gesendet",
           r"Diese Nachricht wurde von"],
    "it": [r"Inviato (?:da|dal|dalla|dallo|con) "],
    "nl": [r"Verzonden (?:vanaf|vanuit|met|van) ", r"Verstuurd (?:vanaf|vanuit|met|van) "],
    # "iPhoneから送信", "Windows 版のメールから送信", "Gmail モバイルから送信しました"
    "ja": [r"[^。！？]{0,40}から送信(?:しました|されました)?[。.]?$"],
}
_SENT_FROM_EXTRA = [r"Envoyé (?:de|depuis|à partir de) ", r"Enviado desde ", r"从我的",
                    r"從我的", r"Sendt fra min ", r"Skickat från min ", r"Wysłane z "]
# The Outlook apps' own footer, localized: "Get Outlook for iOS", "Outlook für Android
# herunterladen", "Outlook voor iOS downloaden", "Scarica Outlook per Android", "Outlook
# for iOS を入手", "Android 版 Outlook を入手"; in HTML mail it is a link, so the rendered
# line reads "Get [Outlook for iOS](https://aka.ms/…)" (see ``_delinked``).
_APP_FOOTER = re.compile(
    r"^[ \t]*(?:"
    r"(?:Get|Download|Herunterladen|Scarica|Ottieni|Obtenir|Télécharger|Obtener|Descargar|Baixe"
    r"|Obter|Hent|Skaffa|Pobierz)[ \t]+Outlook[ \t]+\w+[ \t]+(?:iOS|Android)"
    r"|Outlook[ \t]+\w+[ \t]+(?:iOS|Android)[ \t]*(?:herunterladen|beziehen|holen|downloaden"
    r"|ophalen|を入手(?:する)?)"
    r"|(?:iOS|Android)[ \t]*版[ \t]*(?:の[ \t]*)?Outlook[ \t]*を入手(?:する)?"
    r")[ \t]*$",
    re.IGNORECASE,
)
_LINK_TARGET = re.compile(
    r"\]\((?:https?|mailto):[^()\s]{0,500}\)|<(?:https?|mailto):[^<>\s]{0,500}>")


@dataclass(frozen=True)
class _Patterns:
    lead: re.Pattern[str]
    verb_end: Phrases  # tested on every line with a digit or "@": the fast search matters
    verb_any: Phrases
    from_field: re.Pattern[str]
    any_field: re.Pattern[str]
    separator: re.Pattern[str]
    forward_intro: re.Pattern[str]
    sent_from: re.Pattern[str]
    library: tuple[re.Pattern[str], ...]


def _alternation(words: list[str], *, escape: bool = True) -> str:
    unique = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(word) if escape else word for word in unique)


@lru_cache(maxsize=16)
def _patterns(languages: tuple[str, ...]) -> _Patterns:
    langs = ["en", *[lang for lang in languages if lang != "en"]]

    def gather(table: dict[str, list[str]]) -> list[str]:
        return [word for lang in langs for word in table.get(lang, [])]

    def field(words: list[str]) -> re.Pattern[str]:
        return re.compile(
            r"^[ \t]*[*_]{0,2}(?:" + _alternation(words) + r")[*_]{0,2}[ \t]*[:：]", re.IGNORECASE
        )

    verbs = _alternation(gather(_VERBS) + _EXTRA_VERBS, escape=False)
    # The verbs themselves are the needles that rule out most lines before the
    # (slower) expressions run.
    verb_end = r"(?:" + verbs + r")\s*(?:[:：]\s*)?$"
    verb_any = r"(?<!\w)(?:" + verbs + r")(?!\w)"
    library = []
    for lang in langs:
        source = MAIL_LANGUAGES.get(lang, {}).get("wrote_header")
        if isinstance(source, str):
            library.append(re.compile(source, re.IGNORECASE | re.MULTILINE))
    sent_from = _alternation(gather(_SENT_FROM) + _SENT_FROM_EXTRA, escape=False)
    return _Patterns(
        lead=re.compile(r"^(?:" + _alternation(gather(_LEADS) + _EXTRA_LEADS) + r")\b",
                        re.IGNORECASE),
        verb_end=Phrases(verb_end, needles=own_needles(verb_end)),
        verb_any=Phrases(verb_any, needles=own_needles(verb_any)),
        from_field=field(gather(_FROM_FIELDS) + _EXTRA_FROM_FIELDS),
        any_field=field(gather(_FROM_FIELDS) + gather(_OTHER_FIELDS) + _EXTRA_FROM_FIELDS
                        + _EXTRA_OTHER_FIELDS),
        separator=re.compile(
            r"^[ \t]*[*_]{0,2}-{2,}[ \t]*(?:"
            + _alternation(gather(_SEPARATORS) + _EXTRA_SEPARATORS)
            + r")[ \t]*-{2,}[ \t]*[*_]{0,2}[ \t]*$",
            re.IGNORECASE,
        ),
        forward_intro=re.compile(
            r"^[ \t]*(?:" + _alternation(gather(_FORWARD_INTROS)) + r")[ \t]*[:：]?[ \t]*$",
            re.IGNORECASE,
        ),
        sent_from=re.compile(r"^[ \t]*(?:" + sent_from + r")", re.IGNORECASE),
        library=tuple(library),
    )


# --- language-independent shapes ----------------------------------------------------

# ">" and the full-width "＞" that Japanese mail programs and writers use to quote.
_QUOTE_PREFIX = re.compile(r"^[ \t]*[>＞]")
_STRIP_QUOTE = re.compile(r"^(?:[ \t]*[>＞])+[ \t]?")
# Webmail attributions without a date or an address: Horde's "Quoting X:" (de "Zitat von",
# it/es "Citando", nl "Citaat van", fr "Citation de").
_QUOTING_LEAD = re.compile(r"^(?:Quoting|Zitat von|Citando|Citaat van|Citation de)\s",
                           re.IGNORECASE)
_ANGLE_EMAIL_END = re.compile(r"@[^\s<>@]+>\s*[:：]\s*$")
_EMAIL = re.compile(r"[^\s<>@]@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_DIGIT = re.compile(r"\d")
_ISO_DATE_START = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\.?[ \t,]+\d{1,2}[:.]\d{2}")
_DATE_START = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)")
_ANGLE_EMAIL_LAST = re.compile(r"<[^\s<>@]+@[^\s<>@]+>\s*(?:[:：]\s*)?$")
_JA_HEADER = re.compile(
    r"(?:のメッセージ|さんは書きました|が書きました|は書きました)\s*(?:[:：]\s*)?$"
)
_JA_DATE_START = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日")
_SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
_UNDERSCORES = re.compile(r"^[ \t]*_{2,}[ \t]*$")
_LONG_RULE = re.compile(r"^[ \t]*[*_]{0,2}(?:_{20,}|-{20,})[*_]{0,2}[ \t]*$")
_SIG_DASHES = re.compile(r"^--[ \t]*$")
_DASH_NAME = re.compile(r"^-[^\s\-][\w.'-]*(?: [\w.'-]+){0,3}$")
_JUNK_LINE = re.compile(r"^[\s\-*#~=_+.ᐧ—–|]*$")
_IMAGE_MARK = re.compile(r"\[cid:[^\[\]\s]{1,500}\]")

# Boilerplate a mail system or a company adds to what a person writes, in our languages
# (with English, most companies write a bilingual one).  Each expression is one phrase;
# a paragraph is a disclaimer when it holds two of them, or one of the unambiguous ones.
_DISCLAIMER_PHRASES = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    # en
    r"\b(?:this|the) (?:e-?mail|message|communication|transmission)\b[^.]{0,80}\b(?:is|are|"
    r"may be|may contain|contains?)\b[^.]{0,60}\b(?:confidential|privileged|proprietary)",
    r"\bintended (?:solely|only|exclusively) for the (?:use of the )?(?:addressee|individual|"
    r"person|recipient|named|entity)",
    r"\bif you (?:are not|have received)\b[^.]{0,80}\b(?:intended recipient|in error|"
    r"by mistake)",
    r"\b(?:dissemination|distribution|copying|disclosure)\b[^.]{0,80}\b(?:prohibited|"
    r"not permitted|unauthori[sz]ed)",
    # de
    r"\b(?:diese|die(?:se)?|vorliegende) (?:e-?mail|nachricht|mail)\b[^.]{0,80}\b(?:enthält|"
    r"enthalten|kann|ist|sind)\b[^.]{0,60}\b(?:vertraulich|rechtlich geschützt)",
    r"\bnicht der (?:richtige|beabsichtigte|vorgesehene) (?:adressat|empfänger)",
    r"\b(?:irrtümlich|versehentlich|fälschlicherweise|irrtümlicherweise) erhalten",
    r"\b(?:unerlaubte|unbefugte) (?:weitergabe|kopieren|nutzung|veröffentlichung)",
    # nl
    r"\b(?:dit|deze) (?:e-?mail(?:bericht)?|bericht)\b[^.]{0,80}\b(?:is|zijn|kan|bevat)\b"
    r"[^.]{0,60}\b(?:vertrouwelijk|uitsluitend bestemd|alleen bestemd)",
    r"\b(?:uitsluitend|alleen|enkel) bestemd voor de (?:geadresseerde|ontvanger)",
    r"\b(?:ten onrechte|abusievelijk|per vergissing|onterecht) (?:heeft )?ontvangen",
    r"\b(?:openbaarmaking|vermenigvuldiging|verspreiding)\b[^.]{0,80}\bniet toegestaan",
    # it
    r"\b(?:questo|il presente) (?:messaggio|e-?mail|documento)\b[^.]{0,80}\b(?:è|sono|"
    r"contiene|può contenere|potrebbe contenere)\b[^.]{0,80}\b(?:riservat|confidenzial)",
    r"\ble informazioni contenute (?:in questo|nel presente|nella presente)",
    r"\bricevuto (?:questo|il presente) (?:messaggio|e-?mail|documento) per errore",
    r"\b(?:destinatari[oa]?|destinato) (?:indicat|esclusiv|unicamente|solo)",
    # ja
    r"(?:この|本)(?:メール|電子メール|メッセージ)(?:および添付ファイル)?(?:は|には)"
    r"[^。]{0,40}(?:機密|秘密)",
    r"(?:誤って|誤送信|間違って)[^。]{0,30}(?:受信|受け取|届い|送信)",
    r"(?:宛先|受信者)(?:以外|として指定された)",
))
_DISCLAIMER_ALONE = re.compile(
    r"^\W{0,3}(?:confidentiality (?:notice|note|statement)|disclaimer|legal notice|"
    r"vertraulichkeitshinweis|rechtlicher hinweis|avviso di riservatezza|"
    r"(?:【|\[)?(?:免責事項|機密保持)(?:】|\])?)\W"
    r"|\bconsider the environment before printing|\ban die umwelt,? bevor sie (?:diese|"
    r"die) (?:e-?mail|nachricht) (?:aus)?drucken|\bdenk aan het milieu|\bpensa all'ambiente|"
    r"\bprima di stampare|\bnachhaltigkeit.{0,20}ausdrucken",
    re.IGNORECASE,
)
#: Lines a disclaimer (with a short company footer) may span, from its first line to the end.
_DISCLAIMER_LINES = 25
# Banners a mail system puts above a message from outside ("CAUTION: This email originated
# from outside of the organization", Outlook's "You don't often get email from …").
_BANNER = re.compile(
    r"\b(?:originated|comes?|came|was sent|is) from (?:outside|an? external)"
    r"|\bexternal (?:e-?mail|sender|message)\b"
    r"|\byou don'?t often get e-?mail from\b"
    r"|\b(?:stammt|kommt|wurde)\b[^.]{0,20}\b(?:von )?(?:außerhalb|ausserhalb|extern)"
    r"|\bexterne[rn]? (?:e-?mail|absender|nachricht)\b"
    r"|\bSie erhalten nicht oft e-?mails? von\b"
    r"|\b(?:is afkomstig|komt|werd verzonden) (?:van )?buiten\b"
    r"|\bexterne (?:e-?mail|afzender)\b"
    r"|\bU ontvangt niet vaak e-?mail van\b"
    r"|\bprovien[ei] (?:dall['’]esterno|da (?:un )?mittente esterno|da fuori)"
    r"|\bmittente esterno\b"
    r"|\bNon ricevi spesso (?:messaggi|e-?mail)"
    r"|(?:組織|社)外(?:から|の)"
    r"|から頻繁にメールを受信するわけではありません"
    r"|^\W{0,3}\[?(?:EXTERNAL|EXTERN|EXTERNE|ESTERNO|ESTERNA|社外)\]?\W",
    re.IGNORECASE,
)
_BANNER_ALERT = re.compile(
    r"^\W{0,3}(?:\[?(?:EXTERNAL|EXTERN|EXTERNE|ESTERNO|ESTERNA)\]?|CAUTION|WARNING|ATTENTION|"
    r"ACHTUNG|VORSICHT|WARNUNG|HINWEIS|LET OP|WAARSCHUWING|ATTENZIONE|AVVISO|注意|【注意】|"
    r"\[社外\]|【社外】|社外メール)\b"
    r"|^\W{0,3}(?:You don'?t often get|Sie erhalten nicht oft|U ontvangt niet vaak|"
    r"Non ricevi spesso)"
    r"|から頻繁にメールを受信するわけではありません",
    re.IGNORECASE,
)


def split_reply(text: str, languages: Sequence[str] = DEFAULT_LANGUAGES) -> ReplyParts:
    """Return the new text, quoted history and signature of a reply body."""
    if not text:
        return ReplyParts("", "", "")
    try:
        return _Splitter(text, _patterns(tuple(lang.lower() for lang in languages))).split()
    except Exception:  # noqa: BLE001 - never lose the customer's text over a bug here
        log.exception("split_reply failed; keeping the whole text")
        return ReplyParts(text.replace("\r\n", "\n").strip(), "", "")


class _Splitter:
    def __init__(self, text: str, patterns: _Patterns) -> None:
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.lines = self.text.split("\n")
        self.p = patterns
        # One cut-down copy of each examined line, for the patterns.
        self.probe = [line[:_MAX_LINE_CHARS].rstrip() for line in self.lines[:_MAX_LINES]]
        self.library_budget = 20  # calls to mail-parser-reply's (backtracking) expressions
        self.found_header = False

    # .. the walk ..

    def split(self, *, allow_fallback: bool = True) -> ReplyParts:
        regions = self._regions()
        new_lines, quoted_lines, signature_lines = self._assemble(regions)
        visible = _join(new_lines, rstrip_lines=True)
        quoted = _join(quoted_lines)
        signature = _join(signature_lines)
        if not visible.strip() and allow_fallback:
            parts = self._fallback(regions, quoted.strip())
            return ReplyParts(_trim_junk(parts.visible), parts.quoted, parts.signature.strip())
        return ReplyParts(_trim_junk(visible), quoted.strip(), signature.strip())

    def _regions(self) -> list[tuple[str, int, int]]:
        """Cut the lines into ("new" | "quote" | "history", start, end) regions."""
        regions: list[tuple[str, int, int]] = []
        total = len(self.lines)
        limit = len(self.probe)
        new_start = 0
        index = 0
        while index < limit:
            if self._is_quoted(index):
                end = self._quote_end(index)
                regions.append(("new", new_start, index))
                regions.append(("quote", index, end))
                index = new_start = end
                continue
            header = self._header_at(index)
            if header is None:
                index += 1
                continue
            start, after, kind = header
            self.found_header = True
            regions.append(("new", new_start, start))
            following = self._next_nonblank(after)
            if kind == "wrote" and following < limit and self._is_quoted(following):
                end = self._quote_end(following)
                regions.append(("quote", start, end))
                index = new_start = end
                continue
            regions.append(("history", start, total))
            return [region for region in regions if region[1] < region[2]]
        regions.append(("new", new_start, total))
        return [region for region in regions if region[1] < region[2]]

    def _assemble(
        self, regions: list[tuple[str, int, int]]
    ) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
        new: list[list[str]] = []
        quoted: list[list[str]] = []
        signature: list[list[str]] = []
        signed = False
        for kind, start, end in regions:
            lines = self.lines[start:end]
            if kind != "new":
                quoted.append(lines)
                continue
            if signed:
                # After the signature only quotes and footers follow.
                signature.append(lines)
                continue
            if not new:
                start = self._after_banner(start, end, signature)
            cut = self._signature_start(start, end)
            if cut is None:
                new.append(self.lines[start:end])
            else:
                new.append(self.lines[start:cut])
                signature.append(self.lines[cut:end])
                signed = True
        return new, quoted, signature

    def _fallback(self, regions: list[tuple[str, int, int]], quoted: str) -> ReplyParts:
        """Nothing new found: never return empty unless the text is all quote."""
        if not self.text.strip() or not regions:
            return ReplyParts("", quoted, "")
        own = _join(
            [self.lines[start:end] for kind, start, end in regions if kind == "new"],
            rstrip_lines=True,
        )
        if own.strip():
            return ReplyParts(own, quoted, "")  # only a signature: keep the sender's lines
        first_kind, first_start, _end = regions[0]
        if first_kind == "history" or (first_kind == "quote" and not self._is_quoted(first_start)):
            # Starts with a header (a forward, a bottom-posting client): the
            # text under the header is the message, up to the next header.
            body_start = self._skip_header_block(first_start)
            if body_start < len(self.lines):
                inner = _Splitter("\n".join(self.lines[body_start:]), self.p).split(
                    allow_fallback=False
                )
                if inner.visible.strip():
                    header = _join([self.lines[first_start:body_start]])
                    rest = "\n\n".join(part for part in (header, inner.quoted) if part)
                    return ReplyParts(inner.visible, rest, inner.signature)
        if self.found_header or self._starts_with_quoted_header():
            return ReplyParts("", quoted, "")  # a quoted thread and nothing else
        return ReplyParts(self.text.strip(), "", "")  # quoted lines without a header: keep

    # .. line tests ..

    def _is_quoted(self, index: int) -> bool:
        return bool(_QUOTE_PREFIX.match(self.probe[index]))

    def _quote_end(self, index: int) -> int:
        """End of the ">" block starting at ``index`` (blank lines inside included)."""
        limit = len(self.probe)
        end = index
        cursor = index
        while cursor < limit:
            if self._is_quoted(cursor):
                cursor += 1
                end = cursor
            elif not self.probe[cursor].strip():
                cursor += 1
            elif end == cursor and self._is_rewrapped_quote(cursor):
                cursor += 1
                end = cursor
            else:
                break
        if end >= limit:
            return len(self.lines)
        return end

    def _is_rewrapped_quote(self, index: int) -> bool:
        """A quoted line's tail that a client wrapped without the ">" marker.

        Only a line squeezed between quoted lines qualifies, and only if it is
        a lowercase tail of a long line, follows a quoted-printable soft break,
        or has no word at all; so short inline answers are never swallowed.
        """
        line = self.probe[index].strip()
        previous = self.probe[index - 1] if index > 0 else ""
        following = index + 1
        if not (index > 0 and self._is_quoted(index - 1)):
            return False
        if following < len(self.probe) and not self._is_quoted(following):
            return False
        wrapped = line[:1].islower() and len(previous) >= 60
        soft_break = previous.endswith("=")  # quoted-printable left undecoded
        wordless = not any(char.isalnum() for char in line)
        return wrapped or soft_break or wordless

    def _next_nonblank(self, index: int) -> int:
        while index < len(self.probe) and not self.probe[index].strip():
            index += 1
        return index

    def _starts_with_quoted_header(self) -> bool:
        first = self._next_nonblank(0)
        if first >= len(self.probe):
            return False
        unquoted = _STRIP_QUOTE.sub("", self.probe[first])
        return self._is_wrote_header(unquoted) or bool(self.p.from_field.match(unquoted))

    # .. headers ..

    def _header_at(self, index: int) -> tuple[int, int, str] | None:
        """A quote header or history marker starting at ``index``.

        Returns (first line of the quoted part, line after the header, kind);
        kind "wrote" may be followed by ">" lines, "block" runs to the end.
        """
        line = self.probe[index]
        stripped = line.strip()
        if not stripped:
            return None
        # Separators and rules start with "-", "_" or "*" after the indent: checking
        # that first is cheaper than the two expressions, and most lines fail it.
        ruled = stripped[:1] in ("-", "_", "*")
        if (ruled and self.p.separator.match(line)) or self.p.forward_intro.match(line):
            return index, index + 1, "block"
        if ruled and _LONG_RULE.match(line):
            after = self._next_nonblank(index + 1)
            if after < len(self.probe) and self._outlook_block_at(after):
                return index, after, "block"
            return None
        if self._outlook_block_at(index) or self._field_block_at(index):
            return index, index + 1, "block"
        wrote_end = self._wrote_header_end(index)
        if wrote_end is not None:
            return index, wrote_end, "wrote"
        if self._is_bare_attribution(index):
            return index, index + 1, "wrote"
        return None

    def _is_bare_attribution(self, index: int) -> bool:
        """"Support wrote:", "Quoting Support:", "Zitat von X:" right above a ">" block (or a
        dated header without its colon): an
        attribution with neither date nor address. Only a name may stand before the verb
        (capitalised words or a quoted name: "as you wrote:" is the sender's sentence)."""
        line = _undecorate(self.probe[index])
        if len(line) > 200 or not line:
            return False
        following = self._next_nonblank(index + 1)
        if following >= len(self.probe) or not self._is_quoted(following):
            return False
        if not line.endswith((":", "：")):
            # A full header whose colon a client left out ("Op ma 3 jun 2024 om 10:15
            # schreef Support <support@example.com>"): lead, date, address and verb.
            return ("@" in line and _DIGIT.search(line) is not None
                    and self._may_open_header(line)
                    and self.p.verb_any.search(line) is not None)
        if _QUOTING_LEAD.match(line):
            return True
        if self.p.verb_end.search(line[-40:]) is None:
            return False
        found = self.p.verb_end.pattern.search(line)
        if found is None:
            return False
        names = line[: found.start()].split()
        return 0 < len(names) <= 6 and all(
            name[:1].isupper() or name[:1] in "\"'<(" for name in names)

    def _outlook_block_at(self, index: int) -> bool:
        """ "From:" followed by another header field within a few lines."""
        line = self.probe[index]
        if not self.p.from_field.match(line):
            return False
        fields = 1
        blanks = 0
        for cursor in range(index + 1, min(index + 7, len(self.probe))):
            candidate = self.probe[cursor]
            if not candidate.strip():
                blanks += 1
                if blanks > 1:
                    break
                continue
            if self.p.any_field.match(candidate):
                fields += 1
                if fields >= 2:
                    return True
        # A lone "From: Name <address>" opening a paragraph (some clients).
        previous_blank = index == 0 or not self.probe[index - 1].strip()
        return previous_blank and len(line) < 200 and "@" in line and bool(_EMAIL.search(line))

    def _field_block_at(self, index: int) -> bool:
        """A header block that does not start with "From:" (Hotmail: "Date:", "Subject:",
        "From:", "To:"): three fields on consecutive lines, one of them "From"."""
        if not self.p.any_field.match(self.probe[index]):
            return False
        end = min(index + 6, len(self.probe))
        run = index
        while run < end and self.p.any_field.match(self.probe[run]):
            run += 1
        return run - index >= 3 and any(
            self.p.from_field.match(self.probe[cursor]) for cursor in range(index + 1, run))

    def _wrote_header_end(self, index: int) -> int | None:
        """Line after an "On ... wrote:"-style header starting here, if it is one."""
        first = _undecorate(self.probe[index])
        if not first or len(first) > 400:
            return None
        if self._is_wrote_header(first):
            return index + 1
        # "Name <a@b> schrieb am Fr., 28." + "Apr. 2017 um 11:53 Uhr:" wraps anywhere.
        named = "@" in first and self.p.verb_any.search(first) is not None
        if not named and (_ends_sentence(first) or not self._may_open_header(first)):
            return None
        # Wrapped header: join a few following lines until one carries the verb.
        joined = first
        for cursor in range(index + 1, min(index + _HEADER_SPAN, len(self.probe))):
            piece = self.probe[cursor].strip()
            if not piece:
                continue
            # A trailing "=" is a quoted-printable soft line break: no space.
            joined = f"{joined[:-1]}{piece}" if joined.endswith("=") else f"{joined} {piece}"
            if len(joined) > 400:
                return None
            if piece.endswith((":", "：")) or self.p.verb_any.search(piece) is not None:
                return cursor + 1 if self._is_wrote_header(joined) else None
            if _ends_sentence(piece):
                return None
        return None

    def _may_open_header(self, line: str) -> bool:
        # A dated line cut at the "<" of the address is Gmail wrapping a header in any
        # language ("20 окт. 2016 г. 19:37 пользователь "Name" <" + "a@b> написал:").
        return bool(
            self.p.lead.match(line) or _ISO_DATE_START.match(line) or _JA_DATE_START.match(line)
            or (line.endswith("<") and _DIGIT.search(line))
        )

    def _is_wrote_header(self, line: str) -> bool:
        """One (joined) line: is it a quote header?"""
        line = _undecorate(line)
        if not line or len(line) > 400:
            return False
        has_address = "@" in line
        has_digit = bool(_DIGIT.search(line))
        if not line.isascii() and _JA_HEADER.search(line):
            return True
        if not (has_digit or has_address):
            # Every test below needs a date or an address, and most lines of prose
            # have neither.  Likewise the cheap tests come first in each condition
            # below: the verb searches are the expensive part, on every log line.
            return False
        return (
            _is_japanese_dated(line, has_address)
            or self._verb_ends_header(line, has_address, has_digit)
            or self._verb_before_colon(line, has_address, has_digit)
            or _is_dated_address(line, has_address, has_digit)
            or self._library_says_header(line)
        )

    # Each test below runs on a line with a digit or an address (or both).

    def _verb_ends_header(self, line: str, has_address: bool, has_digit: bool) -> bool:
        """"On <date>, X wrote:", "Name <a@b> wrote:", "At 6/16/2016 08:32 PM, you wrote:"."""
        # Only the tail can end with the verb; searching it alone keeps this cheap.
        if self.p.verb_end.search(line[-40:]) is None:
            return False
        if self.p.lead.match(line):
            return True
        return has_address or (has_digit and _verb_is_last(line, self.p.verb_any.pattern))

    def _verb_before_colon(self, line: str, has_address: bool, has_digit: bool) -> bool:
        """"Am 1.1.2023 um 17:22 schrieb X:", "X schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:"."""
        if not line.endswith((":", "：")) or self.p.verb_any.search(line) is None:
            return False
        return bool(self.p.lead.match(line)) or (has_address and has_digit)

    def _library_says_header(self, line: str) -> bool:
        """The mail-parser-reply expressions, on a bounded number of lines per message
        (they are the slowest test)."""
        if not self.p.lead.match(line) or self.library_budget <= 0:
            return False
        self.library_budget -= 1
        return any(pattern.search(line) for pattern in self.p.library)

    def _skip_header_block(self, index: int) -> int:
        """First line after a header/separator and the header fields below it."""
        wrote_end = self._wrote_header_end(index)
        if wrote_end is not None:
            return self._next_nonblank(wrote_end)
        cursor = index
        line = self.probe[index]
        if (
            self.p.separator.match(line)
            or self.p.forward_intro.match(line)
            or _LONG_RULE.match(line)
        ):
            cursor = self._next_nonblank(index + 1)
        if cursor < len(self.probe) and self.p.any_field.match(self.probe[cursor]):
            while cursor < len(self.probe) and self.probe[cursor].strip():
                cursor += 1
        return self._next_nonblank(cursor)

    # .. signatures ..

    def _signature_start(self, start: int, end: int) -> int | None:
        limit = min(end, len(self.probe))
        for index in range(start, limit):
            line = self.probe[index]
            if _SIG_DASHES.match(line):
                return self._before_dash_name(start, index)
            if _UNDERSCORES.match(line) and self._short_block(index + 1, limit):
                # A rule under the text opens a footer only if little follows;
                # otherwise it is the sender's own section break.
                return self._before_dash_name(start, index)
            if self._is_device_footer(line):
                return self._before_dash_name(start, index)
        last = self._last_nonblank(start, limit)
        if last is not None and self._is_dash_name(start, last):
            return last
        return self._disclaimer_start(start, limit)

    def _paragraphs(self, start: int, end: int, most: int = _MAX_LINES) -> list[tuple[int, int]]:
        """(first line, line after) of each run of non-blank lines (the first ``most``)."""
        runs: list[tuple[int, int]] = []
        index = start
        while index < end and len(runs) < most:
            if not self.probe[index].strip():
                index += 1
                continue
            first = index
            while index < end and self.probe[index].strip():
                index += 1
            runs.append((first, index))
        return runs

    def _paragraph_text(self, first: int, after: int) -> str:
        return " ".join(line.strip() for line in self.probe[first:min(after, first + 30)])[:3000]

    def _disclaimer_start(self, start: int, end: int) -> int | None:
        """A company's disclaimer under the text: the first paragraph, not the first one,
        of a short tail holding a confidentiality notice, to the end of the region.

        One phrase alone is not enough ("Ich habe die Rechnung irrtümlich erhalten" is a
        customer's sentence): a disclaimer holds two, or one unambiguous one."""
        paragraphs = self._paragraphs(start, end)
        # Only the paragraphs of the last _DISCLAIMER_LINES lines, found from the end (one
        # pass: a long message costs no more than a short one per paragraph).
        earliest, lines = len(paragraphs), 0
        while earliest > 1 and lines + paragraphs[earliest - 1][1] - paragraphs[
                earliest - 1][0] <= _DISCLAIMER_LINES:
            earliest -= 1
            lines += paragraphs[earliest][1] - paragraphs[earliest][0]
        for position, (first, after) in enumerate(paragraphs[earliest:], start=earliest):
            tail = " ".join(self._paragraph_text(*run) for run in paragraphs[position:])
            text = self._paragraph_text(first, after)
            if _DISCLAIMER_ALONE.search(text) or (
                    any(p.search(text) for p in _DISCLAIMER_PHRASES)
                    and sum(1 for p in _DISCLAIMER_PHRASES if p.search(tail)) >= 2):
                return first
        return None

    def _after_banner(self, start: int, end: int, boilerplate: list[list[str]]) -> int:
        """Past a mail system's "this mail comes from outside" banner at the very top (it
        goes to ``boilerplate``); ``start`` when there is none or nothing follows it."""
        paragraphs = self._paragraphs(start, min(end, len(self.probe)), most=2)
        if len(paragraphs) < 2:
            return start
        first, after = paragraphs[0]
        text = self._paragraph_text(first, after)
        if after - first > 6 or len(text) > 600 or not _BANNER_ALERT.search(text):
            return start
        if not _BANNER.search(text):
            return start
        boilerplate.append(self.lines[start:after])
        return paragraphs[1][0]

    def _is_device_footer(self, line: str) -> bool:
        """"Sent from my iPhone" and the like, also as a rendered link."""
        original = line
        if "](" in line or "<" in line:
            line = _delinked(line)
        if self.p.sent_from.match(line) and _short_line(line):
            return True
        if "utlook" not in line:
            return False
        # The apps' footer links to aka.ms in every language ("Envoyé à partir de Outlook
        # pour iOS<https://aka.ms/o0ukef>").
        return _APP_FOOTER.match(line) is not None or (
            "aka.ms/" in original and len(line.split()) <= 8 and _short_line(line))

    def _short_block(self, start: int, end: int) -> bool:
        return sum(1 for index in range(start, end) if self.probe[index].strip()) <= 8

    def _before_dash_name(self, start: int, index: int) -> int:
        """Include a "-Name" line just above a signature delimiter."""
        previous = self._last_nonblank(start, index)
        if previous is not None and self._is_dash_name(start, previous):
            return previous
        return index

    def _is_dash_name(self, start: int, index: int) -> bool:
        """A "-Name" sign-off (github/email_reply_parser convention), not a list item.

        It must be its own paragraph, after the text, and start with a capital.
        """
        line = self.probe[index].strip()
        if index <= start or not _DASH_NAME.match(line) or not line[1:2].isupper():
            return False
        return not self.probe[index - 1].strip()

    def _last_nonblank(self, start: int, end: int) -> int | None:
        for index in range(end - 1, start - 1, -1):
            if self.probe[index].strip():
                return index
        return None


def _undecorate(line: str) -> str:
    return line.strip(" \t*_-")


def _ends_sentence(text: str) -> bool:
    """Whether ``text`` ends with a full stop, "!" or "?" (maybe followed by blanks).

    The string test equals the expression ``[.!?。！？]\\s*$`` (``\\s`` is
    ``str.isspace``) and, unlike it, never scans the whole line.
    """
    return text.rstrip().endswith(_SENTENCE_ENDS)


def _is_japanese_dated(line: str, has_address: bool) -> bool:
    """"2017年4月28日 11:53 Name <a@b>:": a Japanese date first, an address, a colon last."""
    return (
        line.endswith((":", "："))
        and (has_address or "<" in line)
        and _JA_DATE_START.match(line) is not None
    )


def _is_dated_address(line: str, has_address: bool, has_digit: bool) -> bool:
    """A date and an address without a verb (Gmail and Discourse shapes)."""
    if has_digit and has_address and _ANGLE_EMAIL_END.search(line):
        return True  # "2014-03-20 8:48 GMT+01:00 Name <a@b>:"
    if ("GMT" in line or has_address) and _ISO_DATE_START.match(line):
        return True  # Gmail without the colon
    # "2013/7/20 sam via Discourse Meta <info@discourse.org>"
    return has_address and bool(_DATE_START.match(line)) and bool(_ANGLE_EMAIL_LAST.search(line))


def _verb_is_last(line: str, verb: re.Pattern[str]) -> bool:
    found = list(verb.finditer(line))
    if not found:
        return False
    tail = line[found[-1].end() :]
    return not tail.strip(" \t:：")


def _delinked(line: str) -> str:
    """A line without link targets: "Get [Outlook for iOS](https://…)" → "Get Outlook for
    iOS" (a rendered HTML link), "Outlook for iOS<https://…>" (a client's text part)."""
    return _LINK_TARGET.sub("", line).replace("[", "").replace("]", "")


def _short_line(line: str) -> bool:
    """Device signatures are short and carry no sentence after a comma."""
    words = line.split()
    return len(words) <= 10 and "," not in line.split(">")[-1].rstrip(". ")


def _join(blocks: list[list[str]], *, rstrip_lines: bool = False) -> str:
    parts = []
    for block in blocks:
        lines = [line.rstrip() for line in block] if rstrip_lines else block
        text = "\n".join(lines).strip("\n")
        if text.strip():
            parts.append(text.rstrip())
    return "\n\n".join(parts)


def _drop_image_marks(text: str) -> str:
    """Outlook's text part marks each inline picture (a logo in the signature, a pasted
    screenshot) as "[cid:image001.png@01DAB5C1.2F3E8D00]": a reference for mail programs,
    not words; the picture itself is an attachment. Lines left empty go too, but a reply
    that is only a picture keeps its mark (it says that there is one)."""
    if "[cid:" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        cleaned = _IMAGE_MARK.sub("", line).rstrip() if "[cid:" in line else line
        if cleaned.strip() or not line.strip():
            lines.append(cleaned)
    kept = "\n".join(lines)
    return kept if kept.strip() else text


def _trim_junk(text: str) -> str:
    """Drop trailing lines without any word (delimiters, tracking marks)."""
    text = _drop_image_marks(text)
    lines = text.rstrip().split("\n")
    while lines and _JUNK_LINE.match(lines[-1]) and len(lines) > 1:
        lines.pop()
    return "\n".join(lines).strip()
