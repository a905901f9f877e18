"""Write the example CSV files in examples/data/ (deterministic: same bytes every run).

    python examples/make_data.py

The outputs are committed; rerun this only to change them. Each file exercises
something a real export does: accents and quoted commas (customers.csv), a German ERP
export in Latin-1 with semicolons, decimal commas and CRLF (IxExpKonto.csv), and
quoted newlines and doubled quotes in free text (orders.csv).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
SEED = 20240501

# Word lists read better in rows.
# fmt: off
FIRST = [
    "Anna", "Zoë", "François", "José", "Björn", "Chloé", "Łukasz", "Søren", "Inès", "Jürgen",
    "Noémie", "Ángel", "Mia", "Liam", "Olivia", "Noah", "Emma", "Lucas", "Sofia", "Mateo",
    "Hannah", "Jonas", "Léa", "Matthias", "Elif", "Aarav", "Yuki", "Chen", "Fatima", "Oskar",
    "Renée", "Dmitri", "Åsa", "Eoin", "Siobhán", "Grzegorz", "Zoltán", "Mårten", "Çağla", "Nils",
]
LAST = [
    "Müller", "Schmidt", "Dupont", "García", "Nørgaard", "Lefèvre", "Kowalski", "Rossi",
    "O'Brien", "Smith", "Johnson", "Brown", "Martínez", "Fernández", "Öztürk", "Janssen",
    "Nakamura", "Wang", "Novák", "Horváth", "Lindqvist", "Dubois", "Schröder", "Weiß",
    "Kovačević", "Pérez", "Moreau", "Fischer", "Andersson", "Costa", "Ferreira", "Murphy",
]
SUFFIX = [", Jr.", ", Sr.", ", PhD"]
PLACES = [
    ("Berlin", "Germany"), ("München", "Germany"), ("Köln", "Germany"), ("Zürich", "Switzerland"),
    ("Genève", "Switzerland"), ("Wien", "Austria"), ("Paris", "France"), ("Besançon", "France"),
    ("Madrid", "Spain"), ("A Coruña", "Spain"), ("København", "Denmark"), ("Malmö", "Sweden"),
    ("Kraków", "Poland"), ("Praha", "Czechia"), ("Lisboa", "Portugal"), ("Dublin", "Ireland"),
    ("London", "United Kingdom"), ("New York", "United States"), ("Austin", "United States"),
    ("Washington, D.C.", "United States"), ("Montréal", "Canada"), ("Tokyo", "Japan"),
    ("São Paulo", "Brazil"), ("Saint-Denis, Réunion", "France"), ("Istanbul", "Türkiye"),
]

ACCOUNTS = [
    "Kasse", "Bank Girokonto", "Postbank", "Forderungen aus Lieferungen und Leistungen",
    "Vorsteuer 19 %", "Vorsteuer 7 %", "Umsatzsteuer 19 %", "Umsatzsteuer 7 %",
    "Grundstücke und Bauten", "Geschäftsausstattung", "Büroeinrichtung", "Fuhrpark",
    "Geringwertige Wirtschaftsgüter", "Wareneingang", "Bezugsnebenkosten", "Löhne",
    "Gehälter", "Gesetzliche soziale Aufwendungen", "Miete Büroräume", "Gebäudeversicherung",
    "Heizung", "Strom, Gas, Wasser", "Reinigung", "Straßenreinigungsgebühr",
    "Kfz-Steuer", "Kfz-Versicherungen", "Laufende Kfz-Betriebskosten", "Reisekosten Arbeitnehmer",
    "Bewirtungskosten", "Geschenke abzugsfähig", "Porto", "Telefon", "Bürobedarf",
    "Zeitschriften, Bücher", "Fortbildungskosten", "Rechts- und Beratungskosten",
    "Abschluss- und Prüfungskosten", "Buchführungskosten", "Nebenkosten des Geldverkehrs",
    "Zinsaufwendungen für kurzfristige Verbindlichkeiten", "Zinserträge",
    "Erlöse 19 % USt", "Erlöse 7 % USt", "Erlöse aus Anlagenverkäufen",
    "Abschreibungen auf Sachanlagen", "Rückstellungen für Gewährleistung",
    "Verbindlichkeiten gegenüber Kreditinstituten", "Privatentnahmen allgemein",
    "Gewerbesteuer-Rückstellung", "Sonstige betriebliche Aufwendungen",
]
# fmt: on
CURRENCIES = ["EUR"] * 12 + ["CHF", "USD"]

STATUSES = ["paid"] * 5 + ["shipped"] * 4 + ["pending"] * 2 + ["cancelled", "refunded"]
NOTES = [
    "Leave at the door",
    "Gift wrap, please",
    "Call before delivery",
    'Customer wrote: "urgent, needs it by Friday"',
    'Deliver to the "back office", 2nd floor',
    "Line 1: ring twice\nLine 2: dog is friendly",
    'Invoice to:\nACME GmbH\nz. Hd. "Buchhaltung"',
    "Zustellung nur werktags – danke!",
    "Größe geändert auf L",
    "Paid by bank transfer; reference 2024/118",
]


def _ascii(text: str) -> str:
    """'Zoë Nørgaard' → 'zoenorgaard', for e-mail addresses."""
    text = text.lower().translate(str.maketrans({"ß": "ss", "ø": "o", "ł": "l", "æ": "ae"}))
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded if ch.isalnum())


def customers(rng: random.Random, count: int = 300) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "name", "email", "city", "country", "signup_date"])
    start = dt.date(2021, 1, 1)
    for customer_id in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        if rng.random() < 0.03:
            name += rng.choice(SUFFIX)  # "Anna Smith, Jr.": a comma, so it gets quoted
        domain = rng.choice(["com", "org", "de", "fr"])
        email = f"{_ascii(first)}.{_ascii(last)}{customer_id}@example.{domain}"
        city, country = rng.choice(PLACES)
        signup = start + dt.timedelta(days=rng.randrange(0, 1200))
        writer.writerow([customer_id, name, email, city, country, signup.isoformat()])
    return out.getvalue()


def konten(rng: random.Random) -> str:
    out = io.StringIO()
    # An ERP export as Windows writes it: semicolons, CRLF, decimal commas.
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Kontonr", "Jahr", "Bezeichnung", "Saldo", "Währung"])
    numbers = sorted(rng.sample(range(1000, 9999), len(ACCOUNTS)))
    for number, name in zip(numbers, ACCOUNTS, strict=True):
        currency = rng.choice(CURRENCIES)
        for year in (2021, 2022, 2023, 2024):  # (Kontonr, Jahr) is the key
            cents = rng.randrange(-5_000_000, 25_000_000)
            sign = "-" if cents < 0 else ""
            saldo = f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"
            writer.writerow([number, year, name, saldo, currency])
    return out.getvalue()


def orders(rng: random.Random, count: int = 400, customers: int = 300) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["order_id", "customer_id", "ordered_at", "amount", "status", "note"])
    moment = dt.datetime(2024, 1, 2, 8, 0, 0)
    for order_id in range(1001, 1001 + count):
        moment += dt.timedelta(seconds=rng.randrange(60, 60 * 60 * 8))
        amount = f"{rng.randrange(199, 250_000) / 100:.2f}"
        note = rng.choice(NOTES) if rng.random() < 0.35 else ""  # empty → NULL
        writer.writerow(
            [
                order_id,
                rng.randrange(1, customers + 1),
                moment.isoformat(sep=" "),
                amount,
                rng.choice(STATUSES),
                note,
            ]
        )
    return out.getvalue()


def main() -> None:
    HERE.mkdir(exist_ok=True)
    rng = random.Random(SEED)
    (HERE / "customers.csv").write_bytes(customers(rng).encode("utf-8"))
    (HERE / "IxExpKonto.csv").write_bytes(konten(rng).encode("latin-1"))
    (HERE / "orders.csv").write_bytes(orders(rng).encode("utf-8"))
    for path in sorted(HERE.glob("*.csv")):
        print(f"{path.relative_to(HERE.parent)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
