"""Deterministic generator of the embedded demo catalogue (``semmatch_tf/data/demo/``).

A build-time tool, not part of the installed package: the wheel ships the files it wrote.

The demo data is MADE UP by this module: shop-style product titles in English, Chinese, Japanese
and Spanish, search queries, and graded (query, product) judgements in the WANDS style
(0 irrelevant, 1 partial, 2 exact). Nothing here comes from a real shop.

How it works, top to bottom:

1. Tables: a lexicon (canonical value -> text in each language), brands, and one :class:`Kind`
   per product type (category, models, attribute variants, title and query templates per language,
   related kinds).
2. Products: for every language and kind, ``counts`` products cycle through the kind's models,
   draw the variant attributes with a seeded RNG and fill one of the title templates.
3. Queries: a fixed list of deliberately ambiguous queries ("apple iphone charger" vs
   "fresh apples", マウス vs ねずみ捕り, ...), then queries made by filling a kind's query template
   from a product of that kind; the template's placeholders become the query's *constraints*.
4. Grades (rule-based, see :func:`grade`): 2 when the product is of a wanted kind and meets every
   constraint; 1 when it is of a wanted kind but misses a constraint, or is of a *related* kind
   (an accessory, a neighbouring product type) compatible with the query's brand/model; else 0.
5. Judged candidates per query (same language only): its exact matches, some partial ones, and
   irrelevant ones chosen four ways: the wrong sense of an ambiguous query (the fruit for "apple
   iphone charger", listed with the fixed queries), hard negatives (most character overlap with
   the query), same-category ones and random ones.

Run ``python tools/demo_build.py`` to rewrite the shipped files (byte-identical when
nothing here changed) or ``--out DIR`` to write elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import string
import unicodedata
from collections import Counter
from pathlib import Path

SEED = "semmatch-demo-v1"
LANGUAGES = ("en", "zh", "ja", "es")
QUERIES_PER_LANGUAGE = {"en": 80, "zh": 40, "ja": 40, "es": 40}
MAX_EXACT, MAX_PARTIAL = 6, 6          # judged grade-2 / grade-1 candidates per query
SENSE_NEGATIVES, HARD_NEGATIVES, CATEGORY_NEGATIVES, RANDOM_NEGATIVES = 3, 3, 2, 3
SPANISH_ACCENTLESS = 0.4               # share of Spanish queries typed without accents
#: Constraint keys that identify *which* thing an accessory belongs to (used for related kinds).
IDENTITY = ("brand", "model", "fits", "fits_model", "make")
GRADE_NAMES = ("irrelevant", "partial", "exact")
FILES = ("products.jsonl", "queries.jsonl", "judgements.jsonl", "README.md")

# --------------------------------------------------------------------------------------------
# Lexicon: canonical value -> (en, zh, ja, es) title text. Queries use the same text, lowercased,
# unless QUERY_WORDS overrides it.
# --------------------------------------------------------------------------------------------

BRANDS = {
    "apple": ("Apple", "Apple/苹果", "Apple", "Apple"),
    "samsung": ("Samsung", "SAMSUNG/三星", "Samsung", "Samsung"),
    "xiaomi": ("Xiaomi", "Xiaomi/小米", "Xiaomi", "Xiaomi"),
    "google": ("Google", "Google/谷歌", "Google", "Google"),
    "sony": ("Sony", "Sony/索尼", "ソニー(SONY)", "Sony"),
    "bose": ("Bose", "Bose/博士", "ボーズ(Bose)", "Bose"),
    "anker": ("Anker", "Anker/安克", "Anker", "Anker"),
    "belkin": ("Belkin", "Belkin/贝尔金", "Belkin", "Belkin"),
    "spigen": ("Spigen", "Spigen", "Spigen", "Spigen"),
    "esr": ("ESR", "ESR/亿色", "ESR", "ESR"),
    "logitech": ("Logitech", "Logitech/罗技", "ロジクール(Logicool)", "Logitech"),
    "razer": ("Razer", "Razer/雷蛇", "Razer", "Razer"),
    "lenovo": ("Lenovo", "Lenovo/联想", "Lenovo", "Lenovo"),
    "asus": ("ASUS", "ASUS/华硕", "ASUS", "ASUS"),
    "nike": ("Nike", "Nike/耐克", "ナイキ(NIKE)", "Nike"),
    "adidas": ("adidas", "adidas/阿迪达斯", "アディダス(adidas)", "adidas"),
    "puma": ("PUMA", "PUMA/彪马", "プーマ(PUMA)", "PUMA"),
    "asics": ("ASICS", "ASICS/亚瑟士", "アシックス(ASICS)", "ASICS"),
    "salomon": ("Salomon", "Salomon/萨洛蒙", "サロモン(SALOMON)", "Salomon"),
    "merrell": ("Merrell", "Merrell/迈乐", "メレル(MERRELL)", "Merrell"),
    "tefal": ("Tefal", "Tefal/特福", "ティファール(T-fal)", "Tefal"),
    "zwilling": ("Zwilling", "Zwilling/双立人", "ツヴィリング(ZWILLING)", "Zwilling"),
    "victorinox": ("Victorinox", "Victorinox/维氏", "ビクトリノックス", "Victorinox"),
    "kai": ("KAI", "KAI/贝印", "貝印(KAI)", "KAI"),
    "philips": ("Philips", "Philips/飞利浦", "フィリップス(PHILIPS)", "Philips"),
    "midea": ("Midea", "Midea/美的", "Midea", "Midea"),
    "oxo": ("OXO", "OXO", "OXO", "OXO"),
    "bosch": ("Bosch", "BOSCH/博世", "ボッシュ(BOSCH)", "Bosch"),
    "makita": ("Makita", "Makita/牧田", "マキタ(Makita)", "Makita"),
    "dewalt": ("DeWalt", "DEWALT/得伟", "デウォルト(DEWALT)", "DeWalt"),
    "stanley": ("Stanley", "STANLEY/史丹利", "スタンレー(STANLEY)", "Stanley"),
    "wera": ("Wera", "Wera/维拉", "Wera", "Wera"),
    "maisto": ("Maisto", "Maisto/美驰图", "マイスト(Maisto)", "Maisto"),
    "bburago": ("Bburago", "Bburago/比美高", "ブラーゴ(Bburago)", "Bburago"),
    "baseus": ("Baseus", "Baseus/倍思", "Baseus", "Baseus"),
    # Made-up shop brands: a different name in each language.
    "fruit_shop": ("Orchard Valley", "鲜果园", "産直マルシェ", "Huerta Fresca"),
    "juice_shop": ("Sunny Grove", "果汁坊", "ふるさと果汁", "Sol de Huerta"),
    "snack_shop": ("Crunchy Orchard", "果干小铺", "ドライフルーツ工房", "Snack Natural"),
    "apparel": ("UrbanThread", "棉语", "ベーシックラボ", "Básico&Co"),
    "plush_shop": ("CuddlePals", "萌趣", "ふわもこ堂", "Peluchitos"),
    "pet_shop": ("PurrPlay", "喵星人", "にゃんこ日和", "Gatuno"),
    "blocks_shop": ("BrickWorks", "积木工坊", "ブロックラボ", "ConstruBloc"),
    "auto_shop": ("AutoFit", "车之友", "カーライフ", "AutoFit"),
    "trap_shop": ("TrapMaster", "灭鼠先锋", "ネズミバスター", "CazaRatón"),
    "candle_shop": ("Glow & Co.", "香薰时光", "アロマの森", "Velas Luna"),
    "lamp_shop": ("Lumina", "明视", "ルミナ", "Lumina"),
    "linen_shop": ("DreamWeave", "棉眠", "ねむりの森", "Sueño Textil"),
    "kitchen_shop": ("HomeChef", "厨之道", "キッチン工房", "CocinaPro"),
    "tool_shop": ("ProTool", "工匠坊", "匠ツール", "HerraPro"),
}
#: Shop brands whose ``brand`` field is the local name; others are written as in English.
LOCAL_BRANDS = ("fruit_shop", "juice_shop", "snack_shop", "apparel", "plush_shop", "pet_shop",
                "blocks_shop", "auto_shop", "trap_shop", "candle_shop", "lamp_shop", "linen_shop",
                "kitchen_shop", "tool_shop")

LEXICON: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "brand": BRANDS,
    "colour": {
        "black": ("Black", "黑色", "ブラック", "negro"), "white": ("White", "白色", "ホワイト", "blanco"),
        "blue": ("Blue", "蓝色", "ブルー", "azul"), "pink": ("Pink", "粉色", "ピンク", "rosa"),
        "green": ("Green", "绿色", "グリーン", "verde"), "red": ("Red", "红色", "レッド", "rojo"),
        "grey": ("Grey", "灰色", "グレー", "gris"), "silver": ("Silver", "银色", "シルバー", "plateado"),
        "beige": ("Beige", "米色", "ベージュ", "beige"), "navy": ("Navy", "藏青色", "ネイビー", "azul marino"),
        "brown": ("Brown", "棕色", "ブラウン", "marrón"), "clear": ("Clear", "透明", "クリア", "transparente"),
    },
    # Spanish feminine colour adjectives (funda negra, camiseta blanca); other languages as colour.
    "colour_f": {
        "black": ("Black", "黑色", "ブラック", "negra"), "white": ("White", "白色", "ホワイト", "blanca"),
        "blue": ("Blue", "蓝色", "ブルー", "azul"), "pink": ("Pink", "粉色", "ピンク", "rosa"),
        "green": ("Green", "绿色", "グリーン", "verde"), "red": ("Red", "红色", "レッド", "roja"),
        "grey": ("Grey", "灰色", "グレー", "gris"), "silver": ("Silver", "银色", "シルバー", "plateada"),
        "beige": ("Beige", "米色", "ベージュ", "beige"), "navy": ("Navy", "藏青色", "ネイビー", "azul marino"),
        "brown": ("Brown", "棕色", "ブラウン", "marrón"), "clear": ("Clear", "透明", "クリア", "transparente"),
    },
    "gender": {"men": ("Men's", "男款", "メンズ", "hombre"), "women": ("Women's", "女款", "レディース", "mujer")},
    "link": {"wireless": ("Wireless", "无线", "ワイヤレス", "inalámbrico"),
             "wired": ("Wired", "有线", "有線", "con cable")},
    "fits": {"apple": ("iPhone", "苹果", "iPhone", "iPhone"), "samsung": ("Galaxy", "三星", "Galaxy", "Samsung Galaxy"),
             "xiaomi": ("Redmi", "红米", "Redmi", "Xiaomi Redmi"), "jaguar": ("Jaguar", "捷豹", "ジャガー", "Jaguar"),
             "bmw": ("BMW", "宝马", "BMW", "BMW"), "toyota": ("Toyota", "丰田", "トヨタ", "Toyota")},
    "make": {"jaguar": ("Jaguar", "捷豹", "ジャガー", "Jaguar"), "porsche": ("Porsche", "保时捷", "ポルシェ", "Porsche"),
             "ferrari": ("Ferrari", "法拉利", "フェラーリ", "Ferrari"), "bmw": ("BMW", "宝马", "BMW", "BMW")},
    "connector": {"lightning": ("USB-C to Lightning", "USB-C转Lightning", "USB-C to Lightning", "USB-C a Lightning"),
                  "usb_c": ("USB-C to USB-C", "双Type-C", "USB-C to USB-C", "USB-C a USB-C")},
    "fruit": {"apple": ("Apples", "苹果", "りんご", "Manzanas"), "banana": ("Bananas", "香蕉", "バナナ", "Plátanos"),
              "orange": ("Oranges", "橙子", "オレンジ", "Naranjas"), "mango": ("Mangoes", "芒果", "マンゴー", "Mangos"),
              "pear": ("Pears", "香梨", "洋梨", "Peras"), "grape": ("Grapes", "葡萄", "ぶどう", "Uvas")},
    "fruit_sg": {"apple": ("Apple", "苹果", "りんご", "manzana"), "banana": ("Banana", "香蕉", "バナナ", "plátano"),
                 "orange": ("Orange", "橙", "オレンジ", "naranja"), "mango": ("Mango", "芒果", "マンゴー", "mango"),
                 "grape": ("Grape", "葡萄", "ぶどう", "uva")},
    "variety": {"fuji": ("Fuji", "红富士", "ふじ", "Fuji"), "gala": ("Gala", "嘎啦", "ガラ", "Gala"),
                "granny_smith": ("Granny Smith", "青", "グラニースミス", "Granny Smith"),
                "honeycrisp": ("Honeycrisp", "蜜脆", "ハニークリスプ", "Honeycrisp")},
    "animal": {"jaguar": ("Jaguar", "美洲豹", "ジャガー", "jaguar"), "puma": ("Puma", "美洲狮", "ピューマ", "puma"),
               "mouse": ("Mouse", "小老鼠", "ねずみ", "ratón"), "bear": ("Teddy Bear", "泰迪熊", "くま", "osito"),
               "panda": ("Panda", "熊猫", "パンダ", "panda"), "dinosaur": ("Dinosaur", "恐龙", "恐竜", "dinosaurio")},
    "material": {"nonstick": ("Non-Stick", "不粘", "フッ素加工", "antiadherente"),
                 "cast_iron": ("Cast Iron", "铸铁", "鉄", "hierro fundido"),
                 "stainless": ("Stainless Steel", "不锈钢", "ステンレス", "acero inoxidable")},
    "kit": {"kit": ("with 2 Batteries and Charger", "双电池套装", "バッテリー2個・充電器付", "con 2 baterías y cargador"),
            "bare": ("Tool Only", "单机不含电池", "本体のみ", "sin batería")},
    "toy": {"catnip": ("Catnip Mouse Toys", "猫薄荷老鼠玩具", "またたび入り ねずみのおもちゃ",
                       "ratones de juguete con hierba gatera"),
            "electric": ("Electric Moving Mouse Toy", "电动老鼠逗猫玩具", "電動ねずみ 猫じゃらし",
                         "ratón eléctrico interactivo")},
    "theme": {"castle": ("Castle", "城堡", "お城", "castillo"), "space": ("Space Station", "空间站", "宇宙ステーション", "estación espacial"),
              "city": ("City Police Station", "城市警察局", "ポリスステーション", "comisaría de policía")},
    "mount": {"vent": ("Air Vent", "出风口", "エアコン吹き出し口", "rejilla de ventilación"),
              "dash": ("Dashboard", "仪表台", "ダッシュボード", "salpicadero")},
    "trap": {"snap": ("Reusable Snap Mouse Traps", "强力老鼠夹 捕鼠器", "ねずみ捕り パチンコ式", "Trampas para ratones de resorte"),
             "humane": ("Humane Live-Catch Mouse Trap", "捕鼠笼 活捉", "ねずみ 捕獲器 生け捕り", "Trampa para ratones sin muerte")},
    "scent": {"apple_cinnamon": ("Apple Cinnamon", "苹果肉桂", "アップルシナモン", "manzana y canela"),
              "green_apple": ("Green Apple", "青苹果", "グリーンアップル", "manzana verde"),
              "vanilla": ("Vanilla", "香草", "バニラ", "vainilla"), "lavender": ("Lavender", "薰衣草", "ラベンダー", "lavanda")},
    "bed": {"single": ("Single", "1.2m床", "シングル", "cama de 90"), "double": ("Double", "1.5m床", "ダブル", "cama de 135"),
            "queen": ("Queen", "1.8m床", "クイーン", "cama de 150")},
}

#: Query wording that differs from the title wording: placeholder -> value -> {language: text}.
QUERY_WORDS: dict[str, dict[str, dict[str, str]]] = {
    "brand": {"apple": {"ja": "アップル"}, "samsung": {"ja": "サムスン"}, "xiaomi": {"ja": "シャオミ"},
              "anker": {"ja": "アンカー"}, "lenovo": {"ja": "レノボ"}, "razer": {"ja": "レイザー"}},
    "connector": {"lightning": {"en": "lightning", "zh": "lightning", "ja": "lightning", "es": "lightning"},
                  "usb_c": {"en": "usb c", "zh": "type-c", "ja": "usb-c", "es": "usb c"}},
    "toy": {"catnip": {"en": "catnip mouse", "zh": "猫薄荷老鼠", "ja": "またたび ねずみ", "es": "raton hierba gatera"},
            "electric": {"en": "electric mouse", "zh": "电动老鼠", "ja": "電動ねずみ", "es": "raton electrico"}},
    "trap": {"snap": {"en": "snap mouse trap", "zh": "老鼠夹", "ja": "ねずみ捕り パチンコ", "es": "trampa ratones resorte"},
             "humane": {"en": "humane mouse trap", "zh": "捕鼠笼", "ja": "ねずみ 捕獲器", "es": "trampa ratones sin muerte"}},
    "kit": {"kit": {"en": "with battery", "zh": "套装", "ja": "バッテリー付", "es": "con bateria"},
            "bare": {"en": "tool only", "zh": "单机", "ja": "本体のみ", "es": "sin bateria"}},
}

#: Placeholders that render another attribute (the constraint is on the attribute).
ATTRIBUTE_OF = {"fruit_sg": "fruit", "colour_f": "colour"}

JA_SHOE_CM = {40: "25.0cm", 41: "26.0cm", 42: "26.5cm", 43: "27.5cm", 44: "28.0cm"}


def _shoe_size(value: int, lang: str) -> str:
    return {"en": f"EU {value}", "zh": f"{value}码", "ja": JA_SHOE_CM[value], "es": f"talla {value}"}[lang]


def _weight(value: str, lang: str) -> str:
    """'2.5kg' / '250g'; Chinese shops sell fruit by the jin (500 g), Spanish puts a space."""
    number, unit = value[:-2] if value.endswith("kg") else value[:-1], "kg" if value.endswith("kg") else "g"
    if lang == "zh" and unit == "kg":
        return f"{float(number) * 2:g}斤"
    if lang == "es":
        return f"{number.replace('.', ',')} {unit}"
    return value


def _count(unit: dict[str, str]):
    return lambda value, lang: unit[lang].format(n=value)


def _spanish_decimal(value: str, lang: str) -> str:
    return value.replace(".", ",") if lang == "es" else value


FORMATTERS = {
    "size": _shoe_size,
    "weight": _weight,
    "capacity": _spanish_decimal,
    "height": lambda value, lang: value.replace("cm", " cm") if lang == "es" else value,
    "pack": _count({"en": "{n}-Pack", "zh": "{n}个装", "ja": "{n}個入り", "es": "pack de {n}"}),
    "sheets": _count({"en": "{n}-Pack", "zh": "{n}片装", "ja": "{n}枚入り", "es": "pack de {n}"}),
}

# --------------------------------------------------------------------------------------------
# Product kinds. ``models`` are cycled in order (put the ones the fixed queries need first);
# ``variants`` are drawn at random; ``counts`` = (products in English, products in each other
# language). A model may carry ``langs`` (sold only there). Query templates: their placeholders
# are the query's constraints.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kind:
    category: str
    label: str
    counts: tuple[int, int]
    models: tuple[dict, ...]
    variants: dict[str, tuple]
    titles: dict[str, tuple[str, ...]]
    queries: dict[str, tuple[str, ...]]
    related: tuple[str, ...] = ()


def M(**tags) -> dict:
    return tags


KINDS: dict[str, Kind] = {
    # ---------------------------------------------------------------- phones & accessories
    "smartphone": Kind(
        "phones", "smartphone", (8, 4),
        (M(brand="apple", model="iPhone 15"), M(brand="samsung", model="Galaxy S24"),
         M(brand="xiaomi", model="Redmi Note 13"), M(brand="apple", model="iPhone 15 Pro"),
         M(brand="apple", model="iPhone 14"), M(brand="samsung", model="Galaxy A55"),
         M(brand="google", model="Pixel 8", langs=("en", "ja", "es")),
         M(brand="sony", model="Xperia 10 V", langs=("ja",))),
        {"storage": ("128GB", "256GB", "512GB"), "colour": ("black", "white", "blue", "pink", "green")},
        {"en": ("{brand} {model} {storage} 5G Smartphone, Unlocked, {colour}",
                "{brand} {model} ({storage}, {colour}) Unlocked Mobile Phone"),
         "zh": ("{brand} {model} {storage} {colour} 5G手机 全网通", "{brand} {model} 5G智能手机 {colour} {storage}"),
         "ja": ("{brand} {model} {storage} {colour} SIMフリー スマートフォン", "【SIMフリー】{brand} {model} {storage} {colour}"),
         "es": ("{brand} {model} {storage} smartphone 5G libre, color {colour}",
                "Teléfono móvil {brand} {model} {storage} libre, {colour}")},
        {"en": ("{brand} {model}", "{model} {storage}", "{brand} phone", "{model} {colour}", "{brand} smartphone {storage}"),
         "zh": ("{brand}手机", "{brand}{model}", "{model} {storage}", "{model} {colour}"),
         "ja": ("{model} simフリー", "{brand} スマホ", "{model} {storage} {colour}"),
         "es": ("movil {brand}", "{model} {storage}", "{brand} {model} libre", "smartphone {brand} {colour}")},
        related=("phone_case", "screen_protector", "phone_charger")),
    "phone_case": Kind(
        "phones", "phone case", (7, 4),
        (M(brand="spigen", fits="apple", fits_model="iPhone 15"), M(brand="esr", fits="samsung", fits_model="Galaxy S24"),
         M(brand="apple", fits="apple", fits_model="iPhone 15"), M(brand="esr", fits="xiaomi", fits_model="Redmi Note 13"),
         M(brand="spigen", fits="apple", fits_model="iPhone 14"), M(brand="esr", fits="apple", fits_model="iPhone 15 Pro"),
         M(brand="spigen", fits="samsung", fits_model="Galaxy A55")),
        {"colour": ("black", "clear", "blue", "pink", "green")},
        {"en": ("{brand} Ultra Hybrid Case for {fits_model}, {colour}",
                "{brand} Silicone Phone Case Compatible with {fits_model} - {colour}"),
         "zh": ("{brand} 适用{fits}{fits_model}手机壳 {colour} 防摔硅胶保护套", "{fits_model}手机壳 {brand} {colour} 全包防摔"),
         "ja": ("{brand} {fits_model} ケース {colour} 耐衝撃 ソフトカバー", "{fits_model} 用 シリコンケース {colour} {brand}"),
         "es": ("Funda {brand} para {fits_model}, silicona antigolpes, color {colour}",
                "Carcasa {fits_model} {brand} {colour_f}, protección total")},
        {"en": ("{fits} case", "{fits_model} case", "{fits_model} case {colour}", "{brand} {fits_model} case"),
         "zh": ("{fits}手机壳", "{fits_model}手机壳", "{fits_model} 保护套 {colour}"),
         "ja": ("{fits_model} ケース", "{fits} ケース {colour}", "{brand} {fits_model} ケース"),
         "es": ("funda {fits_model}", "funda {fits} {colour_f}", "carcasa {fits_model}")},
        related=("screen_protector",)),
    "screen_protector": Kind(
        "phones", "screen protector", (3, 2),
        (M(brand="esr", fits="apple", fits_model="iPhone 15"), M(brand="spigen", fits="samsung", fits_model="Galaxy S24"),
         M(brand="belkin", fits="apple", fits_model="iPhone 14"), M(brand="esr", fits="apple", fits_model="iPhone 15 Pro")),
        {"sheets": (1, 2, 3)},
        {"en": ("{brand} Tempered Glass Screen Protector for {fits_model}, {sheets}",),
         "zh": ("{brand} {fits_model}钢化膜 高清防指纹 {sheets}",),
         "ja": ("{brand} {fits_model} ガラスフィルム 強化ガラス 保護フィルム {sheets}",),
         "es": ("Protector de pantalla {brand} para {fits_model}, cristal templado, {sheets}",)},
        {"en": ("{fits_model} screen protector", "{fits} tempered glass"),
         "zh": ("{fits_model}钢化膜", "{fits}钢化膜"),
         "ja": ("{fits_model} ガラスフィルム", "{fits} 保護フィルム"),
         "es": ("protector pantalla {fits_model}", "cristal templado {fits}")},
        related=("phone_case",)),
    "phone_charger": Kind(
        "phones", "phone charger", (6, 3),
        (M(brand="apple", watts="20W", colour="white"), M(brand="anker", watts="30W"), M(brand="samsung", watts="25W"),
         M(brand="apple", watts="35W", colour="white"), M(brand="xiaomi", watts="67W"), M(brand="belkin", watts="20W")),
        {"colour": ("white", "black")},
        {"en": ("{brand} {watts} USB-C Wall Charger, Fast Charging Power Adapter, {colour}",
                "{brand} {watts} USB-C Charger Plug for Phones ({colour})"),
         "zh": ("{brand} {watts} USB-C快充充电头 {colour} 手机充电器", "{brand} {watts}充电器 PD快充 {colour}"),
         "ja": ("{brand} {watts} USB-C 急速充電器 電源アダプタ {colour}", "{brand} USB PD 充電器 {watts} {colour} コンパクト"),
         "es": ("Cargador {brand} {watts} USB-C de carga rápida, color {colour}",
                "Adaptador de corriente {brand} USB-C {watts} para móvil, {colour}")},
        {"en": ("{brand} charger", "{brand} {watts} charger", "{watts} usb c charger", "fast charger {brand}"),
         "zh": ("{brand}充电器", "{brand} {watts}充电头", "{watts}快充头"),
         "ja": ("{brand} 充電器", "{brand} 充電器 {watts}", "usb-c 充電器 {watts}"),
         "es": ("cargador {brand}", "cargador {brand} {watts}", "cargador usb c {watts}")},
        related=("charging_cable", "laptop_charger")),
    "charging_cable": Kind(
        "phones", "charging cable", (4, 2),
        (M(brand="apple", connector="lightning", colour="white"), M(brand="anker", connector="usb_c"),
         M(brand="apple", connector="usb_c", colour="white"), M(brand="belkin", connector="lightning"),
         M(brand="xiaomi", connector="usb_c"), M(brand="anker", connector="lightning")),
        {"length": ("1m", "2m"), "colour": ("white", "black")},
        {"en": ("{brand} {connector} Cable ({length}) - {colour}", "{brand} {connector} Charging Cable {length}, Braided"),
         "zh": ("{brand} {connector}数据线 {length} {colour} 快充线", "{brand}数据线 {connector} 充电线 {length}"),
         "ja": ("{brand} {connector} ケーブル {length} {colour}", "{brand} 充電ケーブル {connector} {length}"),
         "es": ("Cable {brand} {connector} de {length}, color {colour}", "Cable de carga {connector} {brand} {length}")},
        {"en": ("{connector} cable {length}", "{brand} {connector} cable", "{connector} charging cable"),
         "zh": ("{connector}数据线", "{brand}数据线", "{connector}数据线 {length}"),
         "ja": ("{connector} ケーブル {length}", "{brand} ケーブル"),
         "es": ("cable {connector}", "cable {connector} {length}", "cable {brand}")},
        related=("phone_charger",)),
    "earbuds": Kind(
        "phones", "wireless earbuds", (5, 3),
        (M(brand="apple", model="AirPods Pro 2", colour="white"), M(brand="sony", model="WF-1000XM5"),
         M(brand="samsung", model="Galaxy Buds3 Pro"), M(brand="apple", model="AirPods 4", colour="white"),
         M(brand="xiaomi", model="Redmi Buds 5")),
        {"colour": ("black", "white", "silver")},
        {"en": ("{brand} {model} Wireless Earbuds with Noise Cancellation, {colour}",
                "{brand} {model} True Wireless Bluetooth Earbuds - {colour}"),
         "zh": ("{brand} {model} 真无线蓝牙耳机 主动降噪 {colour}",),
         "ja": ("{brand} {model} ワイヤレスイヤホン ノイズキャンセリング {colour}",),
         "es": ("Auriculares inalámbricos {brand} {model} con cancelación de ruido, {colour}",)},
        {"en": ("{model}", "{brand} earbuds", "wireless earbuds {colour}", "noise cancelling earbuds"),
         "zh": ("{model}", "{brand}蓝牙耳机", "降噪耳机 {colour}"),
         "ja": ("{model}", "{brand} イヤホン", "ワイヤレスイヤホン {colour}"),
         "es": ("{model}", "auriculares {brand}", "auriculares inalámbricos {colour}")},
        related=("headphones",)),
    # ---------------------------------------------------------------- electronics
    "headphones": Kind(
        "electronics", "over-ear headphones", (4, 2),
        (M(brand="sony", model="WH-1000XM5"), M(brand="bose", model="QuietComfort Ultra"),
         M(brand="apple", model="AirPods Max"), M(brand="sony", model="WH-CH720N")),
        {"colour": ("black", "silver", "blue")},
        {"en": ("{brand} {model} Wireless Noise Cancelling Over-Ear Headphones, {colour}",),
         "zh": ("{brand} {model} 头戴式无线降噪耳机 {colour}",),
         "ja": ("{brand} {model} ワイヤレス ノイズキャンセリング ヘッドホン {colour}",),
         "es": ("Auriculares de diadema {brand} {model} inalámbricos, {colour}",)},
        {"en": ("{model}", "{brand} headphones", "over ear headphones {colour}"),
         "zh": ("{brand}头戴式耳机", "{model}"),
         "ja": ("{brand} ヘッドホン", "ヘッドホン {colour}"),
         "es": ("cascos {brand}", "auriculares diadema {colour}")},
        related=("earbuds",)),
    "laptop": Kind(
        "electronics", "laptop", (4, 2),
        (M(brand="apple", model="MacBook Air 13 M3"), M(brand="lenovo", model="ThinkPad X1 Carbon"),
         M(brand="asus", model="Zenbook 14"), M(brand="apple", model="MacBook Pro 14 M3"),
         M(brand="lenovo", model="IdeaPad Slim 5")),
        {"ssd": ("256GB SSD", "512GB SSD", "1TB SSD"), "colour": ("silver", "grey")},
        {"en": ("{brand} {model} Laptop, 16GB RAM, {ssd}, {colour}", "{brand} {model} 14-inch Notebook ({ssd}, {colour})"),
         "zh": ("{brand} {model} 笔记本电脑 16G {ssd} {colour}",),
         "ja": ("{brand} {model} ノートパソコン メモリ16GB {ssd} {colour}",),
         "es": ("Portátil {brand} {model} 16 GB RAM, {ssd}, {colour}",)},
        {"en": ("{model}", "{brand} laptop", "{model} {ssd}"),
         "zh": ("{brand}笔记本", "{model}"),
         "ja": ("{brand} ノートパソコン", "{model} {ssd}"),
         "es": ("portátil {brand}", "{model}")},
        related=("laptop_charger",)),
    "laptop_charger": Kind(
        "electronics", "laptop charger", (3, 2),
        (M(brand="apple", watts="70W", colour="white"), M(brand="lenovo", watts="65W", colour="black"),
         M(brand="anker", watts="100W", colour="black"), M(brand="apple", watts="140W", colour="white")),
        {},
        {"en": ("{brand} {watts} USB-C Laptop Charger, Power Adapter for Notebooks, {colour}",),
         "zh": ("{brand} {watts} 笔记本电脑充电器 USB-C电源适配器 {colour}",),
         "ja": ("{brand} {watts} USB-C 電源アダプタ ノートPC用 充電器 {colour}",),
         "es": ("Cargador de portátil {brand} {watts} USB-C, adaptador de corriente, {colour}",)},
        {"en": ("{brand} laptop charger", "{watts} laptop charger", "{brand} {watts} power adapter"),
         "zh": ("{brand}笔记本充电器", "{watts}笔记本充电器"),
         "ja": ("{brand} 電源アダプタ {watts}", "ノートpc 充電器 {watts}"),
         "es": ("cargador portátil {brand}", "cargador portátil {watts}")},
        related=("phone_charger",)),
    "computer_mouse": Kind(
        "electronics", "computer mouse", (5, 3),
        (M(brand="logitech", model="MX Master 3S", link="wireless"), M(brand="razer", model="DeathAdder V3", link="wired"),
         M(brand="apple", model="Magic Mouse", link="wireless", colour="white"),
         M(brand="logitech", model="M185", link="wireless"), M(brand="logitech", model="G502 X", link="wired")),
        {"colour": ("black", "grey", "white")},
        {"en": ("{brand} {model} {link} Mouse, {colour}", "{brand} {model} {link} Optical Computer Mouse for PC/Mac - {colour}"),
         "zh": ("{brand} {model} {link}鼠标 办公游戏 {colour}",),
         "ja": ("{brand} {model} {link}マウス {colour}",),
         "es": ("Ratón {link} {brand} {model}, color {colour}",)},
        {"en": ("{link} mouse", "{brand} mouse", "{model}", "{link} mouse {colour}"),
         "zh": ("{link}鼠标", "{brand}鼠标", "{brand}{link}鼠标"),
         "ja": ("{link}マウス", "{brand} マウス", "{model}"),
         "es": ("ratón {link}", "ratón {brand}", "ratón {link} {colour}")}),
    "keyboard": Kind(
        "electronics", "keyboard", (3, 2),
        (M(brand="logitech", model="MX Keys S", link="wireless"), M(brand="apple", model="Magic Keyboard", link="wireless", colour="white"),
         M(brand="razer", model="BlackWidow V4", link="wired"), M(brand="logitech", model="K380", link="wireless")),
        {"colour": ("black", "white", "grey")},
        {"en": ("{brand} {model} {link} Keyboard, {colour}",),
         "zh": ("{brand} {model} {link}键盘 {colour}",),
         "ja": ("{brand} {model} {link}キーボード {colour}",),
         "es": ("Teclado {link} {brand} {model}, {colour}",)},
        {"en": ("{link} keyboard", "{brand} keyboard"),
         "zh": ("{brand}键盘", "{link}键盘"),
         "ja": ("{brand} キーボード", "{link}キーボード"),
         "es": ("teclado {brand}", "teclado {link}")}),
    # ---------------------------------------------------------------- fruit & groceries
    "apples": Kind(
        "groceries", "fresh apples (the fruit)", (6, 3),
        (M(brand="fruit_shop", variety="fuji"), M(brand="fruit_shop", variety="gala"),
         M(brand="fruit_shop", variety="granny_smith"), M(brand="fruit_shop", variety="honeycrisp")),
        {"weight": ("1kg", "2kg", "2.5kg")},
        {"en": ("Fresh {variety} Apples, {weight} Bag", "{brand} {variety} Apples {weight} - Crisp and Sweet"),
         "zh": ("烟台{variety}苹果 {weight}装 新鲜水果 脆甜", "{brand} 新鲜{variety}苹果 {weight} 当季水果"),
         "ja": ("青森県産 {variety} りんご {weight} 家庭用", "{brand} 産地直送 {variety} りんご {weight}"),
         "es": ("Manzanas {variety} frescas, bolsa de {weight}", "{brand} manzana {variety} {weight}, origen Lleida")},
        {"en": ("fresh apples", "{variety} apples", "{variety} apples {weight}", "apples {weight}"),
         "zh": ("新鲜苹果", "{variety}苹果", "苹果 {weight}"),
         "ja": ("りんご 産地直送", "{variety} りんご", "りんご {weight}"),
         "es": ("manzanas frescas", "manzanas {variety}", "manzanas {weight}")},
        related=("fresh_fruit",)),
    "fresh_fruit": Kind(
        "groceries", "fresh fruit (not apples)", (4, 2),
        (M(brand="fruit_shop", fruit="banana"), M(brand="fruit_shop", fruit="orange"), M(brand="fruit_shop", fruit="mango"),
         M(brand="fruit_shop", fruit="pear"), M(brand="fruit_shop", fruit="grape")),
        {"weight": ("1kg", "2kg")},
        {"en": ("Fresh {fruit}, {weight}", "{brand} {fruit} {weight} Pack"),
         "zh": ("新鲜{fruit} {weight}装 当季水果",),
         "ja": ("{brand} {fruit} {weight} 産地直送",),
         "es": ("{fruit} {weight}, fruta fresca de temporada",)},
        {"en": ("fresh {fruit}", "{fruit} {weight}"),
         "zh": ("新鲜{fruit}", "{fruit} {weight}"),
         "ja": ("{fruit} {weight}", "{fruit} 産地直送"),
         "es": ("{fruit} {weight}", "{fruit}")},
        related=("apples",)),
    "juice": Kind(
        "groceries", "fruit juice", (4, 2),
        (M(brand="juice_shop", fruit="apple"), M(brand="juice_shop", fruit="orange"), M(brand="juice_shop", fruit="grape")),
        {"volume": ("1L", "330ml x 12")},
        {"en": ("{brand} 100% {fruit_sg} Juice, {volume}", "{brand} Pressed {fruit_sg} Juice, Not From Concentrate, {volume}"),
         "zh": ("{brand} 100%{fruit_sg}汁 {volume} 无添加",),
         "ja": ("{brand} {fruit_sg}ジュース 果汁100% {volume}",),
         "es": ("Zumo de {fruit_sg} 100% {brand}, {volume}",)},
        {"en": ("{fruit_sg} juice", "{fruit_sg} juice {volume}"),
         "zh": ("{fruit_sg}汁", "{fruit_sg}汁 {volume}"),
         "ja": ("{fruit_sg}ジュース", "{fruit_sg}ジュース {volume}"),
         "es": ("zumo de {fruit_sg}", "zumo {fruit_sg} {volume}")}),
    "dried_fruit": Kind(
        "groceries", "dried fruit chips", (3, 2),
        (M(brand="snack_shop", fruit="apple"), M(brand="snack_shop", fruit="mango"), M(brand="snack_shop", fruit="banana")),
        {"weight": ("100g", "250g")},
        {"en": ("{brand} Dried {fruit_sg} Chips, {weight}, No Added Sugar",),
         "zh": ("{brand} {fruit_sg}干 {weight} 休闲零食 无添加",),
         "ja": ("{brand} ドライ{fruit_sg} チップス {weight} 無添加",),
         "es": ("Chips de {fruit_sg} {brand}, fruta deshidratada, {weight}",)},
        {"en": ("dried {fruit_sg} chips", "{fruit_sg} chips"),
         "zh": ("{fruit_sg}干", "{fruit_sg}干 零食"),
         "ja": ("ドライ{fruit_sg}", "{fruit_sg} チップス"),
         "es": ("chips de {fruit_sg}", "{fruit_sg} deshidratada")}),
    # ---------------------------------------------------------------- shoes & clothing
    "running_shoes": Kind(
        "clothing", "running shoes", (7, 3),
        (M(brand="nike", model="Air Zoom Pegasus 41"), M(brand="puma", model="Velocity Nitro 3"),
         M(brand="adidas", model="Ultraboost Light"), M(brand="asics", model="Gel-Nimbus 26"),
         M(brand="nike", model="Revolution 7"), M(brand="puma", model="Deviate Nitro 3"), M(brand="adidas", model="Duramo SL")),
        {"colour": ("black", "white", "blue", "red", "grey"), "size": (40, 41, 42, 43, 44), "gender": ("men", "women")},
        {"en": ("{brand} {gender} {model} Running Shoes, {colour}, {size}", "{brand} {model} {gender} Road Running Trainers - {colour} ({size})"),
         "zh": ("{brand} {model} {gender}跑步鞋 {colour} 缓震透气运动鞋 {size}",),
         "ja": ("[{brand}] ランニングシューズ {model} {gender} {colour} {size}",),
         "es": ("Zapatillas de running {brand} {model} para {gender}, color {colour}, {size}",)},
        {"en": ("{brand} running shoes", "{gender} running shoes {size}", "{model}", "{brand} {model} {colour}"),
         "zh": ("{brand}跑鞋", "{gender}跑步鞋 {size}", "{model}"),
         "ja": ("{brand} ランニングシューズ", "ランニングシューズ {gender} {size}", "{model} {colour}"),
         "es": ("zapatillas running {brand}", "zapatillas running {gender} {size}", "{model}")},
        related=("hiking_boots",)),
    "hiking_boots": Kind(
        "clothing", "hiking boots", (3, 2),
        (M(brand="salomon", model="X Ultra 4 Mid GTX"), M(brand="merrell", model="Moab 3 Mid")),
        {"colour": ("brown", "black", "grey"), "size": (40, 41, 42, 43, 44), "gender": ("men", "women")},
        {"en": ("{brand} {model} {gender} Waterproof Hiking Boots, {colour}, {size}",),
         "zh": ("{brand} {model} {gender}防水登山鞋 徒步鞋 {colour} {size}",),
         "ja": ("{brand} {model} 登山靴 防水 トレッキングシューズ {gender} {colour} {size}",),
         "es": ("Botas de montaña {brand} {model} impermeables para {gender}, {colour}, {size}",)},
        {"en": ("hiking boots {size}", "{brand} hiking boots", "waterproof hiking boots"),
         "zh": ("登山鞋 {gender}", "{brand}登山鞋"),
         "ja": ("登山靴 {gender} {size}", "{brand} トレッキングシューズ"),
         "es": ("botas montaña {gender}", "botas {brand}")},
        related=("running_shoes",)),
    "t_shirt": Kind(
        "clothing", "t-shirt", (4, 2),
        (M(brand="apparel"), M(brand="nike"), M(brand="adidas"), M(brand="puma")),
        {"colour": ("black", "white", "navy", "grey", "red"), "csize": ("S", "M", "L", "XL"), "gender": ("men", "women")},
        {"en": ("{brand} {gender} Cotton Crew Neck T-Shirt, {colour}, Size {csize}",),
         "zh": ("{brand} {gender}纯棉短袖T恤 圆领 {colour} {csize}码",),
         "ja": ("{brand} Tシャツ 半袖 綿100% {gender} {colour} {csize}サイズ",),
         "es": ("Camiseta {brand} de manga corta para {gender}, algodón, {colour_f}, talla {csize}",)},
        {"en": ("{colour} t-shirt {csize}", "{brand} t shirt", "{gender} t-shirt {colour}"),
         "zh": ("{colour}t恤 {gender}", "{brand}短袖"),
         "ja": ("tシャツ {gender} {colour}", "{brand} tシャツ"),
         "es": ("camiseta {colour_f} talla {csize}", "camiseta {brand}")},
        related=("hoodie",)),
    "hoodie": Kind(
        "clothing", "hoodie", (3, 2),
        (M(brand="apparel"), M(brand="nike"), M(brand="adidas")),
        {"colour": ("black", "grey", "navy", "beige"), "csize": ("S", "M", "L", "XL"), "gender": ("men", "women")},
        {"en": ("{brand} {gender} Fleece Pullover Hoodie, {colour}, Size {csize}",),
         "zh": ("{brand} {gender}连帽卫衣 加绒 {colour} {csize}码",),
         "ja": ("{brand} パーカー 裏起毛 {gender} {colour} {csize}サイズ",),
         "es": ("Sudadera con capucha {brand} para {gender}, {colour_f}, talla {csize}",)},
        {"en": ("{brand} hoodie", "{colour} hoodie {csize}"),
         "zh": ("{brand}卫衣", "{colour}卫衣"),
         "ja": ("パーカー {gender} {colour}", "{brand} パーカー"),
         "es": ("sudadera {brand}", "sudadera capucha {colour_f}")},
        related=("t_shirt",)),
    # ---------------------------------------------------------------- kitchen
    "frying_pan": Kind(
        "kitchen", "frying pan", (4, 2),
        (M(brand="tefal", material="nonstick"), M(brand="kitchen_shop", material="cast_iron"), M(brand="zwilling", material="stainless")),
        {"cm": (20, 24, 28)},
        {"en": ("{brand} {material} Frying Pan {cm} cm, Induction Compatible",),
         "zh": ("{brand} {material}煎锅 {cm}cm 平底锅 电磁炉通用",),
         "ja": ("{brand} フライパン {cm}cm {material} IH対応",),
         "es": ("Sartén {material} {brand} de {cm} cm, apta para inducción",)},
        {"en": ("{material} frying pan {cm}cm", "{brand} frying pan", "frying pan {cm} cm"),
         "zh": ("{material}平底锅", "{brand}平底锅 {cm}cm"),
         "ja": ("フライパン {cm}cm", "{brand} フライパン"),
         "es": ("sartén {cm} cm", "sartén {material}")}),
    "chef_knife": Kind(
        "kitchen", "chef's knife", (3, 2),
        (M(brand="zwilling", model="Pro"), M(brand="kai", model="Seki Magoroku"), M(brand="victorinox", model="Swiss Classic")),
        {"blade": (16, 20)},
        {"en": ("{brand} {model} Chef's Knife {blade} cm, Stainless Steel",),
         "zh": ("{brand} {model} 不锈钢厨师刀 {blade}cm 菜刀",),
         "ja": ("{brand} {model} 牛刀 {blade}cm ステンレス",),
         "es": ("Cuchillo de chef {brand} {model} de {blade} cm, acero inoxidable",)},
        {"en": ("chef knife {blade}cm", "{brand} chef knife"),
         "zh": ("{brand}菜刀", "厨师刀 {blade}cm"),
         "ja": ("{brand} 牛刀", "牛刀 {blade}cm"),
         "es": ("cuchillo chef {brand}", "cuchillo cocina {blade} cm")}),
    "electric_kettle": Kind(
        "kitchen", "electric kettle", (3, 2),
        (M(brand="philips", model="Series 5000"), M(brand="tefal", model="Express"), M(brand="midea", model="MK-HJ1705")),
        {"capacity": ("1.0L", "1.7L"), "colour": ("white", "black", "silver")},
        {"en": ("{brand} {model} Electric Kettle {capacity}, {colour}",),
         "zh": ("{brand} {model} 电热水壶 {capacity} 304不锈钢 {colour}",),
         "ja": ("{brand} 電気ケトル {model} {capacity} {colour}",),
         "es": ("Hervidor de agua eléctrico {brand} {model} {capacity}, {colour}",)},
        {"en": ("electric kettle {capacity}", "{brand} kettle"),
         "zh": ("{brand}电热水壶", "电热水壶 {capacity}"),
         "ja": ("電気ケトル {capacity}", "{brand} ケトル"),
         "es": ("hervidor agua {brand}", "hervidor eléctrico {capacity}")}),
    "apple_corer": Kind(
        "kitchen", "apple corer and slicer (kitchen tool)", (2, 1),
        (M(brand="oxo"), M(brand="kitchen_shop")),
        {"colour": ("green", "red", "white")},
        {"en": ("{brand} Apple Corer and Slicer, Stainless Steel, {colour}",),
         "zh": ("{brand} 苹果切片器 去核器 不锈钢 {colour}",),
         "ja": ("{brand} りんごカッター 芯抜き 8等分 {colour}",),
         "es": ("Descorazonador y cortador de manzanas {brand}, acero inoxidable, {colour}",)},
        {"en": ("apple slicer", "apple corer"), "zh": ("苹果切片器",), "ja": ("りんごカッター",),
         "es": ("cortador de manzanas",)}),
    # ---------------------------------------------------------------- tools & hardware
    "cordless_drill": Kind(
        "tools", "cordless drill", (4, 2),
        (M(brand="bosch", model="GSR 18V-55", voltage="18V"), M(brand="makita", model="DF488D", voltage="18V"),
         M(brand="dewalt", model="DCD778", voltage="18V"), M(brand="bosch", model="GSR 12V-15", voltage="12V")),
        {"kit": ("kit", "bare")},
        {"en": ("{brand} {model} {voltage} Cordless Drill Driver, {kit}",),
         "zh": ("{brand} {model} {voltage}锂电充电手电钻 {kit}",),
         "ja": ("{brand} 充電式ドライバドリル {model} {voltage} {kit}",),
         "es": ("Taladro atornillador a batería {brand} {model} {voltage}, {kit}",)},
        {"en": ("{brand} cordless drill", "{voltage} drill", "{brand} drill {kit}"),
         "zh": ("{brand}电钻", "{voltage}手电钻"),
         "ja": ("{brand} ドリル", "充電式ドリル {voltage}"),
         "es": ("taladro {brand}", "taladro {voltage} {kit}")},
        related=("drill_bits",)),
    "drill_bits": Kind(
        "tools", "drill bit set", (2, 1),
        (M(brand="bosch", pieces=19), M(brand="makita", pieces=35)),
        {},
        {"en": ("{brand} {pieces}-Piece HSS Drill Bit Set for Metal and Wood",),
         "zh": ("{brand} 麻花钻头套装 {pieces}件 高速钢",),
         "ja": ("{brand} 鉄工用 ドリルビットセット {pieces}本組",),
         "es": ("Juego de brocas {brand} {pieces} piezas HSS metal y madera",)},
        {"en": ("drill bit set", "{brand} drill bits"), "zh": ("钻头套装",), "ja": ("ドリルビット セット",),
         "es": ("juego de brocas",)},
        related=("cordless_drill",)),
    "screwdriver_set": Kind(
        "tools", "screwdriver set", (3, 2),
        (M(brand="stanley", pieces=6), M(brand="wera", pieces=12), M(brand="xiaomi", pieces=24)),
        {},
        {"en": ("{brand} Precision Screwdriver Set, {pieces} Pieces",),
         "zh": ("{brand} 螺丝刀套装 {pieces}件 精密维修工具",),
         "ja": ("{brand} ドライバーセット {pieces}本組 精密",),
         "es": ("Juego de destornilladores {brand}, {pieces} piezas",)},
        {"en": ("screwdriver set", "{brand} screwdriver set"), "zh": ("螺丝刀套装", "{brand}螺丝刀"),
         "ja": ("ドライバーセット", "{brand} ドライバー"), "es": ("juego destornilladores", "destornilladores {brand}")}),
    "tape_measure": Kind(
        "tools", "tape measure", (2, 1),
        (M(brand="stanley"), M(brand="tool_shop")),
        {"tlength": ("5m", "8m")},
        {"en": ("{brand} Tape Measure {tlength}, Auto Lock",),
         "zh": ("{brand} 钢卷尺 {tlength} 自锁",),
         "ja": ("{brand} コンベックス メジャー {tlength}",),
         "es": ("Flexómetro {brand} de {tlength} con freno",)},
        {"en": ("tape measure {tlength}",), "zh": ("卷尺 {tlength}",), "ja": ("メジャー {tlength}",),
         "es": ("flexómetro {tlength}",)}),
    # ---------------------------------------------------------------- toys
    "plush_toy": Kind(
        "toys", "plush toy", (7, 4),
        (M(brand="plush_shop", animal="jaguar"), M(brand="plush_shop", animal="puma"), M(brand="plush_shop", animal="mouse"),
         M(brand="plush_shop", animal="bear"), M(brand="plush_shop", animal="panda"), M(brand="plush_shop", animal="dinosaur")),
        {"height": ("20cm", "30cm", "50cm")},
        {"en": ("{brand} {animal} Plush Toy {height}, Soft Stuffed Animal",),
         "zh": ("{brand} {animal}毛绒玩具 {height} 公仔玩偶 儿童礼物",),
         "ja": ("{brand} ぬいぐるみ {animal} {height} ふわふわ",),
         "es": ("{brand} Peluche de {animal} {height}, muñeco suave",)},
        {"en": ("{animal} plush toy", "{animal} stuffed animal", "soft toy {animal} {height}"),
         "zh": ("{animal}毛绒玩具", "{animal}公仔"),
         "ja": ("{animal} ぬいぐるみ", "ぬいぐるみ {animal} {height}"),
         "es": ("peluche {animal}", "peluche {animal} {height}")}),
    "cat_toy": Kind(
        "toys", "cat toy", (3, 2),
        (M(brand="pet_shop", toy="catnip"), M(brand="pet_shop", toy="electric")),
        {"pack": (3, 6)},
        {"en": ("{brand} {toy} for Cats, {pack}",),
         "zh": ("{brand} 猫玩具 {toy} {pack}",),
         "ja": ("{brand} 猫 おもちゃ {toy} {pack}",),
         "es": ("Juguete para gatos {brand}: {toy}, {pack}",)},
        {"en": ("cat toy mouse", "{toy} for cats"), "zh": ("逗猫玩具 老鼠", "{toy}"),
         "ja": ("猫 おもちゃ ねずみ", "{toy}"), "es": ("juguete gato ratón", "{toy}")}),
    "diecast_car": Kind(
        "toys", "die-cast model car", (4, 2),
        (M(brand="maisto", make="jaguar", model="F-Type"), M(brand="bburago", make="porsche", model="911 GT3"),
         M(brand="bburago", make="ferrari", model="SF90"), M(brand="maisto", make="bmw", model="M4")),
        {"scale": ("1:24", "1:18"), "colour": ("red", "black", "blue", "silver")},
        {"en": ("{brand} {scale} {make} {model} Die-Cast Model Car, {colour}",),
         "zh": ("{brand} {scale} {make}{model} 合金车模 仿真汽车模型 {colour}",),
         "ja": ("{brand} {scale} {make} {model} ダイキャスト ミニカー {colour}",),
         "es": ("Coche a escala {scale} {make} {model} de metal {brand}, {colour}",)},
        {"en": ("{make} model car", "diecast car {scale}", "{make} {model} diecast"),
         "zh": ("{make}车模", "合金车模 {scale}"),
         "ja": ("{make} ミニカー", "ミニカー {scale}"),
         "es": ("coche escala {make}", "maqueta {make} {scale}")}),
    "building_blocks": Kind(
        "toys", "building blocks", (3, 2),
        (M(brand="blocks_shop", theme="castle"), M(brand="blocks_shop", theme="space"), M(brand="blocks_shop", theme="city")),
        {"pieces": (500, 1000)},
        {"en": ("{brand} {theme} Building Blocks Set, {pieces} Pieces, Ages 8+",),
         "zh": ("{brand} {theme} 拼装积木 {pieces}颗粒 益智玩具",),
         "ja": ("{brand} ブロック {theme} {pieces}ピース 知育玩具",),
         "es": ("Juego de construcción {brand} {theme}, {pieces} piezas, +8 años",)},
        {"en": ("{theme} building blocks", "building blocks {pieces} pieces"), "zh": ("{theme}积木", "积木 {pieces}颗粒"),
         "ja": ("ブロック {theme}",), "es": ("bloques construcción {theme}",)}),
    # ---------------------------------------------------------------- automotive
    "car_floor_mats": Kind(
        "automotive", "car floor mats", (4, 2),
        (M(brand="auto_shop", fits="jaguar", fits_model="XF"), M(brand="auto_shop", fits="bmw", fits_model="X3"),
         M(brand="auto_shop", fits="toyota", fits_model="RAV4"), M(brand="auto_shop", fits="jaguar", fits_model="F-Pace")),
        {"colour": ("black", "beige", "grey")},
        {"en": ("{brand} Car Floor Mats for {fits} {fits_model}, All-Weather Rubber, {colour}",),
         "zh": ("{brand} 汽车脚垫 适用{fits}{fits_model} 全包围 {colour}",),
         "ja": ("{brand} フロアマット {fits} {fits_model} 専用 {colour}",),
         "es": ("Alfombrillas de coche {brand} para {fits} {fits_model}, goma, {colour}",)},
        {"en": ("{fits} floor mats", "{fits} {fits_model} car mats"), "zh": ("{fits}脚垫", "{fits}{fits_model}脚垫"),
         "ja": ("{fits} フロアマット", "{fits_model} フロアマット"), "es": ("alfombrillas {fits}", "alfombrillas {fits} {fits_model}")}),
    "car_phone_holder": Kind(
        "automotive", "car phone holder", (2, 1),
        (M(brand="baseus", mount="vent"), M(brand="belkin", mount="dash")),
        {},
        {"en": ("{brand} Car Phone Holder, {mount} Mount for iPhone and Android",),
         "zh": ("{brand} 车载手机支架 {mount} 导航支架",),
         "ja": ("{brand} 車載ホルダー スマホ {mount}",),
         "es": ("Soporte de móvil para coche {brand}, {mount}",)},
        {"en": ("car phone holder",), "zh": ("车载手机支架",), "ja": ("車載ホルダー",), "es": ("soporte móvil coche",)}),
    # ---------------------------------------------------------------- home
    "mouse_trap": Kind(
        "home", "mouse trap", (3, 2),
        (M(brand="trap_shop", trap="snap"), M(brand="trap_shop", trap="humane")),
        {"pack": (2, 4, 6)},
        {"en": ("{brand} {trap}, {pack}",),
         "zh": ("{brand} {trap} 家用灭鼠 {pack}",),
         "ja": ("{brand} {trap} {pack}",),
         "es": ("{brand} {trap}, {pack}",)},
        {"en": ("mouse trap", "{trap}"), "zh": ("捕鼠器", "{trap}"), "ja": ("ねずみ捕り", "{trap}"),
         "es": ("trampa para ratones", "{trap}")}),
    "scented_candle": Kind(
        "home", "scented candle", (4, 2),
        (M(brand="candle_shop", scent="apple_cinnamon"), M(brand="candle_shop", scent="vanilla"),
         M(brand="candle_shop", scent="green_apple"), M(brand="candle_shop", scent="lavender")),
        {"weight": ("200g", "400g")},
        {"en": ("{brand} {scent} Scented Candle, {weight} Jar",),
         "zh": ("{brand} {scent}香薰蜡烛 {weight} 卧室香氛",),
         "ja": ("{brand} アロマキャンドル {scent} {weight}",),
         "es": ("Vela aromática {brand} {scent}, {weight}",)},
        {"en": ("{scent} candle", "scented candle {weight}"), "zh": ("{scent}香薰蜡烛", "香薰蜡烛"),
         "ja": ("{scent} キャンドル", "アロマキャンドル"), "es": ("vela {scent}", "vela aromática")}),
    "desk_lamp": Kind(
        "home", "desk lamp", (3, 2),
        (M(brand="lamp_shop"),),
        {"colour": ("white", "black", "grey")},
        {"en": ("{brand} LED Desk Lamp, Dimmable, Eye-Care, {colour}",),
         "zh": ("{brand} LED护眼台灯 无极调光 {colour}",),
         "ja": ("{brand} LEDデスクライト 調光 目に優しい {colour}",),
         "es": ("Lámpara de escritorio LED {brand}, regulable, {colour}",)},
        {"en": ("led desk lamp", "{colour} desk lamp"), "zh": ("护眼台灯", "{colour}台灯"),
         "ja": ("デスクライト {colour}", "ledデスクライト"), "es": ("lámpara escritorio led", "lámpara escritorio {colour}")}),
    "bed_sheets": Kind(
        "home", "fitted sheet", (3, 2),
        (M(brand="linen_shop", bed="single"), M(brand="linen_shop", bed="double"), M(brand="linen_shop", bed="queen")),
        {"colour": ("white", "grey", "beige", "navy")},
        {"en": ("{brand} 100% Cotton Fitted Sheet, {bed}, {colour}",),
         "zh": ("{brand} 纯棉床笠 {bed} {colour}",),
         "ja": ("{brand} ボックスシーツ 綿100% {bed} {colour}",),
         "es": ("Sábana bajera {brand} 100% algodón, {bed}, {colour}",)},
        {"en": ("{bed} fitted sheet", "{colour} fitted sheet {bed}"), "zh": ("床笠 {bed}", "{colour}床笠"),
         "ja": ("ボックスシーツ {bed}", "ボックスシーツ {colour}"), "es": ("sábana bajera {bed}", "sábana bajera {colour_f}")}),
}

# --------------------------------------------------------------------------------------------
# Fixed queries: the deliberately ambiguous ones.
# (language, text, wanted kinds, constraints, other senses, intent). "Other senses" select products of
# the wrong sense (a kind name, or tags that must all match); up to SENSE_NEGATIVES of them are judged.
# --------------------------------------------------------------------------------------------

APPLE_BRAND, APPLE_FRUIT = {"brand": "apple"}, {"fruit": "apple"}
MOUSE_ANIMAL, JAGUAR_CAR, JAGUAR_MODEL_CAR = {"animal": "mouse"}, {"fits": "jaguar"}, {"make": "jaguar"}

FIXED_QUERIES = (
    ("en", "apple iphone charger", ("phone_charger",), {"brand": "apple"}, ("apples", APPLE_FRUIT),
     "Apple-brand phone charger (Apple the brand, not the fruit)"),
    ("en", "fresh apples", ("apples",), {}, (APPLE_BRAND, "apple_corer"), "apples the fruit (not Apple products)"),
    ("en", "apple juice", ("juice",), {"fruit": "apple"}, (APPLE_BRAND,), "apple juice (the fruit sense)"),
    ("en", "apple macbook charger", ("laptop_charger",), {"brand": "apple"}, ("apples", APPLE_FRUIT),
     "Apple laptop charger (brand sense)"),
    ("en", "apple slicer", ("apple_corer",), {}, (APPLE_BRAND, "apples"),
     "kitchen tool for cutting apples (not fruit, not Apple)"),
    ("en", "apple cinnamon candle", ("scented_candle",), {"scent": "apple_cinnamon"}, (APPLE_BRAND, "apples"),
     "candle with an apple scent (not fruit, not Apple)"),
    ("en", "wireless mouse", ("computer_mouse",), {"link": "wireless"}, ("mouse_trap", "cat_toy", MOUSE_ANIMAL),
     "computer mouse (not a mouse trap or a cat toy)"),
    ("en", "mouse trap", ("mouse_trap",), {}, ("computer_mouse", "cat_toy"), "trap for mice (not a computer mouse)"),
    ("en", "cat toy mouse", ("cat_toy",), {}, ("computer_mouse", "mouse_trap"), "toy mouse for cats (not a computer mouse)"),
    ("en", "jaguar plush toy", ("plush_toy",), {"animal": "jaguar"}, (JAGUAR_CAR, JAGUAR_MODEL_CAR),
     "stuffed jaguar the animal (not the car make)"),
    ("en", "jaguar car floor mats", ("car_floor_mats",), {"fits": "jaguar"}, ({"animal": "jaguar"}, JAGUAR_MODEL_CAR),
     "floor mats for Jaguar cars (not the animal)"),
    ("en", "puma running shoes", ("running_shoes",), {"brand": "puma"}, ({"animal": "puma"},),
     "PUMA-brand running shoes (not the animal)"),
    ("zh", "苹果充电器", ("phone_charger", "laptop_charger"), {"brand": "apple"}, ("apples", APPLE_FRUIT),
     "Apple-brand charger (苹果 the brand, not the fruit)"),
    ("zh", "新鲜苹果", ("apples",), {}, (APPLE_BRAND, "apple_corer"), "apples the fruit (not Apple products)"),
    ("zh", "苹果手机", ("smartphone",), {"brand": "apple"}, ("apples", APPLE_FRUIT), "iPhone (苹果 the brand)"),
    ("zh", "苹果手机壳", ("phone_case",), {"fits": "apple"}, ("apples", APPLE_FRUIT), "iPhone case (苹果 the brand)"),
    ("zh", "苹果汁", ("juice",), {"fruit": "apple"}, (APPLE_BRAND,), "apple juice (the fruit sense)"),
    ("zh", "无线鼠标", ("computer_mouse",), {"link": "wireless"}, ("mouse_trap", "cat_toy", MOUSE_ANIMAL),
     "wireless computer mouse (not a rodent)"),
    ("zh", "捕鼠器", ("mouse_trap",), {}, ("computer_mouse", "cat_toy"), "mouse trap (not a computer mouse)"),
    ("ja", "アップル 充電器", ("phone_charger", "laptop_charger"), {"brand": "apple"},
     ("apples", APPLE_FRUIT, {"scent": "apple_cinnamon"}), "Apple-brand charger (not りんご)"),
    ("ja", "りんご ふじ", ("apples",), {"variety": "fuji"}, (APPLE_BRAND,), "Fuji apples the fruit (not Apple products)"),
    ("ja", "りんごジュース", ("juice",), {"fruit": "apple"}, (APPLE_BRAND,), "apple juice"),
    ("ja", "アップルシナモン キャンドル", ("scented_candle",), {"scent": "apple_cinnamon"}, (APPLE_BRAND, "apples"),
     "apple-scented candle (not Apple)"),
    ("ja", "ワイヤレスマウス", ("computer_mouse",), {"link": "wireless"}, ("mouse_trap", "cat_toy", MOUSE_ANIMAL),
     "wireless computer mouse (not ねずみ)"),
    ("ja", "ねずみ捕り", ("mouse_trap",), {}, ("computer_mouse", "cat_toy", MOUSE_ANIMAL), "mouse trap (not a computer mouse)"),
    ("ja", "ジャガー ぬいぐるみ", ("plush_toy",), {"animal": "jaguar"}, (JAGUAR_CAR, JAGUAR_MODEL_CAR),
     "stuffed jaguar (ジャガー the animal, not the car)"),
    ("ja", "ジャガー フロアマット", ("car_floor_mats",), {"fits": "jaguar"}, ({"animal": "jaguar"}, JAGUAR_MODEL_CAR),
     "floor mats for Jaguar cars (not the animal)"),
    ("es", "cargador apple iphone", ("phone_charger",), {"brand": "apple"}, ("apples", APPLE_FRUIT),
     "Apple-brand phone charger (not manzanas)"),
    ("es", "manzanas frescas", ("apples",), {}, (APPLE_BRAND,), "apples the fruit (not Apple products)"),
    ("es", "zumo de manzana", ("juice",), {"fruit": "apple"}, (APPLE_BRAND,), "apple juice"),
    ("es", "ratón inalámbrico", ("computer_mouse",), {"link": "wireless"}, ("mouse_trap", "cat_toy", MOUSE_ANIMAL),
     "wireless computer mouse (not a rodent)"),
    ("es", "trampa para ratones", ("mouse_trap",), {}, ("computer_mouse",), "mouse trap (ratón the rodent)"),
    ("es", "peluche jaguar", ("plush_toy",), {"animal": "jaguar"}, (JAGUAR_CAR, JAGUAR_MODEL_CAR),
     "stuffed jaguar (the animal, not the car make)"),
    ("es", "alfombrillas jaguar", ("car_floor_mats",), {"fits": "jaguar"}, ({"animal": "jaguar"}, JAGUAR_MODEL_CAR),
     "floor mats for Jaguar cars (not the animal)"),
    ("es", "zapatillas puma", ("running_shoes",), {"brand": "puma"}, ({"animal": "puma"},), "PUMA-brand shoes (not the animal)"),
    ("es", "peluche puma", ("plush_toy",), {"animal": "puma"}, ({"brand": "puma"},), "stuffed puma (the animal, not the brand)"),
)

# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def word(name: str, value, lang: str, *, query: bool = False) -> str:
    """The text of one attribute value in a title (or, with ``query``, in a query)."""
    if query:
        override = QUERY_WORDS.get(name, {}).get(value, {})
        if lang in override:
            return override[lang]
    forms = LEXICON.get(name, {}).get(value)
    if forms is not None:
        text = forms[LANGUAGES.index(lang)]
        if query and name == "brand":   # "Apple/苹果" -> "苹果", "ソニー(SONY)" -> "ソニー"
            text = text.split("/")[-1].split("(")[0]
        return text
    if name in FORMATTERS:
        return FORMATTERS[name](value, lang)
    return str(value)


def render(template: str, tags: dict, lang: str, *, query: bool = False) -> str:
    values = {name: word(name, tags[ATTRIBUTE_OF.get(name, name)], lang, query=query)
              for name in _placeholders(template)}
    return " ".join(template.format_map(values).split())


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not 0x300 <= ord(c) <= 0x36F))


def char_bigrams(text: str) -> set[str]:
    """Character bigrams within each word (lowercased, accents stripped): the overlap measure."""
    words = strip_accents(unicodedata.normalize("NFKC", text).lower()).split()
    return {w[i:i + 2] for w in words for i in range(max(1, len(w) - 1))}


def overlap(a: str, b: str) -> float:
    x, y = char_bigrams(a), char_bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0

# --------------------------------------------------------------------------------------------
# Products, queries, grades, judgements
# --------------------------------------------------------------------------------------------


def make_products() -> list[dict]:
    """Every language x kind: cycle through the kind's models, draw variants, fill a title."""
    rng = random.Random(f"{SEED}/products")
    products = []
    for lang in LANGUAGES:
        titles_seen: set[str] = set()
        in_language = []
        for kind_name, kind in KINDS.items():
            models = [m for m in kind.models if lang in m.get("langs", LANGUAGES)]
            count = kind.counts[0 if lang == "en" else 1]
            for i in range(count):
                for _attempt in range(20):
                    tags = {k: v for k, v in models[i % len(models)].items() if k != "langs"}
                    for attribute, values in kind.variants.items():
                        tags.setdefault(attribute, rng.choice(values))
                    title = render(rng.choice(kind.titles[lang]), tags, lang)
                    if title not in titles_seen:
                        break
                else:
                    raise RuntimeError(f"cannot make a new {kind_name} title in {lang}")
                titles_seen.add(title)
                brand = tags["brand"]
                in_language.append({
                    "title": title, "language": lang, "category": kind.category,
                    "brand": word("brand", brand, lang if brand in LOCAL_BRANDS else "en"),
                    "kind": kind_name, "tags": tags})
        rng.shuffle(in_language)
        products.extend(in_language)
    for number, product in enumerate(products, 1):
        product["product_id"] = f"P{number:04d}"
    return products


