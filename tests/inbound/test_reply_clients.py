"""The new text of replies as the clients our customers use write them.

Each sample is written here by hand after the shape the client produces (Outlook desktop,
OWA and mobile, Gmail web and mobile, Apple Mail / iOS, Thunderbird, Japanese clients), in
the languages we support (en, de, nl, it, ja); a user checks that the ticket shows only the
words typed this time.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from inbound.parsing.analysis import analyze
from inbound.parsing.reply_text import split_reply


def _html_mail(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Hans Müller <hans@example.de>"
    message["To"] = "support@example.com"
    message["Subject"] = "AW: [#42] Drucker"
    message["Message-ID"] = "<reply-1@example.de>"
    message.set_content(html, subtype="html")
    return bytes(message)


# --- device and app footers ----------------------------------------------------------

_MOBILE_HISTORY = {
    "en": "From: Support <support@example.com>\nSent: Monday, June 3, 2024 10:15:00 AM\n"
          "To: Bob <bob@example.com>\nSubject: Re: [#42] Printer\n\nHi Bob\n",
    "de": "Von: Support <support@example.com>\nGesendet: Montag, Juni 3, 2024 10:15:00 AM\n"
          "An: Hans <hans@example.de>\nBetreff: Re: [#42] Drucker\n\nHallo Hans\n",
    "nl": "Van: Support <support@example.com>\nVerzonden: maandag, juni 3, 2024 10:15:00 AM\n"
          "Aan: Jan <jan@example.nl>\nOnderwerp: Re: [#42] Printer\n\nHallo Jan\n",
    "it": "Da: Support <support@example.com>\nInviato: lunedì, giugno 3, 2024 10:15:00 AM\n"
          "A: Mario <mario@example.it>\nOggetto: Re: [#42] Stampante\n\nCiao Mario\n",
    "ja": "差出人: Support <support@example.com>\n送信日時: Monday, June 3, 2024 10:15:00 AM\n"
          "宛先: 山田 <yamada@example.jp>\n件名: Re: [#42] 印刷\n\n山田様\n",
}


@pytest.mark.parametrize(("language", "footer"), [
    ("en", "Get Outlook for iOS<https://aka.ms/o0ukef>"),
    ("en", "Get Outlook for Android<https://aka.ms/ghei36>"),
    ("de", "Outlook für Android herunterladen<https://aka.ms/ghei36>"),
    ("de", "Outlook für iOS beziehen<https://aka.ms/o0ukef>"),
    ("nl", "Outlook voor iOS downloaden<https://aka.ms/o0ukef>"),
    ("it", "Scarica Outlook per Android<https://aka.ms/ghei36>"),
    ("it", "Ottieni Outlook per iOS<https://aka.ms/o0ukef>"),
    ("ja", "Outlook for iOS を入手<https://aka.ms/o0ukef>"),
    ("ja", "Android 版 Outlook を入手<https://aka.ms/ghei36>"),
])
def test_outlook_mobile_footer_is_not_the_reply(language: str, footer: str) -> None:
    # Outlook for iOS/Android: the reply, the app's footer with its link, a rule, the history.
    text = f"Ok, thanks\n\n{footer}\n________________________________\n{_MOBILE_HISTORY[language]}"
    parts = split_reply(text)
    assert parts.visible == "Ok, thanks"
    assert parts.signature == footer


@pytest.mark.parametrize(("language", "footer_html"), [
    ("en", 'Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a>'),
    ("de", '<a href="https://aka.ms/AAb9ysg">Outlook für Android</a> herunterladen'),
    ("nl", '<a href="https://aka.ms/o0ukef">Outlook voor iOS</a> downloaden'),
    ("it", 'Scarica <a href="https://aka.ms/AAb9ysg">Outlook per Android</a>'),
    ("ja", '<a href="https://aka.ms/o0ukef">Outlook for iOS</a> を入手'),
])
def test_outlook_mobile_html_footer_is_not_the_reply(language: str, footer_html: str) -> None:
    fields = {"en": ("From", "Sent", "To", "Subject"), "de": ("Von", "Gesendet", "An", "Betreff"),
              "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
              "it": ("Da", "Inviato", "A", "Oggetto"), "ja": ("差出人", "送信日時", "宛先", "件名")}
    sender, sent, to, subject = fields[language]
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        '<body><div dir="auto">Ok, thanks</div>'
        f'<div id="ms-outlook-mobile-signature"><div><br></div>{footer_html}</div><br>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" color="#000000">'
        f"<b>{sender}:</b> Support &lt;support@example.com&gt;<br>"
        f"<b>{sent}:</b> Monday, June 3, 2024 10:15:00 AM<br><b>{to}:</b> Hans<br>"
        f"<b>{subject}:</b> Re: [#42] x</font><div>&nbsp;</div></div><div>Hallo</div></body></html>"
    )
    assert analyze(_html_mail(html)).reply.visible == "Ok, thanks"


@pytest.mark.parametrize("footer", [
    "Von meinem Samsung Galaxy Smartphone gesendet.",
    "Von meinem Huawei Mobiltelefon gesendet",
    "Verzonden vanuit Mail voor Windows",
    "Inviato dallo smartphone Samsung Galaxy.",
    "Windows 版のメールから送信",
    "Android端末から送信",
    "Gmail モバイルから送信しました",
])
def test_localized_device_footers(footer: str) -> None:
    parts = split_reply(f"Works now.\n\n{footer}\n")
    assert (parts.visible, parts.signature) == ("Works now.", footer)


@pytest.mark.parametrize("text", [
    "Ich habe es von meinem Laptop aus gesendet, aber es kam nie an.",
    "Outlook for iOS crashes when I open the attachment.",
    "Die App Outlook für Android stürzt beim Start ab, bitte helfen.",
    "昨日PCから送信したメールが届いていません。",
])
def test_sentences_about_devices_stay(text: str) -> None:
    parts = split_reply(f"Hello,\n\n{text}\n")
    assert parts.visible == f"Hello,\n\n{text}"


def test_naming_the_outlook_app_is_not_its_footer() -> None:
    # An answer that names the app, on its own line, is the customer's words.
    text = "Which app do you use?\n\nOutlook for iOS\n\nOutlook for Android keeps crashing"
    assert split_reply(text).visible == text
