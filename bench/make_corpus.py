"""A deterministic mixed corpus of support mail for the throughput benchmark (issue 18).

    .venv/bin/python bench/make_corpus.py --n 1000 --seed 42 --out DIR

The issue's generator lives outside the repository (``../shared/bench/make_corpus.py``),
so a checkout cannot count on it; this one is ours and makes what the gateway meets in
real mail, so that one corpus exercises every path the benchmark should time:

- new requests from the people of a generated directory (``DIR/directory.toml``, load it
  with ``gateway directory load``) and from strangers;
- replies: to the customer's own earlier message (In-Reply-To = it), and to our
  acknowledgement (In-Reply-To = an acknowledgement's Message-ID the corpus cannot know,
  References = the customer's first message, as a mail client builds them); some replies
  are sent BEFORE their parent, as mail overtakes mail;
- out-of-office auto-replies and delivery-status bounces (null sender) to our mail;
- plain text and HTML (multipart/alternative), attachments; sizes from 2 KB to 200 KB;
- five languages, those the gateway answers in: English, German, Dutch, Italian, Japanese.

Writes ``DIR/eml/NNNNNN.eml`` (CRLF), ``DIR/manifest.json`` (one entry per message, in
sending order: ``index`` is its creation number, ``parent`` the index of the message it
replies to, ``kind``, ``mail_from``, ``message_id``, ``bytes``, ``expects_ticket``) and
``DIR/directory.toml``. Same ``--n`` and ``--seed``: byte-identical output. Reply tokens
are not in the corpus: they are keyed with the gateway's secret and name ticket numbers
given at run time, so replies thread by their headers here (tokens are tested in tests/).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path

SUPPORT = "support@support.example"
KB = 1024
CLOCK_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

SUBJECTS = {
    "en": ["Cannot log in since the update (account {n})", "Invoice {n} shows the wrong amount",
           "Export button does nothing on report {n}", "Password reset mail never arrives ({n})",
           "Sync stops after a few minutes on workstation {n}"],
    "de": ["Anmeldung seit dem Update nicht möglich (Konto {n})", "Rechnung {n} fehlerhaft",
           "Export bricht bei Bericht {n} ab", "Keine Mail zum Zurücksetzen des Passworts ({n})",
           "Synchronisation hängt auf Arbeitsplatz {n}"],
    "nl": ["Sinds de update kan ik niet meer inloggen (account {n})",
           "Factuur {n} vermeldt het verkeerde bedrag", "Export van rapport {n} doet niets",
           "De mail om mijn wachtwoord te herstellen komt niet aan ({n})",
           "Synchronisatie stopt op werkplek {n}"],
    "it": ["Non riesco ad accedere dopo l'aggiornamento (account {n})",
           "La fattura {n} riporta un importo sbagliato", "L'esportazione del report {n} non parte",
           "Non arriva la mail per reimpostare la password ({n})",
           "La sincronizzazione si blocca sulla postazione {n}"],
    "ja": ["アップデート後にログインできません（アカウント{n}）", "請求書{n}の金額が違います",
           "レポート{n}のエクスポートが動きません", "パスワード再設定のメールが届きません（{n}）",
           "端末{n}で同期が止まります"],
}
SENTENCES = {
    "en": ["Since yesterday's update I cannot log in any more.",
           "The invoice lists {n} seats but we only have {m}.",
           "When I press Export the page freezes for about {m} seconds.",
           "I tried two browsers and cleared the cache, without success.",
           "Three colleagues in our office see the same error.",
           "The log shows a timeout after {m} seconds talking to the server.",
           "Could you please have a look at it today? It blocks our month-end closing."],
    "de": ["Seit dem gestrigen Update kann ich mich nicht mehr anmelden.",
           "Auf der Rechnung stehen {n} Lizenzen, wir haben aber nur {m}.",
           "Beim Klick auf Export friert die Seite für etwa {m} Sekunden ein.",
           "Ich habe zwei Browser probiert und den Cache geleert, ohne Erfolg.",
           "Drei Kolleginnen in unserem Büro sehen denselben Fehler.",
           "Im Protokoll steht nach {m} Sekunden eine Zeitüberschreitung.",
           "Könnten Sie sich das bitte heute noch ansehen? Es blockiert unseren Monatsabschluss."],
    "nl": ["Sinds de update van gisteren kan ik niet meer inloggen.",
           "Op de factuur staan {n} licenties, maar wij hebben er maar {m}.",
           "Als ik op Exporteren klik, bevriest de pagina ongeveer {m} seconden.",
           "Ik heb twee browsers geprobeerd en de cache gewist, zonder resultaat.",
           "Drie collega's op ons kantoor zien dezelfde fout.",
           "Het logboek toont een time-out na {m} seconden.",
           "Kunt u er vandaag nog naar kijken? Het blokkeert onze maandafsluiting."],
    "it": ["Dall'aggiornamento di ieri non riesco più ad accedere.",
           "La fattura riporta {n} licenze ma ne abbiamo solo {m}.",
           "Quando premo Esporta la pagina si blocca per circa {m} secondi.",
           "Ho provato due browser e svuotato la cache, senza successo.",
           "Tre colleghi del nostro ufficio vedono lo stesso errore.",
           "Il log mostra un timeout dopo {m} secondi di comunicazione con il server.",
           "Potreste darci un'occhiata oggi? Blocca la nostra chiusura di fine mese."],
    "ja": ["昨日のアップデート以降、ログインできなくなりました。",
           "請求書には{n}ライセンスと記載されていますが、実際は{m}です。",
           "エクスポートを押すと画面が約{m}秒固まります。",
           "ブラウザを二つ試し、キャッシュも削除しましたが直りません。",
           "同じオフィスの同僚三名も同じエラーが出ています。",
           "ログには{m}秒後にタイムアウトと出ています。",
           "月末の締め処理が止まっているため、本日中にご確認いただけますか。"],
}
GREETING = {"en": "Hello support,", "de": "Guten Tag,", "nl": "Goedendag,", "it": "Buongiorno,",
            "ja": "サポートご担当者様"}
CLOSING = {"en": "Thanks", "de": "Viele Grüße", "nl": "Met vriendelijke groet",
           "it": "Cordiali saluti", "ja": "よろしくお願いいたします。"}
FOLLOW_UP = {"en": "One more detail about my request:",
             "de": "Noch ein Nachtrag zu meiner Anfrage:",
             "nl": "Nog een aanvulling op mijn vraag:",
             "it": "Un dettaglio in più sulla mia richiesta:",
             "ja": "先ほどの件で追加の情報です。"}
OUT_OF_OFFICE = {"en": "I am out of the office until Monday and will read your mail then.",
                 "de": "Ich bin bis Montag nicht im Büro und lese Ihre Nachricht danach.",
                 "nl": "Ik ben tot maandag afwezig en lees uw bericht daarna.",
                 "it": "Sono fuori ufficio fino a lunedì e leggerò il messaggio al rientro.",
                 "ja": "月曜日まで不在にしております。戻り次第確認いたします。"}
OOO_PREFIX = {"en": "Out of office", "de": "Abwesenheitsnotiz", "nl": "Afwezigheidsbericht",
              "it": "Fuori sede", "ja": "不在通知"}
RE = {"en": "Re: ", "de": "AW: ", "nl": "Antw: ", "it": "R: ", "ja": "Re: "}
LANGUAGES = ("en", "de", "nl", "it", "ja")
LANGUAGE_WEIGHTS = (35, 25, 15, 12, 13)
TEAMS = (("acme", "de"), ("globex", "it"), ("initech", "en"), ("umbrella", "nl"),
         ("tyrell", "ja"), ("hooli", "en"))
PEOPLE_PER_TEAM = 8
STRANGERS = 300
ATTACHMENT_TYPES = (("report.pdf", "application", "pdf"), ("screenshot.png", "image", "png"),
                    ("logs.zip", "application", "zip"))
# Mix of kinds (per mille of the messages): new requests, replies, automatic mail.
KIND_WEIGHTS = {"request-person": 300, "request-stranger": 270, "reply-own": 150,
                "reply-ack": 180, "auto-reply": 70, "bounce": 30}
OVERTAKE = 0.10  # share of replies sent just before their parent


@dataclass
class Sender:
    address: str
    name: str
    language: str
    person: bool


@dataclass
class Entry:
    """One message of the manifest (what the benchmark checks the gateway against)."""

    index: int
    kind: str
    language: str
    sender: str
    mail_from: str
    message_id: str
    subject: str
    parent: int | None
    root: int | None
    expects_ticket: bool
    html: bool = False
    attachments: int = 0
    bytes: int = 0
    file: str = ""
    refs: list[str] = field(default_factory=list)


def people() -> list[Sender]:
    return [Sender(f"{first}.{team}{k}@{team}.example", f"{first.title()} {team.title()}", lang,
                   True)
            for team, lang in TEAMS for k, first in enumerate(
                ("anna", "ben", "chiara", "dario", "emi", "felix", "greta", "hiro")[
                    :PEOPLE_PER_TEAM])]


def strangers(rng: random.Random) -> list[Sender]:
    return [Sender(f"customer{k}@client{k % 37}.example", f"Customer {k}",
                   rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0], False) for k in range(STRANGERS)]


def directory_toml(persons: list[Sender]) -> str:
    lines = ['[support]', 'name = "Benchmark Support"', f'address = "{SUPPORT}"',
             'domains = ["support.example"]', '']
    for team, lang in TEAMS:
        lines += ['[[teams]]', f'id = "{team}"', f'name = "{team.title()} Ltd"',
                  'licenses = 50', f'language = "{lang}"', '']
    for person in persons:
        team = person.address.split("@")[1].split(".")[0]
        lines += ['[[people]]', f'email = "{person.address}"', f'name = "{person.name}"',
                  f'team = "{team}"', 'role = "member"', f'language = "{person.language}"', '']
    lines += ['[[agents]]', 'email = "kenji@support.example"', 'name = "Kenji"',
              'departments = ["support"]', '']
    return "\n".join(lines)


def target_size(rng: random.Random) -> int:
    """Mostly small mail, a long tail to 200 KB: 70 % 2-12 KB, 30 % 12-200 KB (log-uniform)."""
    low, high = (2, 12) if rng.random() < 0.7 else (12, 200)
    return int(math.exp(rng.uniform(math.log(low * KB), math.log(high * KB))))


def paragraphs(rng: random.Random, lang: str, count: int) -> list[str]:
    return [rng.choice(SENTENCES[lang]).format(n=rng.randint(10, 99), m=rng.randint(2, 60))
            for _ in range(count)]


def html_of(text: str) -> str:
    from html import escape

    body = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>\n" for p in text.split("\n\n"))
    return f"<html><body style=\"font-family:Arial\">\n{body}</body></html>\n"


class Builder:
    """Makes the messages one by one, remembering conversations for the replies."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.persons = people()
        self.strangers = strangers(self.rng)
        self.clock = CLOCK_START
        self.entries: list[Entry] = []
        self.raws: list[bytes] = []
        self.conversations: list[int] = []  # indexes of requests that opened a conversation

    def message_id(self, index: int, sender: str) -> str:
        return f"<bench.{self.seed}.{index:06d}.{self.rng.getrandbits(32):08x}@" \
               f"{sender.split('@')[1]}>"

    def next_kind(self) -> str:
        kind = self.rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        if kind != "request-person" and kind != "request-stranger" and not self.conversations:
            return "request-person"
        return kind

    def add(self) -> None:
        index = len(self.entries) + 1
        self.clock += timedelta(seconds=self.rng.randint(5, 300))
        kind = self.next_kind()
        message: EmailMessage | bytes
        if kind.startswith("request"):
            entry, message = self.request(index, kind)
        elif kind.startswith("reply"):
            entry, message = self.reply(index, kind)
        elif kind == "auto-reply":
            entry, message = self.auto_reply(index)
        else:
            entry, message = self.bounce(index)  # built as bytes: a report, not a letter
        raw = message if isinstance(message, bytes) else message.as_bytes(policy=SMTP)
        entry.bytes = len(raw)
        entry.file = f"{index:06d}.eml"
        self.entries.append(entry)
        self.raws.append(raw)

    def headers(self, message: EmailMessage, sender: Sender, subject: str, message_id: str) -> None:
        message["From"] = formataddr((sender.name, sender.address))
        message["To"] = f"Support <{SUPPORT}>"
        message["Subject"] = subject
        message["Date"] = format_datetime(self.clock)
        message["Message-ID"] = message_id

    def body(self, message: EmailMessage, entry: Entry, lead: list[str], quote: str = "") -> None:
        """Text (and sometimes HTML) grown towards a drawn size; big mail grows by a file."""
        rng, lang = self.rng, entry.language
        size = target_size(rng)
        text_budget = min(size, 12 * KB)
        parts = [GREETING[lang], *lead]
        while sum(len(p.encode()) for p in parts) < text_budget * 0.6:
            parts.append(" ".join(paragraphs(rng, lang, 3)))
        parts.append(CLOSING[lang])
        text = "\n\n".join(parts) + "\n" + quote
        message.set_content(text, cte="quoted-printable" if lang != "en" else "7bit")
        entry.html = rng.random() < 0.4
        if entry.html:
            message.add_alternative(html_of(text), subtype="html")
        while size - len(message.as_bytes()) > 4 * KB:
            name, maintype, subtype = rng.choice(ATTACHMENT_TYPES)
            payload = rng.randbytes(int((size - len(message.as_bytes())) * 0.74))
            message.add_attachment(payload, maintype=maintype, subtype=subtype,
                                   filename=name)
            entry.attachments += 1
        for k, part in enumerate(message.walk()):
            if part.is_multipart():  # fixed boundaries keep the output reproducible
                part.set_boundary(f"=_bench.{self.seed}.{entry.index}.{k}")

    def request(self, index: int, kind: str) -> tuple[Entry, EmailMessage]:
        pool = self.persons if kind == "request-person" else self.strangers
        sender = self.rng.choice(pool)
        subject = self.rng.choice(SUBJECTS[sender.language]).format(
            n=f"{index}{self.rng.randint(100, 999)}")
        entry = Entry(index, kind, sender.language, sender.address, sender.address,
                      self.message_id(index, sender.address), subject, None, None, True)
        message = EmailMessage()
        self.headers(message, sender, subject, entry.message_id)
        self.body(message, entry, paragraphs(self.rng, sender.language, 2))
        self.conversations.append(index)
        return entry, message

    def conversation(self) -> tuple[Entry, Entry]:
        """A recent conversation's root and its newest message from the customer."""
        root = self.entries[self.rng.choice(self.conversations[-80:]) - 1]
        last = root
        for entry in self.entries[root.index:]:
            if entry.root == root.index and entry.kind.startswith("reply"):
                last = entry
        return root, last

    def reply(self, index: int, kind: str) -> tuple[Entry, EmailMessage]:
        root, last = self.conversation()
        sender = Sender(root.sender, root.sender.split("@")[0].title(), root.language, False)
        subject = RE[root.language] + root.subject
        entry = Entry(index, kind, root.language, sender.address, sender.address,
                      self.message_id(index, sender.address), subject, last.index, root.index,
                      False)
        message = EmailMessage()
        self.headers(message, sender, subject, entry.message_id)
        if kind == "reply-own":  # a follow-up to their own last message
            in_reply_to, refs = last.message_id, [*last.refs, last.message_id]
        else:  # an answer to our acknowledgement, whose Message-ID the corpus cannot know
            ack = f"<ack.{self.seed}.{last.index}@support.example>"
            in_reply_to, refs = ack, [*last.refs, last.message_id, ack]
        entry.refs = refs[-10:]
        message["In-Reply-To"] = in_reply_to
        message["References"] = " ".join(entry.refs)
        quote = "\n" + "\n".join("> " + line for line in
                                 paragraphs(self.rng, root.language, 3)) + "\n"
        self.body(message, entry, [FOLLOW_UP[root.language],
                                   *paragraphs(self.rng, root.language, 1)], quote)
        return entry, message

    def auto_reply(self, index: int) -> tuple[Entry, EmailMessage]:
        root, _last = self.conversation()
        sender = Sender(root.sender, root.sender.split("@")[0].title(), root.language, False)
        ack = f"<ack.{self.seed}.{root.index}@support.example>"
        subject = f"{OOO_PREFIX[root.language]}: {RE[root.language]}{root.subject}"
        entry = Entry(index, "auto-reply", root.language, sender.address, sender.address,
                      self.message_id(index, sender.address), subject, None, root.index, False)
        message = EmailMessage()
        self.headers(message, sender, subject, entry.message_id)
        message["In-Reply-To"] = ack
        message["References"] = f"{root.message_id} {ack}"
        message["Auto-Submitted"] = "auto-replied"
        message["X-Autoreply"] = "yes"
        message.set_content(OUT_OF_OFFICE[root.language] + "\n", cte="quoted-printable")
        return entry, message

    def bounce(self, index: int) -> tuple[Entry, bytes]:
        """A delivery-status report (RFC 3464) for an acknowledgement, from the null sender."""
        root, _last = self.conversation()
        domain = root.sender.split("@")[1]
        daemon = f"MAILER-DAEMON@mx.{domain}"
        ack = f"<ack.{self.seed}.{root.index}@support.example>"
        entry = Entry(index, "bounce", "en", daemon, "", self.message_id(index, daemon),
                      "Undelivered Mail Returned to Sender", None, root.index, False)
        boundary = f"=_bench.{self.seed}.{index}.0"
        raw = (f"From: Mail Delivery System <{daemon}>\r\nTo: {SUPPORT}\r\n"
               f"Subject: {entry.subject}\r\nDate: {format_datetime(self.clock)}\r\n"
               f"Message-ID: {entry.message_id}\r\nAuto-Submitted: auto-replied\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
               f'report-type=delivery-status;\r\n boundary="{boundary}"\r\n\r\n'
               f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
               f"This is the mail system at host mx.{domain}.\r\n\r\nI'm sorry to have to "
               "inform you that your message could not be delivered.\r\n\r\n"
               f"<{root.sender}>: host mx.{domain} said: 550 5.1.1 User unknown\r\n\r\n"
               f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
               f"Reporting-MTA: dns; mx.{domain}\r\n\r\nFinal-Recipient: rfc822; "
               f"{root.sender}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
               f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
               f"From: {SUPPORT}\r\nTo: {root.sender}"
               f"\r\nMessage-ID: {ack}\r\n\r\n--{boundary}--\r\n")
        return entry, raw.encode()


