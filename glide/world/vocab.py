"""Word lists for the synthetic catalog: one vocabulary per topic, generic filler, host names.

Topic vocabularies barely overlap so that episode text embeddings cluster by topic; filler words
and show/host names are shared noise on top."""

from __future__ import annotations

TOPIC_VOCAB: dict[str, tuple[str, ...]] = {
    "news": (
        "headlines", "breaking", "briefing", "report", "correspondent", "press", "journalist",
        "update", "coverage", "bulletin", "newsroom", "editor", "developing", "announcement",
        "sources", "investigation", "daily", "world", "crisis", "summit", "diplomat", "reporter",
        "dispatch", "analysis", "protest", "agency", "statement", "deadline",
    ),
    "true crime": (
        "murder", "detective", "unsolved", "suspect", "victim", "homicide", "trial", "evidence",
        "forensic", "killer", "disappearance", "conviction", "jury", "alibi", "prosecutor",
        "witness", "cold case", "crime scene", "interrogation", "verdict", "kidnapping", "heist",
        "fraud", "prison", "sheriff", "motive", "confession", "autopsy",
    ),
    "comedy": (
        "jokes", "laugh", "comedian", "improv", "standup", "sketch", "hilarious", "funny",
        "roast", "banter", "punchline", "sitcom", "parody", "prank", "satire", "gags", "absurd",
        "ridiculous", "riff", "goofy", "silly", "awkward", "comic", "heckler", "bit", "giggles",
    ),
    "technology": (
        "software", "gadgets", "startup", "smartphone", "algorithm", "cloud", "developer",
        "programming", "silicon", "robotics", "artificial intelligence", "cybersecurity", "app",
        "chip", "laptop", "internet", "code", "open source", "encryption", "hardware", "browser",
        "server", "database", "machine learning", "processor", "engineer", "platform", "bandwidth",
    ),
    "sports": (
        "football", "basketball", "soccer", "playoffs", "championship", "coach", "quarterback",
        "league", "tournament", "striker", "season", "draft", "transfer", "referee", "stadium",
        "goalkeeper", "tennis", "baseball", "pitcher", "injury", "halftime", "derby", "trophy",
        "fixtures", "athlete", "scoreline", "overtime", "rugby",
    ),
    "history": (
        "ancient", "empire", "medieval", "dynasty", "revolution", "centuries", "archive",
        "pharaoh", "rome", "civil war", "monarch", "battle", "crusade", "colonial", "renaissance",
        "viking", "treaty", "chronicle", "historian", "artifact", "kingdom", "napoleon",
        "byzantine", "siege", "emperor", "relic", "antiquity", "samurai",
    ),
    "science": (
        "physics", "astronomy", "molecule", "experiment", "laboratory", "genetics", "quantum",
        "telescope", "galaxy", "evolution", "particle", "chemistry", "neuroscience", "hypothesis",
        "researcher", "fossil", "climate", "microbes", "cells", "universe", "orbit", "planet",
        "physicist", "biology", "dna", "black hole", "theory", "microscope",
    ),
    "business": (
        "entrepreneur", "marketing", "sales", "revenue", "startup founder", "leadership",
        "management", "strategy", "customers", "brand", "negotiation", "productivity",
        "corporate", "ceo", "scaling", "venture", "profit", "growth", "hiring", "workplace",
        "supply chain", "branding", "pitch", "retail", "ecommerce", "executive", "boardroom",
    ),
    "health": (
        "wellness", "nutrition", "fitness", "workout", "sleep", "diet", "doctor", "immune",
        "cardio", "vitamins", "mindfulness", "stress", "hormones", "metabolism", "gut", "protein",
        "recovery", "physician", "symptoms", "therapy", "anxiety", "hydration", "stretching",
        "longevity", "clinic", "mental health", "wellbeing", "yoga",
    ),
    "politics": (
        "election", "senate", "congress", "parliament", "policy", "campaign", "ballot",
        "legislation", "candidate", "vote", "democracy", "minister", "governor", "partisan",
        "debate", "polls", "constitution", "lobby", "referendum", "coalition", "opposition",
        "cabinet", "mayor", "primary", "impeachment", "bill", "voters", "white house",
    ),
    "education": (
        "teacher", "classroom", "students", "lesson", "curriculum", "university", "lecture",
        "homework", "exam", "school", "tutoring", "learning", "professor", "degree", "campus",
        "syllabus", "pedagogy", "literacy", "scholarship", "graduation", "study tips", "college",
        "kindergarten", "principal", "grading", "seminar", "course",
    ),
    "arts": (
        "painting", "gallery", "sculpture", "museum", "artist", "canvas", "exhibition",
        "design", "poetry", "novel", "theatre", "photography", "illustration", "curator",
        "architecture", "ballet", "ceramics", "literature", "author", "sketchbook", "portrait",
        "dance", "opera", "playwright", "craft", "calligraphy", "mural",
    ),
    "music": (
        "album", "guitar", "songwriter", "concert", "band", "vinyl", "melody", "drummer",
        "playlist", "record label", "lyrics", "chorus", "tour", "jazz", "hip hop", "synth",
        "producer", "orchestra", "festival", "bassline", "remix", "vocalist", "studio session",
        "symphony", "punk", "indie rock", "piano", "chord",
    ),
    "film and tv": (
        "movie", "director", "screenplay", "box office", "trailer", "cinema", "actor",
        "actress", "streaming series", "showrunner", "sequel", "premiere", "oscars", "episode recap",
        "blockbuster", "cast", "franchise", "documentary", "binge", "finale", "spoilers",
        "casting", "screenwriter", "remake", "netflix", "critics", "cinematography",
    ),
    "video games": (
        "gamer", "console", "multiplayer", "playstation", "xbox", "nintendo", "esports",
        "speedrun", "rpg", "boss fight", "controller", "indie game", "quest", "level design",
        "patch notes", "loot", "shooter", "open world", "dungeon", "leaderboard", "streamer",
        "pixel", "arcade", "respawn", "mmo", "gameplay", "expansion pack",
    ),
    "food": (
        "recipe", "chef", "kitchen", "cooking", "restaurant", "baking", "flavor", "cuisine",
        "ingredients", "spices", "dessert", "sourdough", "grill", "wine", "coffee", "brunch",
        "pastry", "vegan", "fermentation", "tasting", "barbecue", "noodles", "cheese", "menu",
        "street food", "craft beer", "foodie",
    ),
    "travel": (
        "passport", "itinerary", "backpacking", "destination", "flight", "hostel", "journey",
        "island", "road trip", "luggage", "tourism", "airport", "adventure", "expat", "cruise",
        "hotel", "visa", "sightseeing", "nomad", "guidebook", "beaches", "landmarks", "layover",
        "trek", "souvenir", "wanderlust", "abroad",
    ),
    "religion": (
        "faith", "prayer", "scripture", "sermon", "church", "gospel", "spiritual", "worship",
        "theology", "pastor", "bible", "meditation", "temple", "mosque", "psalm", "blessing",
        "ministry", "congregation", "devotional", "grace", "rabbi", "monastery", "pilgrimage",
        "salvation", "buddhist", "dharma", "saints",
    ),
    "parenting": (
        "toddler", "newborn", "parents", "motherhood", "fatherhood", "bedtime", "pregnancy",
        "kids", "tantrums", "breastfeeding", "daycare", "siblings", "teenagers", "nursery",
        "babysitter", "diapers", "family routine", "potty training", "playdate", "milestones",
        "screen time", "allowance", "preschool", "co-parenting", "infant", "lullaby",
    ),
    "self improvement": (
        "habits", "motivation", "mindset", "goals", "discipline", "confidence", "journaling",
        "success", "resilience", "gratitude", "focus", "procrastination", "routine", "purpose",
        "growth mindset", "willpower", "coaching", "inspiration", "self care", "affirmations",
        "accountability", "clarity", "potential", "morning routine", "personal growth", "courage",
    ),
    "fiction": (
        "audio drama", "chapter", "storyteller", "mystery", "detective story", "fantasy",
        "dragon", "spaceship", "narrator", "villain", "heroine", "plot twist", "serialized",
        "ghost story", "wizard", "haunted", "sci-fi", "cliffhanger", "kingdom tale", "alien",
        "fairy tale", "anthology", "protagonist", "enchanted", "sorcerer", "epilogue",
    ),
    "nature": (
        "wildlife", "forest", "birds", "ocean", "conservation", "hiking", "rainforest",
        "mountains", "ecology", "species", "whales", "garden", "camping", "rivers", "insects",
        "wilderness", "national park", "glacier", "coral reef", "predators", "migration",
        "botany", "trees", "outdoors", "habitat", "desert", "volcano",
    ),
    "personal finance": (
        "budget", "savings", "investing", "retirement", "mortgage", "credit score", "debt",
        "stocks", "index funds", "taxes", "dividends", "frugal", "pension", "portfolio",
        "real estate", "interest rates", "side hustle", "net worth", "emergency fund", "crypto",
        "financial independence", "inflation", "paycheck", "insurance", "bonds", "loans",
    ),
    "relationships": (
        "dating", "marriage", "romance", "breakup", "love", "partner", "intimacy", "wedding",
        "divorce", "friendship", "boyfriend", "girlfriend", "couples", "communication",
        "jealousy", "trust", "heartbreak", "first date", "soulmate", "commitment", "flirting",
        "long distance", "attachment", "honeymoon", "crush", "apps for dating",
    ),
    "language learning": (
        "vocabulary", "grammar", "pronunciation", "fluency", "spanish lessons", "verbs",
        "conversation practice", "phrases", "accent", "bilingual", "translation", "idioms",
        "beginner lesson", "listening practice", "conjugation", "dialogue", "slang", "mandarin",
        "french lessons", "german lessons", "native speaker", "sentences", "flashcards",
        "language exchange", "intermediate", "alphabet",
    ),
}

