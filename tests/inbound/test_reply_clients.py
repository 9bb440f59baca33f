"""The new text of replies as the clients our customers use write them.

Each sample is written here by hand after the shape the client produces (Outlook desktop,
OWA and mobile, Gmail web and mobile, Apple Mail / iOS, Thunderbird, Japanese clients), in
the languages we support (en, de, nl, it, ja); a user checks that the ticket shows only the
words typed this time.
"""

from __future__ import annotations

import time
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


# --- company disclaimers and "from outside" banners ----------------------------------

_DISCLAIMERS = {
    "en": "This e-mail and any attachments are confidential and may be privileged. If you are "
          "not the intended recipient, please notify the sender immediately and delete it.",
    "de": "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. Wenn "
          "Sie nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben,\n"
          "informieren Sie bitte sofort den Absender und vernichten Sie diese Mail.",
    "nl": "De informatie in dit e-mailbericht is vertrouwelijk en uitsluitend bestemd voor de "
          "geadresseerde. Indien u dit bericht ten onrechte heeft ontvangen, wordt u verzocht "
          "de afzender te informeren.",
    "it": "Questo messaggio e i suoi allegati sono indirizzati esclusivamente al destinatario e "
          "possono contenere informazioni riservate. Se avete ricevuto questo messaggio per "
          "errore, vi preghiamo di avvisare il mittente.",
    "ja": "このメールは機密情報を含む場合があります。宛先以外の方が受信された場合は、"
          "お手数ですが送信者にご連絡の上、削除してください。",
}


@pytest.mark.parametrize("language", sorted(_DISCLAIMERS))
def test_company_disclaimer_under_the_sign_off_is_not_the_reply(language: str) -> None:
    # Outlook: the reply, the sign-off, the company's disclaimer, then the history.
    disclaimer = _DISCLAIMERS[language]
    text = (f"Hallo,\n\nes geht wieder.\n\nGrüße\nHans\n\n{disclaimer}\n\n"
            f"{_MOBILE_HISTORY[language]}")
    parts = split_reply(text)
    assert parts.visible == "Hallo,\n\nes geht wieder.\n\nGrüße\nHans"
    assert parts.signature == disclaimer


def test_disclaimer_with_a_company_footer_and_no_history() -> None:
    text = ("Please find the log attached.\n\nBest regards,\nAnn\n\nACME Ltd, 1 Main St, London\n"
            "Registered in England No. 123456\n\nCONFIDENTIALITY NOTICE: the contents of this "
            "message are for the addressee only.\n\nPlease consider the environment before "
            "printing this e-mail.")
    parts = split_reply(text)
    assert parts.visible == ("Please find the log attached.\n\nBest regards,\nAnn\n\n"
                             "ACME Ltd, 1 Main St, London\nRegistered in England No. 123456")
    assert parts.signature.startswith("CONFIDENTIALITY NOTICE")


@pytest.mark.parametrize("text", [
    "Hallo,\n\nich habe Ihre Rechnung irrtümlich erhalten. Sie ist an meinen Kollegen.",
    "Hello,\n\nis this message confidential? If you are not the intended recipient of our "
    "invoices, who is?",
    "Hi,\n\nthe disclaimer in your footer is wrong.\n\nThe disclaimer: your mails say they are "
    "confidential.",
    "Ciao,\n\nho ricevuto questo messaggio per errore, credo.",
])
def test_customer_sentences_about_confidentiality_stay(text: str) -> None:
    assert split_reply(text).visible == text


@pytest.mark.parametrize("banner", [
    "CAUTION: This email originated from outside of the organization. Do not click links or "
    "open attachments unless you recognize the sender and know the content is safe.",
    "[EXTERNAL] This message comes from an external sender.",
    "ACHTUNG: Diese E-Mail stammt von außerhalb der Organisation. Klicken Sie nicht auf Links.",
    "LET OP: Deze e-mail is afkomstig van buiten de organisatie. Klik niet op koppelingen.",
    "ATTENZIONE: Questa e-mail proviene dall'esterno dell'organizzazione. Non fare clic su "
    "collegamenti.",
    "【注意】このメールは組織外から送信されました。リンクや添付ファイルに注意してください。",
    "You don't often get email from hans@example.de. Learn why this is important"
    "<https://aka.ms/LearnAboutSenderIdentification>",
    "Sie erhalten nicht oft E-Mails von hans@example.de. Erfahren Sie, warum dies wichtig ist"
    "<https://aka.ms/LearnAboutSenderIdentification>",
])
def test_outside_sender_banner_above_the_text_is_not_the_reply(banner: str) -> None:
    # A shared mailbox on Exchange Online prepends the banner to mail from customers.
    parts = split_reply(f"{banner}\n\nThe printer works again.\n\nThanks,\nAnn\n")
    assert parts.visible == "The printer works again.\n\nThanks,\nAnn"
    assert banner in parts.signature


