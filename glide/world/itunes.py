"""The 2017 iTunes podcast sample (154 real shows, see ../shared/data/README.md) as a world `Catalog`.

Read straight from `shows_raw.zip`: one text file per show, the show title on the first non-empty
line, then episode titles one per line, then free-text descriptions. Neither the file names
(10001.txt ... 10154.txt) nor the text carry an iTunes genre id, so each show's genre is inferred
from keyword hits in its own text, scored against genres named in `genre_IDs.txt`; topics are the
lowercased genre names. Alignment of descriptions to episodes is best effort (in file order): a
description always belongs to the same show, not always to the exact episode. Durations, popularity
and publication times are not in the data: they are drawn deterministically from `seed`.
"""

from __future__ import annotations

import ast
import html
import re
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from glide.world.catalog import Catalog, show_popularity_prior
from glide.world.schema import DAY_S, DEFAULT_START

DEFAULT_PATH = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "podcasts_itunes_2017"
ZIP_NAME = "shows_raw.zip"
GENRES_NAME = "genre_IDs.txt"
DESCRIPTION_MIN_CHARS = 60
SHOW_DESCRIPTION_MIN_CHARS = 200

# iTunes genre id -> keywords (lowercase). Latin keywords match whole words; others match as substrings
# (Thai and CJK text has no spaces). Scored on the show title, its description and its episodes.
GENRE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "1311": (  # News & Politics
        "news", "politics", "political", "election", "elections", "policy", "president", "trump",
        "congress", "democracy", "journalism", "debate", "debates", "military", "defence", "defense",
        "current affairs", "headlines",
    ),
    "1303": (  # Comedy
        "comedy", "comedian", "comedians", "funny", "laugh", "laughs", "improv", "standup", "stand-up",
        "humor", "humour", "jokes", "hilarious", "sitcom", "satirist", "satire",
    ),
    "1316": (  # Sports & Recreation
        "sports", "sport", "football", "nfl", "soccer", "basketball", "baseball", "golf", "golfer",
        "mma", "ufc", "wrestling", "wrestler", "arsenal", "tottenham", "spurs", "gooners", "premier league",
        "runners", "running", "marathon", "hockey", "playoff", "playoffs", "quarterback", "coach",
        "recruiting", "buckeyes", "hokies", "trojans", "notre dame", "patriots", "equestrian", "horse",
        "riding", "fighter", "boxing", "athlete", "athletes", "ncaa", "league",
    ),
    "1318": (  # Technology
        "technology", "tech", "software", "developer", "developers", "programming", "android", "iphone",
        "apple", "ipad", "mac", "gadget", "gadgets", "computer", "computers", "internet", "wifi", "wi-fi",
        "app", "apps", "coding", "linux", "windows", "vpn", "network", "networking", "hardware",
        "smartphone", "microsoft", "google", "4g", "cloud", "айфон", "смартфон", "андроид", "гаджет",
        "apple", "яблоч", "xcode", "objective-c", "swift",
    ),
    "1321": (  # Business
        "business", "marketing", "entrepreneur", "entrepreneurs", "entrepreneurial", "sales", "selling",
        "startup", "company", "companies", "leadership", "management", "insurance", "capital", "investing",
        "investor", "investors", "investment", "trading", "trader", "traders", "stock", "stocks", "market",
        "markets", "finance", "financial", "wealth", "money", "income", "real estate", "cash flow",
        "portfolio", "ceo", "career", "careers", "industry", "brand", "retirement",
    ),
    "1307": (  # Health
        "health", "healthy", "diet", "dieting", "fitness", "nutrition", "weight", "weight loss", "eating",
        "wellness", "paleo", "workout", "exercise", "sleep", "healing", "self-care", "mental health",
        "anxiety", "holistic", "energetic", "body image", "fat",
    ),
    "1315": (  # Science & Medicine
        "science", "scientist", "scientists", "scientific", "astronomy", "astronaut", "microbiology",
        "immunology", "biology", "physics", "chemistry", "medicine", "medical", "critical care", "nursing",
        "nurse", "nurses", "nclex", "research", "researchers", "space", "stars", "planet", "planets",
        "nasa", "innovation", "engineering", "clinical", "patients", "disease", "microbes", "telescope",
    ),
    "1462": (  # History
        "history", "historical", "historian", "ancient", "greece", "greek", "rome", "roman", "war", "wars",
        "century", "empire", "civil war", "medieval", "myths", "mythology", "revolution", "historic",
    ),
    "1314": (  # Religion & Spirituality
        "god", "church", "christian", "christianity", "jesus", "christ", "bible", "biblical", "sermon",
        "sermons", "gospel", "faith", "islam", "islamic", "muslim", "quran", "qur'an", "allah", "mormon",
        "buddhism", "buddhist", "buddha", "meditation", "spiritual", "spirituality", "mystic", "mysticism",
        "rosicrucian", "kabbalah", "vedanta", "tantra", "dharma", "prayer", "lord", "scripture",
        "apologetics", "pastor", "tafsir", "shaykh", "surah", "prophet", "krishna", "vaisnava", "retreat",
        "maitreya", "witches", "witch", "pagan", "atheism", "atheist", "religion",
        "الله", "القرآن", "سورة", "القارئ", "الشيخ", "ธรรม", "หลวงพ่อ", "วัด", "สติ",
    ),
    "1324": (  # Society & Culture
        "culture", "society", "social", "relationships", "relationship", "marriage", "married", "dating",
        "affair", "infidelity", "wedding", "stories", "storytelling", "personal", "philosophy",
        "paranormal", "bigfoot", "ghost", "ghosts", "freemasonry", "freemasons", "masonic", "lodge",
        "swinger", "swingers", "strangers", "women", "life", "فيلسوف", "الحياة",
    ),
    "1301": (  # Arts
        "art", "arts", "painting", "painter", "design", "designer", "literature", "literary", "book",
        "books", "author", "authors", "writer", "writers", "writing", "poetry", "poet", "fashion",
        "style", "beauty", "photography", "photographer", "food", "cooking", "recipe", "recipes", "chef",
        "kitchen", "beer", "brew", "brewing", "brewery", "craft", "knitting", "knit", "yarn", "theater",
        "theatre", "drama", "podiobook", "novel", "fairy tales", "tales", "책", "소설", "작가",
    ),
    "1310": (  # Music
        "music", "musician", "musicians", "dj", "song", "songs", "album", "band", "singer", "singers",
        "vocal", "vocals", "remix", "concert", "jazz", "hip hop", "techno", "records", "playlist", "音乐",
    ),
    "1309": (  # TV & Film
        "film", "films", "movie", "movies", "tv", "television", "game of thrones", "netflix", "cinema",
        "actor", "actors", "hollywood", "big brother", "queen sugar", "disney", "disneyland",
        "screenwriter", "showrunner", "sci-fi", "star wars", "comics", "episode recap",
    ),
    "1323": (  # Games & Hobbies
        "game", "games", "gaming", "gamer", "gamers", "board game", "boardgame", "board games",
        "magic: the gathering", "mtg", "pathfinder", "lego", "rpg", "dungeons", "hobby", "hobbies",
        "amateur radio", "ham radio", "cars", "car", "automotive", "cigar", "cigars", "stogie", "stogies",
        "solder", "soldering", "electronics", "kart", "gencon", "deck", "decks", "mazda", "porsche",
        "chevy", "volkswagen", "汽车",
    ),
    "1305": (  # Kids & Family
        "kids", "children", "child", "parenting", "parent", "parents", "pregnancy", "pregnant", "baby",
        "babies", "mom", "moms", "mother", "dad", "family", "families", "bedtime", "childbirth", "toddler",
        "foster", "birth",
    ),
    "1304": (  # Education
        "education", "educational", "learning", "learn", "course", "courses", "lesson", "lessons",
        "teacher", "teachers", "teaching", "students", "student", "school", "schools", "esl", "english",
        "exam", "training", "lecture", "lectures", "university", "academia", "academic", "professor",
        "principles", "savoir", "pronunciation", "vocabulary", "grammar", "verbs", "phrasal", "idioms",
        "prepositions",
    ),
    "1320": (  # Places & Travel
        "travel", "traveler", "travelers", "traveller", "travellers", "traveling", "travelling",
        "backpacking", "backpacker", "destination", "destinations", "trip", "trips", "tourism", "tourist",
        "hostel", "abroad", "itinerary", "nomad", "tours",
    ),
    "1325": (  # Government & Organizations
        "government", "organization", "organizations", "non-profit", "nonprofit", "charity", "association",
        "library", "public library", "state senate", "senate", "legislative", "legislature", "council",
        "agency", "casa", "advocates", "court", "law", "legal", "litigation",
    ),
}

