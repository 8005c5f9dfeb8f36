"""What the captioner is asked, and the closed list of video categories.

The caption prompt asks for what TalkVid's released descriptions contain (appearance, setting, head and body
motion, expression over the image sequence) and forbids guessing who the person is. Both prompts are hashed; the
hash is stored with every caption and category, so a changed prompt is a new generation of captions.
"""

from __future__ import annotations

from talkvid_ops.ids import content_hash

CAPTION_PROMPT = (
    "The images are frames sampled in order from one video clip of a person talking. Describe the clip in one "
    "paragraph: the person's visible appearance (apparent age range, clothing, hair, accessories), the setting and "
    "lighting, how the head moves and turns over the sequence, any movement of the hands, arms or torso, and the "
    "facial expression. Describe only what is visible. Do not name or guess who the person is, and do not guess "
    "their nationality, religion or other private attributes."
)

# TalkVid's `Video Category` is a topic of the whole video. This closed list covers talking-head video as found on
# video sites; "Other" takes the rest. A human annotation (`talkvid labels import`) always wins over the model's.
CATEGORIES = (
    "Personal Experience",
    "Education",
    "Science & Technology",
    "News & Politics",
    "Business & Finance",
    "Health & Wellness",
    "Lifestyle & Vlog",
    "Entertainment",
    "Arts & Culture",
    "Religion & Spirituality",
    "Sports & Fitness",
    "Other",
)

CATEGORY_INSTRUCTION = (
    "Classify the topic of this video into exactly one of these categories: {categories}.\n\n"
    "Title: {title}\nUploader's description: {description}\nTranscript: {transcript}\n\n"
    "Answer with the category name only."
)


def caption_prompt_hash() -> str:
    return content_hash({"caption": CAPTION_PROMPT})


def category_prompt_hash() -> str:
    return content_hash({"category": CATEGORY_INSTRUCTION, "categories": CATEGORIES})


def category_prompt(title: str | None, description: str | None, transcript: str | None, max_chars: int) -> str:
    """The category question for one video; each text is cut so that the three together stay within `max_chars`."""
    share = max_chars // 3
    parts = {name: (text or "").strip()[:share] or "(none)" for name, text in (("title", title), ("description", description), ("transcript", transcript))}
    return CATEGORY_INSTRUCTION.format(categories="; ".join(CATEGORIES), **parts)