def _query_text(text: str, lang: str, rng: random.Random) -> str:
    text = " ".join(text.lower().split())
    if lang == "es" and rng.random() < SPANISH_ACCENTLESS:
        text = strip_accents(text)
    return text


#: How an intent note names a constraint: attribute -> (name, placeholder rendered in English).
INTENT_WORDS = {"fits": ("for", "fits"), "fits_model": ("for model", "fits_model"), "link": ("connection", "link"),
                "ssd": ("storage", "ssd"), "fruit": ("fruit", "fruit_sg"), "csize": ("size", "csize"),
                "cm": ("diameter cm", "cm"), "blade": ("blade cm", "blade"), "tlength": ("length", "tlength"),
                "sheets": ("pack", "sheets"), "toy": ("toy", "toy"), "trap": ("type", "trap")}


def _intent(kind_names: tuple[str, ...], constraints: dict) -> str:
    wanted = " or ".join(KINDS[k].label for k in kind_names)
    if not constraints:
        return wanted
    named = [(*INTENT_WORDS.get(key, (key, key)), value) for key, value in constraints.items()]
    return f"{wanted}; " + ", ".join(f"{name} {word(placeholder, value, 'en')}" for name, placeholder, value in named)


def make_queries(products: list[dict]) -> list[dict]:
    """The fixed ambiguous queries, then template queries filled from products, per language."""
    rng = random.Random(f"{SEED}/queries")
    queries = []
    for lang in LANGUAGES:
        chosen = [{"query": text, "language": lang, "kinds": kinds, "constraints": constraints, "senses": senses,
                   "intent": intent}
                  for q_lang, text, kinds, constraints, senses, intent in FIXED_QUERIES if q_lang == lang]
        seen = {q["query"] for q in chosen}
        by_kind: dict[str, list[dict]] = {}
        for product in products:
            if product["language"] == lang:
                by_kind.setdefault(product["kind"], []).append(product)
        kind_order = list(by_kind)
        rng.shuffle(kind_order)
        step = 0
        while len(chosen) < QUERIES_PER_LANGUAGE[lang]:
            if step > 5000:
                raise RuntimeError(f"ran out of distinct {lang} queries")
            kind_name = kind_order[step % len(kind_order)]
            step += 1
            product = rng.choice(by_kind[kind_name])
            template = rng.choice(KINDS[kind_name].queries[lang])
            text = _query_text(render(template, product["tags"], lang, query=True), lang, rng)
            if text in seen:
                continue
            seen.add(text)
            attributes = [ATTRIBUTE_OF.get(n, n) for n in _placeholders(template)]
            constraints = {a: product["tags"][a] for a in dict.fromkeys(attributes)}
            chosen.append({"query": text, "language": lang, "kinds": (kind_name,), "constraints": constraints,
                           "senses": (), "intent": _intent((kind_name,), constraints)})
        queries.extend(chosen)
    rng.shuffle(queries)
    for number, query in enumerate(queries, 1):
        query["query_id"] = f"Q{number:03d}"
    return queries