# Scripts that decide a show's locale outright when most of its letters use them.
SCRIPT_LOCALES = tuple(
    (re.compile(f"[{lo}-{hi}]"), locale)
    for lo, hi, locale in (
        ("\u0600", "\u06ff", "ar-SA"),
        ("\u0400", "\u04ff", "ru-RU"),
        ("\u0e00", "\u0e7f", "th-TH"),
        ("\uac00", "\ud7af", "ko-KR"),
        ("\u3040", "\u30ff", "ja-JP"),
        ("\u4e00", "\u9fff", "zh-CN"),
    )
)
STOPWORDS = {
    "en-US": {"the", "and", "of", "to", "with", "is", "in", "for", "you", "this"},
    "fr-FR": {"le", "la", "les", "des", "est", "une", "pour", "dans", "du", "qui", "que", "et"},
    "es-ES": {"el", "los", "las", "por", "para", "una", "que", "con", "del", "y"},
    "de-DE": {"der", "die", "und", "ist", "nicht", "mit", "das", "ein", "eine", "auf"},
}
BRITISH = {"colour", "favourite", "programme", "whilst", "organisation", "centre", "defence", "cheers", "mum"}
AMERICAN = {"color", "favorite", "program", "organization", "center", "defense", "mom"}
TOKEN = re.compile(r"[^\W_][\w'-]*")