def sending_order(entries: list[Entry], rng: random.Random) -> list[Entry]:
    """Creation order, except that some replies overtake their parent (sent just before it)."""
    order = list(entries)
    for entry in entries:
        if entry.parent is None or rng.random() >= OVERTAKE:
            continue
        order.remove(entry)
        order.insert(order.index(entries[entry.parent - 1]), entry)
    return order


def generate(n: int, seed: int, out: Path) -> list[Entry]:
    builder = Builder(seed)
    for _ in range(n):
        builder.add()
    (out / "eml").mkdir(parents=True, exist_ok=True)
    for entry, raw in zip(builder.entries, builder.raws, strict=True):
        (out / "eml" / entry.file).write_bytes(raw)
    order = sending_order(builder.entries, random.Random(seed + 1))
    (out / "manifest.json").write_text(json.dumps([asdict(e) for e in order], indent=0,
                                                  ensure_ascii=False))
    (out / "directory.toml").write_text(directory_toml(builder.persons))
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    order = generate(args.n, args.seed, args.out)
    kinds: dict[str, int] = {}
    for entry in order:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    sizes = sorted(e.bytes for e in order)
    overtaken = sum(1 for pos, e in enumerate(order) if e.parent is not None and pos < next(
        i for i, p in enumerate(order) if p.index == e.parent))
    print(f"{len(order)} messages to {args.out}: {kinds}; sizes {sizes[0] // KB}-"
          f"{sizes[-1] // KB} KB (median {sizes[len(sizes) // 2] // KB} KB), "
          f"{sum(e.html for e in order)} with HTML, {sum(e.attachments > 0 for e in order)} "
          f"with attachments, {overtaken} replies sent before their parent")


if __name__ == "__main__":
    main()