def test_banner_in_html_mail_is_not_the_reply() -> None:
    html = ('<html><body><table><tr><td style="background:#FFEB9C"><b>CAUTION:</b> This email '
            "originated from outside of the organization. Do not click links or open attachments"
            " unless you recognize the sender.</td></tr></table><div>Thanks, fixed.</div>"
            '<div><br></div><hr><div id="divRplyFwdMsg"><b>From:</b> Support '
            "&lt;support@example.com&gt;<br><b>Sent:</b> Monday<br><b>To:</b> Ann<br>"
            "<b>Subject:</b> x</div><div>Hi</div></body></html>")
    assert analyze(_html_mail(html)).reply.visible == "Thanks, fixed."


@pytest.mark.parametrize("text", [
    "Warning: the external drive is not detected.\n\nIt worked yesterday.",
    "Attention: the mail from outside the company bounces.\n\nSee the log.",
    "注意: 外部からのメールが届きません。\n\nよろしくお願いします。",
])
def test_a_first_paragraph_about_outside_mail_is_the_customers(text: str) -> None:
    assert split_reply(text).visible == text


# --- Japanese clients: raw ISO-2022-JP ------------------------------------------------

@pytest.mark.parametrize("content_type", [
    b"", b"Content-Type: text/plain\r\n", b"Content-Type: text/plain; charset=us-ascii\r\n",
    b"Content-Type: text/plain; charset=ISO-2022-JP\r\n",
])
def test_raw_iso_2022_jp_subject_and_body_are_read(content_type: bytes) -> None:
    # Older Japanese mail programs and phones write ISO-2022-JP raw (it is 7-bit) in the
    # Subject, with no RFC 2047 word, and some leave the body's charset out.
    subject = "Re: [#42] 印刷できません".encode("iso-2022-jp")
    body = "了解しました。\r\n\r\n> 山田様\r\n> 再起動してください。\r\n".encode("iso-2022-jp")
    raw = (b"From: yamada@example.jp\r\nTo: support@example.com\r\nSubject: " + subject
           + b"\r\nMessage-ID: <jis-1@example.jp>\r\nMIME-Version: 1.0\r\n" + content_type
           + b"\r\n" + body)
    analysis = analyze(raw)
    assert analysis.parsed.subject == "Re: [#42] 印刷できません"
    assert analysis.reply.visible == "了解しました。"


def test_escape_codes_that_are_not_japanese_stay_as_they_are() -> None:
    raw = (b"From: a@example.com\r\nTo: support@example.com\r\nSubject: colours \x1b[31mred\r\n"
           b"Message-ID: <esc-1@example.com>\r\n\r\nThe log shows \x1b[31mERROR\x1b[0m.\r\n")
    analysis = analyze(raw)
    assert "\x1b[31mred" in analysis.parsed.subject
    assert "\x1b[31mERROR" in analysis.parsed.text


# --- Outlook's marks of inline pictures -----------------------------------------------

def test_outlook_inline_picture_marks_are_not_words() -> None:
    # Outlook's text part: a pasted screenshot and the logo of the signature.
    text = ("Hallo,\n\nsiehe Bildschirmfoto:\n[cid:image002.png@01DAB5C1.2F3E8D00]\n\n"
            "Mit freundlichen Grüßen\nHans Müller\n[cid:image001.png@01DAB5C1.2F3E8D00]\n"
            "Beispiel GmbH\n\nVon: Support <support@example.com>\nGesendet: Montag, 3. Juni "
            "2024 10:15\nAn: Hans Müller <hans@example.de>\nBetreff: AW: [#42] Drucker\n\nq\n")
    assert split_reply(text).visible == (
        "Hallo,\n\nsiehe Bildschirmfoto:\n\nMit freundlichen Grüßen\nHans Müller\nBeispiel GmbH")