def grade(query: dict, product: dict) -> int:
    """2 exact, 1 partial (wanted kind missing a constraint, or a compatible related kind), 0."""
    tags = product["tags"]
    if product["kind"] in query["kinds"]:
        return 2 if all(tags.get(k) == v for k, v in query["constraints"].items()) else 1
    related = any(product["kind"] in KINDS[k].related for k in query["kinds"])
    wanted_identity = [v for k, v in query["constraints"].items() if k in IDENTITY]
    product_identity = [tags.get(k) for k in IDENTITY]
    if related and all(v in product_identity for v in wanted_identity):
        return 1
    return 0


def is_other_sense(query: dict, product: dict) -> bool:
    """Does the product belong to one of the query's listed wrong senses?"""
    return any(product["kind"] == sense if isinstance(sense, str)
               else all(product["tags"].get(k) == v for k, v in sense.items()) for sense in query["senses"])


def _sample(rng: random.Random, items: list, n: int) -> list:
    return rng.sample(items, n) if len(items) > n else list(items)


def judge(queries: list[dict], products: list[dict]) -> list[dict]:
    """Per query: exact matches, partial ones, and wrong-sense / hard / same-category / random negatives."""
    rng = random.Random(f"{SEED}/judgements")
    rows = []
    for query in queries:
        pool = [p for p in products if p["language"] == query["language"]]
        graded = [(grade(query, p), p) for p in pool]
        exact = [p for g, p in graded if g == 2]
        if not exact:
            raise RuntimeError(f"query {query['query']!r} ({query['language']}) has no exact match")
        partial = [p for g, p in graded if g == 1]
        zeros = [p for g, p in graded if g == 0]
        picked = [(2, p) for p in _sample(rng, exact, MAX_EXACT)] + [(1, p) for p in _sample(rng, partial, MAX_PARTIAL)]
        other_sense = _sample(rng, [p for p in zeros if is_other_sense(query, p)], SENSE_NEGATIVES)
        if query["senses"] and not other_sense:
            raise RuntimeError(f"query {query['query']!r} ({query['language']}) has no other-sense product to judge")
        rest = [p for p in zeros if p not in other_sense]
        hard = other_sense + sorted(rest, key=lambda p: (-overlap(query["query"], p["title"]), p["product_id"]))[:HARD_NEGATIVES]
        rest = [p for p in zeros if p not in hard]
        categories = [KINDS[k].category for k in query["kinds"]]
        same_category = _sample(rng, [p for p in rest if p["category"] in categories], CATEGORY_NEGATIVES)
        rest = [p for p in rest if p not in same_category]
        negatives = hard + same_category + _sample(rng, rest, RANDOM_NEGATIVES)
        picked += [(0, p) for p in negatives]
        rng.shuffle(picked)
        rows.extend({"query_id": query["query_id"], "product_id": p["product_id"], "grade": g} for g, p in picked)
    return rows

# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _jsonl(records: list[dict], fields: tuple[str, ...]) -> str:
    return "".join(json.dumps({f: r[f] for f in fields}, ensure_ascii=False) + "\n" for r in records)


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _readme(products: list[dict], queries: list[dict], rows: list[dict]) -> str:
    language_of = {q["query_id"]: q["language"] for q in queries}
    product_count = Counter(p["language"] for p in products)
    query_count = Counter(q["language"] for q in queries)
    pair_count = Counter((language_of[r["query_id"]], r["grade"]) for r in rows)
    categories = sorted({p["category"] for p in products})
    category_count = Counter((p["category"], p["language"]) for p in products)
    by_language = _table(
        ("language", "products", "queries", "pairs", "grade 0", "grade 1", "grade 2"),
        [(lang, product_count[lang], query_count[lang], sum(pair_count[lang, g] for g in range(3)),
          *(pair_count[lang, g] for g in range(3))) for lang in LANGUAGES]
        + [("all", len(products), len(queries), len(rows),
            *(sum(pair_count[lang, g] for lang in LANGUAGES) for g in range(3)))])
    by_category = _table(("category", *LANGUAGES, "all"),
                         [(c, *(category_count[c, lang] for lang in LANGUAGES),
                           sum(category_count[c, lang] for lang in LANGUAGES)) for c in categories])
    return README_TEMPLATE.format(products=len(products), queries=len(queries), pairs=len(rows),
                                  by_language=by_language, by_category=by_category, kinds=len(KINDS),
                                  max_exact=MAX_EXACT, max_partial=MAX_PARTIAL, sense=SENSE_NEGATIVES,
                                  hard=HARD_NEGATIVES, category=CATEGORY_NEGATIVES, random=RANDOM_NEGATIVES)


