"""Deterministic "translation" for the chat fakes.

How the target language is found, first match wins, in the system then user messages:
  * an explicit marker: `[target=es]`, `target_language: es`, `Target language: Spanish`;
  * a language *name* after "to" / "into": "Translate the following text to French".
Bare codes are only read from explicit markers ("listen to it" must not mean Italian).

The text translated is the last user message with any marker removed. Known short phrases come from a
tiny dictionary (es/fr/de); anything else comes back as "[<code>] <text>".
"""

from __future__ import annotations

import re

LANGUAGES = {
    "english": "en",
    "spanish": "es",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "japanese": "ja",
    "chinese": "zh",
    "russian": "ru",
    "arabic": "ar",
    "hindi": "hi",
    "español": "es",
    "espanol": "es",
    "français": "fr",
    "francais": "fr",
    "deutsch": "de",
}
CODES = set(LANGUAGES.values())

PHRASES: dict[str, dict[str, str]] = {
    "es": {
        "hello": "hola",
        "good morning": "buenos días",
        "good night": "buenas noches",
        "thank you": "gracias",
        "goodbye": "adiós",
        "yes": "sí",
        "no": "no",
        "please": "por favor",
        "how are you": "cómo estás",
        "hello world": "hola mundo",
    },
    "fr": {
        "hello": "bonjour",
        "good morning": "bonjour",
        "good night": "bonne nuit",
        "thank you": "merci",
        "goodbye": "au revoir",
        "yes": "oui",
        "no": "non",
        "please": "s'il vous plaît",
        "how are you": "comment allez-vous",
        "hello world": "bonjour le monde",
    },
    "de": {
        "hello": "hallo",
        "good morning": "guten Morgen",
        "good night": "gute Nacht",
        "thank you": "danke",
        "goodbye": "auf Wiedersehen",
        "yes": "ja",
        "no": "nein",
        "please": "bitte",
        "how are you": "wie geht es dir",
        "hello world": "hallo Welt",
    },
}

_MARKER = re.compile(r"\[\s*target\s*=\s*([A-Za-z-]+)\s*\]|\btarget[_ ]language\s*[:=]\s*([A-Za-zçñ-]+)", re.I)
_NAMED = re.compile(r"\b(?:to|into)\s+([A-Za-zçñ]+)", re.I)


def _code(word: str, allow_code: bool) -> str | None:
    lowered = word.lower()
    if lowered in LANGUAGES:
        return LANGUAGES[lowered]
    base = lowered.split("-")[0]
    return base if allow_code and base in CODES else None


def find_target(texts: list[str]) -> str | None:
    """The ISO-639-1 code of the requested target language, or None if the prompts ask for none."""
    for text in texts:
        for match in _MARKER.finditer(text):
            code = _code(match.group(1) or match.group(2), allow_code=True)
            if code:
                return code
    for text in texts:
        for match in _NAMED.finditer(text):
            code = _code(match.group(1), allow_code=False)
            if code:
                return code
    return None


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def translate(text: str, target: str) -> str:
    """The dictionary translation of a known phrase (keeping its case and end punctuation), else a tag."""
    core = text.strip()
    trailing = ""
    while core and core[-1] in ".!?,;:":
        trailing = core[-1] + trailing
        core = core[:-1]
    known = PHRASES.get(target, {}).get(core.lower())
    if known is None:
        return f"[{target}] {text.strip()}"
    if core[:1].isupper():
        known = known[:1].upper() + known[1:]
    return known + trailing