def test_a_reply_that_is_only_a_picture_keeps_its_mark() -> None:
    text = ("[cid:image001.png@01DAB5C1.2F3E8D00]\n\nVon: Support <support@example.com>\n"
            "Gesendet: Montag, 3. Juni 2024 10:15\nAn: Hans\nBetreff: x\n\nq\n")
    assert split_reply(text).visible == "[cid:image001.png@01DAB5C1.2F3E8D00]"


# --- headers wrapped at the address, footers that link to aka.ms -----------------------

@pytest.mark.parametrize("header", [
    "3. Juni 2024 um 10:15 schrieb \"Support\" <\nsupport@example.com>:",
    "3 giu 2024, 10:15 Support <\nsupport@example.com> ha scritto:",
    "3 jun. 2024 10:15 schreef \"Support\" <\nsupport@example.com>:",
    "20 окт. 2016 г. 19:37 пользователь \"Support\" <\nsupport@example.com> написал:",
])
def test_a_header_that_starts_with_a_date_and_wraps_at_the_address(header: str) -> None:
    # Gmail's Android app writes "<date> <name> <address> <verb>:" and wraps it at "<".
    text = f"Danke, es geht.\n\n{header}\n\n> Hallo,\n> bitte neu starten.\n"
    assert split_reply(text).visible == "Danke, es geht."


@pytest.mark.parametrize("footer", [
    "Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>",
    "Gesendet von Outlook für Android<https://aka.ms/ghei36>",
    "Inviato da Outlook per Android<https://aka.ms/AAb9ysg>",
])
def test_outlook_app_footers_that_link_to_aka_ms(footer: str) -> None:
    parts = split_reply(f"Ok, danke.\n\n{footer}\n")
    assert (parts.visible, parts.signature) == ("Ok, danke.", footer)


@pytest.mark.parametrize("footer", ["Sendt fra min iPhone", "Skickat från min iPhone"])
def test_nordic_device_footers(footer: str) -> None:
    assert split_reply(f"Takk.\n\n{footer}\n").visible == "Takk."


# --- Japanese full-width quotes, attributions without date or address ----------------

def test_full_width_quote_marks_are_quotes() -> None:
    # Japanese writers and some of their mail programs quote with "＞".
    text = "了解しました。\n\n山田\n\n＞ 山田様\n＞ プリンターを再起動してください。\n"
    parts = split_reply(text)
    assert parts.visible == "了解しました。\n\n山田"
    assert parts.quoted.startswith("＞ 山田様")


@pytest.mark.parametrize("attribution", [
    "Support wrote:", "\"Support, Example\" wrote:", "Kundendienst schrieb:",
    "Klantenservice schreef:", "Assistenza ha scritto:",
    "Quoting Support <support@example.com>:", "Zitat von Support <support@example.com>:",
    "Citando Support:", "Citaat van Support:",
])
def test_attribution_without_date_or_address_above_a_quote(attribution: str) -> None:
    parts = split_reply(f"Ok, danke.\n\n{attribution}\n\n> Hallo\n> bitte neu starten.\n")
    assert parts.visible == "Ok, danke."
    assert parts.quoted.startswith(attribution)


@pytest.mark.parametrize("sentence", ["As you wrote:", "I did what you wrote:",
                                      "Die Meldung lautet:"])
def test_the_senders_own_line_above_a_quote_stays(sentence: str) -> None:
    parts = split_reply(f"{sentence}\n> restart the printer\n\nIt did not help.\n")
    assert parts.visible == f"{sentence}\n\nIt did not help."


def test_disclaimer_search_costs_one_pass_over_a_long_reply() -> None:
    # 2,500 paragraphs (the most the splitter examines): the disclaimer search looks at
    # the last lines only; counting each paragraph's tail again cost 0.3 s of CPU.
    text = "\n\n".join(f"Paragraph {n} with a few words in it." for n in range(2500))
    started = time.thread_time()
    assert split_reply(text).visible == text
    assert time.thread_time() - started < 0.15


@pytest.mark.parametrize("header", [
    "Op ma 3 jun 2024 om 10:15 schreef Support <support@example.com>",
    "Am 03.06.2024 um 10:15 schrieb Support <support@example.com>",
    "Il giorno lun 3 giu 2024 alle ore 10:15 Support <support@example.com> ha scritto",
])
def test_a_dated_header_without_its_colon_above_a_quote(header: str) -> None:
    parts = split_reply(f"Dank, het werkt.\n\n{header}\n\n> Hallo\n> herstart de printer.\n")
    assert parts.visible == "Dank, het werkt."