TOPICS: tuple[str, ...] = tuple(TOPIC_VOCAB)

# Generic words that appear in every topic's text: noise the embedding has to see through.
FILLER: tuple[str, ...] = (
    "episode", "today", "week", "talk", "story", "conversation", "guest", "special", "part",
    "people", "life", "time", "world", "new", "best", "big", "inside", "behind", "why", "how",
    "everything", "real", "first", "last", "great", "little", "secret", "truth", "ultimate",
    "live", "questions", "answers", "listeners", "thoughts", "lessons",
)

FIRST_NAMES: tuple[str, ...] = (
    "Alex", "Maya", "Jordan", "Priya", "Sam", "Elena", "Marcus", "Aisha", "Tom", "Lucia",
    "Ben", "Hannah", "Diego", "Sofia", "Kenji", "Grace", "Omar", "Clara", "Felix", "Nadia",
    "Leo", "Ruth", "Isaac", "Zoe", "Mateo", "Freya", "Kwame", "Ingrid", "Raj", "Chloe",
    "Pablo", "Greta", "Theo", "Amara", "Jonas", "Lena", "Victor", "Mia", "Hugo", "Nora",
)
LAST_NAMES: tuple[str, ...] = (
    "Rivera", "Chen", "Okafor", "Schmidt", "Garcia", "Patel", "Nakamura", "Johansson", "Brooks",
    "Moreau", "Kowalski", "Haddad", "Fischer", "Lopez", "Walsh", "Kim", "Novak", "Bauer",
    "Mensah", "Silva", "Murphy", "Rossi", "Weber", "Jensen", "Castillo", "Ahmed", "Becker",
    "Fernandez", "Hughes", "Lindqvist",
)