def load_itunes_catalog(
    path: str | Path = DEFAULT_PATH,
    start: str = DEFAULT_START,
    days: int = 30,
    seed: int = 0,
    max_episodes_per_show: int | None = None,
    max_shows: int | None = None,
) -> Catalog:
    """Shows and episodes of the iTunes sample in the world contract.

    Publication times are spread deterministically: each show's newest episode falls inside
    [start, start + days), older ones go back at the show's cadence, and the oldest always precedes
    `start` so a world starting then has a back catalog. `max_episodes_per_show` keeps the newest."""
    root = Path(path)
    zip_path, genres_path = root / ZIP_NAME, root / GENRES_NAME
    for p in (zip_path, genres_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: point path= at the podcasts_itunes_2017 folder of ../shared/data")
    genre_names = _read_genre_names(genres_path)
    parsed = _read_shows(zip_path, max_shows)
    # One generator, drawn in a fixed order (popularity, then per show: times, durations), so a
    # seed always gives the same catalog.
    rng = np.random.default_rng(seed)
    start_ts = pd.Timestamp(start).tz_convert("UTC")
    popularity = show_popularity_prior(len(parsed), rng)
    matchers = [_matcher(GENRE_KEYWORDS[g]) for g in GENRE_KEYWORDS]
    show_rows, ep_rows = [], []
    for i, (source_id, title, description, episodes) in enumerate(parsed):
        if max_episodes_per_show is not None:
            episodes = episodes[:max_episodes_per_show]  # files list the newest first
        show = _show_row(i, source_id, title, description, episodes, float(popularity[i]), genre_names, matchers)
        show_rows.append(show)
        ep_rows += _episode_rows(show, episodes, start_ts, days, rng)

    shows = pd.DataFrame(show_rows, columns=list(show_rows[0]))
    topics_used = sorted({t for ts in shows["topics"] for t in ts})
    catalog = Catalog(shows=shows, episodes=_episodes_frame(ep_rows), topics=topics_used, name="itunes")
    catalog.validate()
    return catalog


def _read_genre_names(genres_path: Path) -> dict[str, str]:
    """Genre id -> name from the sample's genre list; every genre GENRE_KEYWORDS scores must be named."""
    genre_names = dict(ast.literal_eval(genres_path.read_text(encoding="utf-8")))
    missing = set(GENRE_KEYWORDS) - set(genre_names)
    if missing:
        raise ValueError(f"{genres_path} lacks genre ids {sorted(missing)} that GENRE_KEYWORDS scores")
    return genre_names


def _read_shows(zip_path: Path, max_shows: int | None) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(iTunes id, title, description, episodes) per show file with episodes, in file-name order
    (sorted, so show ids do not depend on the zip's member order)."""
    parsed = []
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(
            n for n in zf.namelist()
            if n.endswith(".txt") and not n.startswith("__MACOSX/") and "/." not in n
        )
        for name in names:
            text = zf.read(name).decode("utf-8", errors="replace")
            title, description, episodes = parse_show_text(text)
            if title and episodes:
                parsed.append((Path(name).stem, title, description, episodes))
    if max_shows is not None:
        parsed = parsed[:max_shows]
    if not parsed:
        raise ValueError(f"no shows with episodes found in {zip_path}")
    return parsed


def _show_row(
    i: int, source_id: str, title: str, description: str, episodes: list[tuple[str, str]],
    popularity: float, genre_names: dict[str, str], matchers: list,
) -> dict:
    """One shows row: genres ranked by keyword score become topics, the locale is read off the text."""
    genre_ids = list(GENRE_KEYWORDS)
    all_text = " ".join([title, description] + [f"{t} {d}" for t, d in episodes])
    ranked = _rank_genres(title, description, episodes, matchers)
    topic_ids = [genre_ids[k] for k in ranked]
    return dict(
        show_id=f"show_{i + 1:04d}", title=title, description=description, host=_host(title, description),
        topics=[genre_names[g].lower() for g in topic_ids], locale=detect_locale(all_text),
        popularity=popularity, itunes_id=source_id, genre_id=topic_ids[0],
    )


def _episode_rows(
    show: dict, episodes: list[tuple[str, str]], start_ts: pd.Timestamp, days: int, rng: np.random.Generator
) -> list[tuple]:
    """(show_id, title, description, topic, locale, published s, duration_s) per episode of one show;
    episodes take the show's primary topic and a duration around the show's typical length."""
    pub = _publish_times(len(episodes), start_ts, days, rng)
    minutes = float(np.clip(rng.lognormal(np.log(35), 0.6), 3, 180))
    durations = np.clip(minutes * 60 * rng.lognormal(0, 0.25, size=len(episodes)), 60, 4 * 3600).astype(np.int64)
    return [
        (show["show_id"], ep_title, ep_desc, show["topics"][0], show["locale"], pub[k], int(durations[k]))
        for k, (ep_title, ep_desc) in enumerate(episodes)
    ]


def _episodes_frame(ep_rows: list[tuple]) -> pd.DataFrame:
    """The episodes table, ids in publication order (ties by show)."""
    eps = pd.DataFrame(ep_rows, columns=["show_id", "title", "description", "topic", "locale", "pub", "duration_s"])
    eps = eps.sort_values(["pub", "show_id"], kind="stable").reset_index(drop=True)  # ids follow publication
    return pd.DataFrame(
        {
            "episode_id": [f"ep_{i + 1:06d}" for i in range(len(eps))],
            "show_id": eps["show_id"],
            "title": eps["title"],
            "description": eps["description"],
            "topic": eps["topic"],
            "locale": eps["locale"],
            "published_at": pd.to_datetime(eps["pub"].to_numpy(np.int64), unit="s", utc=True),
            "duration_s": eps["duration_s"].astype(np.int64),
            "playable": np.ones(len(eps), dtype=bool),
            "popularity": np.zeros(len(eps)),
        }
    )


def parse_show_text(text: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(show title, show description, [(episode title, description), ...] newest first) of one file."""
    lines = [_clean(line) for line in text.replace("\r", "\n").split("\n")]
    i = 0
    while i < len(lines) and not lines[i]:
        i += 1
    if i == len(lines):
        return "", "", []
    title = lines[i]
    i += 1
    while i < len(lines) and (not lines[i] or lines[i] == title):
        i += 1
    titles = []
    # Episode titles: the first run of short lines; a long line or a blank line ends it.
    while i < len(lines) and lines[i] and len(lines[i]) <= SHOW_DESCRIPTION_MIN_CHARS:
        if lines[i] != title:
            titles.append(lines[i])
        i += 1
    description = ""
    while i < len(lines):
        i += 1
        if len(lines[i - 1]) > SHOW_DESCRIPTION_MIN_CHARS:
            description = lines[i - 1]
            break
    descriptions = [line for line in lines[i:] if len(line) >= DESCRIPTION_MIN_CHARS]
    pairs = [(t, descriptions[k] if k < len(descriptions) else "") for k, t in enumerate(titles)]
    return title, description, list(dict.fromkeys(pairs))  # drop repeated (title, description) lines


def detect_locale(text: str) -> str:
    """Locale from the dominant script, then stopwords (en/fr/es/de), then British spellings."""
    sample = text[:20_000]  # plenty to tell a language; whole files take seconds
    n_letters = sum(1 for c in sample if c.isalpha())
    for pattern, locale in SCRIPT_LOCALES:
        if n_letters and len(pattern.findall(sample)) > 0.3 * n_letters:
            return locale
    words = _tokens(sample)
    counts = {loc: sum(words[w] for w in stop) for loc, stop in STOPWORDS.items()}
    best = max(counts, key=lambda loc: counts[loc])
    if best != "en-US" and counts[best] > counts["en-US"]:
        return best
    british, american = sum(words[w] for w in BRITISH), sum(words[w] for w in AMERICAN)
    return "en-GB" if british >= 3 and british > american else "en-US"


def _clean(line: str) -> str:
    line = unicodedata.normalize("NFKC", html.unescape(line))
    return re.sub(r"\s+", " ", line).strip()


def _tokens(text: str) -> Counter:
    return Counter(TOKEN.findall(text.lower()))


def _matcher(keywords: tuple[str, ...]):
    """Count keyword hits: single words by token lookup, phrases and non-Latin ones as substrings."""
    words = sorted({k for k in keywords if TOKEN.fullmatch(k)})
    phrases = sorted(set(keywords) - set(words))

    def count(tokens: Counter, lowered: str) -> int:
        return sum(tokens[w] for w in words) + sum(lowered.count(p) for p in phrases)

    return count


def _rank_genres(title: str, description: str, episodes: list[tuple[str, str]], matchers) -> list[int]:
    """Genre indices, best first: the winner plus runners-up scoring at least 40% of it (at most 3)."""
    # Each distinct line counts once, so boilerplate repeated under every episode cannot win.
    lines = dict.fromkeys([t for t, _ in episodes] + [d for _, d in episodes])
    parts = [title, description, "\n".join(lines)]
    weights = [4.0, 2.0, 10.0 / max(len(episodes), 1)]  # episodes: hits per ten episodes
    views = [(_tokens(p), p.lower()) for p in parts]
    scores = np.array([sum(w * m(*v) for w, v in zip(weights, views)) for m in matchers])
    order = np.argsort(-scores, kind="stable")
    if scores[order[0]] <= 0:
        return [list(GENRE_KEYWORDS).index("1324")]  # no signal: Society & Culture, iTunes' catch-all
    return [int(k) for k in order[:3] if scores[k] >= 0.4 * scores[order[0]]]


def _host(title: str, description: str) -> str:
    """Host name when the title says 'with X' or the description 'hosted by X'; else empty."""
    for pattern, text in (
        (r"\bwith ((?:[A-Z][\w.'-]+ ?){2,3})", title),
        (r"[Hh]osted by ((?:[A-Z][\w.'-]+ ?){2,3})", description),
    ):
        m = re.search(pattern, text)
        if m:
            return m.group(1).split(". ")[0].strip(" .")
    return ""


def _publish_times(n: int, start: pd.Timestamp, days: int, rng: np.random.Generator) -> np.ndarray:
    """Epoch seconds for n episodes listed newest first: newest inside the window, oldest before it."""
    start_s = int(start.timestamp())
    newest = start_s + int(rng.uniform(0.2, 1.0) * days * DAY_S)
    cadence = float(rng.choice([1.0, 3.5, 7.0, 14.0], p=[0.2, 0.2, 0.45, 0.15])) * DAY_S
    gaps = np.r_[0.0, cadence * rng.uniform(0.7, 1.3, size=n - 1)]
    back = np.cumsum(gaps)
    need = newest - start_s + DAY_S  # the oldest episode must precede the start by a day
    if n == 1:
        return np.array([start_s - DAY_S], dtype=np.int64)
    # The back catalog reaches at least a day before the start and at most ~3 years for big feeds.
    back *= max(need, min(back[-1], 3 * 365 * DAY_S)) / back[-1]
    return (newest - back).astype(np.int64)