README_TEMPLATE = """\
# The semmatch-tf demo catalogue

**This data is made up.** The project generated it for demonstrations and tests; it is not real shop
data, not scraped, and no listing, price or judgement belongs to any real shop. Brand and model names
(Apple, Samsung, PUMA, Jaguar, ...) appear only as the words a shopper would type, so that the demo
has the ambiguities real search has; the shop brands (Orchard Valley, 鲜果园, ふわもこ堂, Peluchitos, ...)
are invented.

It exists so that the README's main command (train a BiLSTM matcher, evaluate, export) runs on a fresh
machine with no download, in about a minute on a CPU.

## Files

All files are UTF-8 JSON Lines, one record per line.

- `products.jsonl` ({products} products): `product_id` (`P0001`...), `title` (as a shop would write it:
  brand, model, attributes, sizes, colours), `language` (`en`, `zh`, `ja`, `es`), `category`, `brand`
  (global brands in their English spelling, the invented shop brands in the local one).
- `queries.jsonl` ({queries} queries): `query_id` (`Q001`...), `query` (lowercase, as typed; some Spanish
  ones without accents), `language`, `intent` (a note on what the shopper wants, e.g. "Apple-brand phone
  charger (Apple the brand, not the fruit)").
- `judgements.jsonl` ({pairs} judged pairs): `query_id`, `product_id`, `grade`. A query is judged only
  against products in its own language.

`semmatch_tf.data.demo.load_demo()` joins them into a `PairDataset` (label = grade, classes
`irrelevant`, `partial`, `exact`); `load_demo_catalogue()` and `load_demo_queries()` return the
products and queries as data frames.

## Labels (WANDS-style)

| grade | name | meaning |
|---|---|---|
| 2 | exact | the product is of the wanted type and has every attribute the query asks for (brand, model, colour, size, ...) |
| 1 | partial | the wanted type with a wrong attribute (an iPhone 14 or a 256GB iPhone 15 for "iphone 15 128gb", a Samsung charger for "apple iphone charger"), or a related type that fits the query's brand/model (an iPhone 15 case for "iphone 15", hiking boots for "running shoes", bananas for "fresh apples") |
| 0 | irrelevant | anything else, including the other sense of an ambiguous word |

Ambiguity is deliberate: "apple" the brand (iPhone, AirPods, MacBook chargers, cases) against apples
the fruit (Fuji apples, apple juice, dried apple chips) and apple-scented candles; 苹果 (phone or
fruit); アップル vs りんご; manzana vs Apple; "jaguar" the car make (floor mats, a die-cast F-Type) vs
the plush animal (and ジャガー for both in Japanese); "puma" the shoe brand vs the plush animal;
"mouse" the computer mouse vs a cat toy vs a mouse trap (ratón, ねずみ, 鼠标 / 老鼠). Fresh apples and
other fresh fruit are related kinds, so bananas are a *partial* match for "fresh apples", while an
Apple charger is irrelevant to it and the fruit is irrelevant to "apple iphone charger".

## Counts

By language (pairs and grades count the judged pairs of the language's queries):

{by_language}

Products by category:

{by_category}

## How it was generated

`python tools/demo_build.py` wrote these files, deterministically (seeded `random.Random`;
running it again gives byte-identical files, which the tests check):

1. {kinds} product kinds (smartphone, phone case, fresh apples, juice, running shoes, frying pan,
   cordless drill, plush toy, car floor mats, mouse trap, scented candle, ...), each with a category,
   models, attribute variants and title templates in the four languages. Every product is a kind's
   model with drawn variants, written through one of its title templates.
2. Queries: a fixed list of ambiguous ones ("apple iphone charger", "fresh apples", 苹果充电器,
   新鲜苹果, ジャガー ぬいぐるみ, trampa para ratones, ...), then queries made by filling a kind's query
   template from one of its products. The attributes the template names become the query's
   constraints, so every query has at least one exact match.
3. Grades follow the rules above. For each query the judged candidates are its exact matches (up to
   {max_exact}), partial ones (up to {max_partial}) and irrelevant ones chosen four ways: for the fixed
   ambiguous queries up to {sense} of the wrong sense (the fruit for "apple iphone charger", Apple products
   for "fresh apples", mouse traps for "wireless mouse"); the {hard} others with most character-bigram
   overlap with the query (hard negatives); {category} from the same category; {random} at random.

To change the data, edit the tables in `tools/demo_build.py` and run it again.
"""


def build() -> dict[str, str]:
    """File name -> content of every demo file."""
    products = make_products()
    queries = make_queries(products)
    rows = judge(queries, products)
    return {
        "products.jsonl": _jsonl(products, ("product_id", "title", "language", "category", "brand")),
        "queries.jsonl": _jsonl(sorted(queries, key=lambda q: q["query_id"]), ("query_id", "query", "language", "intent")),
        "judgements.jsonl": _jsonl(rows, ("query_id", "product_id", "grade")),
        "README.md": _readme(products, queries, rows),
    }


def write(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in build().items():
        path = out / name
        path.write_bytes(content.encode("utf-8"))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "semmatch_tf" / "data" / "demo",
                        help="output folder (default: the packaged semmatch_tf/data/demo)")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