# locale -> (country, share of users); show locales use the same keys.
LOCALES: dict[str, tuple[str, float]] = {
    "en-US": ("US", 0.50),
    "en-GB": ("GB", 0.17),
    "es-ES": ("ES", 0.13),
    "de-DE": ("DE", 0.12),
    "fr-FR": ("FR", 0.08),
}

SHOW_TITLE_PATTERNS: tuple[str, ...] = (
    "The {w1} {w2} Show",
    "{W1} Hour",
    "{host}'s {W1} Podcast",
    "{W1} & {W2}",
    "All About {W1}",
    "The {W1} Report",
    "{W1} Weekly",
    "Deep Dive: {W1}",
    "{W1} Unfiltered",
    "Talking {W1} with {host}",
)

EPISODE_TITLE_PATTERNS: tuple[str, ...] = (
    "{W1} and the {w2} of {w3}",
    "Why {w1} matters: {w2} and {w3}",
    "{f1} {w1}: {W2}, {w3}",
    "The {f1} {w1} episode",
    "{W1}, {w2} and {w3} with {guest}",
    "Inside the {w1}: {f1} {w2}",
    "{guest} on {w1} and {w2}",
    "{W1} {w2}: {f1} {f2}",
    "How {w1} shapes {w2}",
    "{W1} Q&A: {w2}, {w3}",
)

DESCRIPTION_PATTERNS: tuple[str, ...] = (
    "{host} and {guest} talk about {w1}, {w2} and {w3}. {F1} {f2} on {w4} and {w5}.",
    "This {f1} we dig into {w1} and {w2}. {guest} joins {host} to explain {w3}, {w4} and why {w5} matters.",
    "{F1} {w1}: {host} looks at {w2}, {w3} and the {f2} {w4}. Plus {w5}.",
    "A {f1} chat on {w1} and {w2} with {guest}. We cover {w3}, {w4}, {w5} and {f2} listener questions.",
    "{host} breaks down {w1}, {w2} and {w3}, then {guest} shares {f1} {f2} about {w4} and {w5}.",
)

SHOW_DESCRIPTION_PATTERNS: tuple[str, ...] = (
    "{host} hosts a {cadence} show about {w1}, {w2} and {w3}, with {f1} guests and {w4}.",
    "Every {unit}, {host} explores {w1}, {w2}, {w3} and {w4}. {F1} {f2} for anyone into {w5}.",
    "Your {cadence} guide to {w1} and {w2}: {host} on {w3}, {w4} and {w5}.",
)
