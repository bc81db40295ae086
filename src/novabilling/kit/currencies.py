"""The 44 supported currencies (contract README §5, ``GET /api/currencies``).

Pure data. Order is the contract's: African currencies first (the 14 featured ones, then
the rest), then USD, EUR, GBP, CAD, AUD, JPY, CNY, INR, BRL. ``decimals`` is the number of
minor-unit digits used everywhere inside NovaBilling (``kit.money``); it follows the
contract table, which lists TZS with 0 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    symbol: str
    name: str
    decimals: int
    featured: bool


def _c(code: str, symbol: str, name: str, decimals: int, featured: bool = False) -> Currency:
    return Currency(code=code, symbol=symbol, name=name, decimals=decimals, featured=featured)


CURRENCY_LIST: tuple[Currency, ...] = (
    # African, featured
    _c("NGN", "₦", "Nigerian Naira", 2, True),
    _c("KES", "KSh", "Kenyan Shilling", 2, True),
    _c("GHS", "GH₵", "Ghanaian Cedi", 2, True),
    _c("ZAR", "R", "South African Rand", 2, True),
    _c("UGX", "USh", "Ugandan Shilling", 0, True),
    _c("TZS", "TSh", "Tanzanian Shilling", 0, True),
    _c("RWF", "FRw", "Rwandan Franc", 0, True),
    _c("EGP", "E£", "Egyptian Pound", 2, True),
    _c("XOF", "CFA", "West African CFA Franc", 0, True),
    _c("XAF", "FCFA", "Central African CFA Franc", 0, True),
    _c("MAD", "DH", "Moroccan Dirham", 2, True),
    _c("ETB", "Br", "Ethiopian Birr", 2, True),
    _c("DZD", "DA", "Algerian Dinar", 2, True),
    _c("ZMW", "ZK", "Zambian Kwacha", 2, True),
    # African, others
    _c("TND", "DT", "Tunisian Dinar", 3),
    _c("LYD", "LD", "Libyan Dinar", 3),
    _c("GNF", "FG", "Guinean Franc", 0),
    _c("AOA", "Kz", "Angolan Kwanza", 2),
    _c("SDG", "£SD", "Sudanese Pound", 2),
    _c("SOS", "Sh.So.", "Somali Shilling", 2),
    _c("SSP", "SS£", "South Sudanese Pound", 2),
    _c("BWP", "P", "Botswana Pula", 2),
    _c("MWK", "MK", "Malawian Kwacha", 2),
    _c("MUR", "₨", "Mauritian Rupee", 2),
    _c("NAD", "N$", "Namibian Dollar", 2),
    _c("SCR", "SR", "Seychellois Rupee", 2),
    _c("SZL", "E", "Swazi Lilangeni", 2),
    _c("MZN", "MT", "Mozambican Metical", 2),
    _c("LSL", "L", "Lesotho Loti", 2),
    _c("CVE", "Esc", "Cape Verdean Escudo", 2),
    _c("GMD", "D", "Gambian Dalasi", 2),
    _c("LRD", "L$", "Liberian Dollar", 2),
    _c("SLL", "Le", "Sierra Leonean Leone", 2),
    _c("STN", "Db", "São Tomé and Príncipe Dobra", 2),
    _c("MRU", "UM", "Mauritanian Ouguiya", 2),
    # International
    _c("USD", "$", "US Dollar", 2, True),
    _c("EUR", "€", "Euro", 2, True),
    _c("GBP", "£", "British Pound", 2, True),
    _c("CAD", "CA$", "Canadian Dollar", 2),
    _c("AUD", "A$", "Australian Dollar", 2),
    _c("JPY", "¥", "Japanese Yen", 0),
    _c("CNY", "CN¥", "Chinese Yuan", 2),
    _c("INR", "₹", "Indian Rupee", 2),
    _c("BRL", "R$", "Brazilian Real", 2),
)
