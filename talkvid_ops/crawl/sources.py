"""Sources: what kinds exist, how a locator is recognised and normalised (YouTube URLs in particular), the
settings each source carries, how discovered entries become catalog keys, and which items a source accepts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urldefrag, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Source
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config import display_path, path_from_stored, stored_path
from talkvid_ops.errors import TalkvidError, format_validation_error
from talkvid_ops.ids import make_id

if TYPE_CHECKING:
    from talkvid_ops.context import Context

YOUTUBE_CHANNEL = "youtube_channel"
YOUTUBE_PLAYLIST = "youtube_playlist"
YOUTUBE_SEARCH = "youtube_search"
URL_LIST = "url_list"  # a text file of URLs, one video per line, read again at every discovery
PAGE = "page"  # any URL yt-dlp understands: one video or a playlist-like page
LOCAL_FOLDER = "local_folder"  # media files on disk; a watched folder's new files are ingested by each download run
KINDS = (YOUTUBE_CHANNEL, YOUTUBE_PLAYLIST, YOUTUBE_SEARCH, URL_LIST, PAGE, LOCAL_FOLDER)
REMOTE_KINDS = tuple(k for k in KINDS if k != LOCAL_FOLDER)

PLATFORM_YOUTUBE = "youtube"
PLATFORM_WEB = "web"  # anything the generic extractor handles: keyed by URL
PLATFORM_LOCAL = "local"  # ingested files: keyed by absolute path
GENERIC_EXTRACTORS = {"generic", "html5mediaembed"}
MAX_PLATFORM_ID = 255
MAX_NAME = 255
MEDIA_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv", ".3gp"}
BINARY_SNIFF_BYTES = 8192  # media and archives have NUL bytes in their first blocks; text never does

_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtube-nocookie.com", "www.youtube-nocookie.com"}
_VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
_CHANNEL_TABS = {"videos", "shorts", "streams"}
_SEARCH_PREFIX_RE = re.compile(r"^ytsearch(?:date)?(?:\d+|all)?:(?P<query>.+)$", re.IGNORECASE)
_CONNECTION_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_URL_RE = re.compile(r"^https?://", re.IGNORECASE)


class SourceSettings(BaseModel):
    """What a source accepts and how politely it is crawled. Stored as JSON on the source row."""

    model_config = ConfigDict(extra="forbid")

    min_height: int = Field(1080, ge=0, description="TalkVid's bar: reject videos shorter than this (pixels)")
    max_duration_s: float | None = Field(None, gt=0)
    languages: list[str] = Field(default_factory=list, description="wanted languages (ISO 639-1); empty: any")
    max_new_per_run: int = Field(200, ge=1, description="new catalog items per discovery run")
    search_results: int = Field(200, ge=1, description="how many results a YouTube search lists")
    egress: str = Field("default", min_length=1, description="the network exit this source shares its spacing with")
    sleep_interval_s: float = Field(0.0, ge=0, description="yt-dlp's sleep before each download")
    max_sleep_interval_s: float | None = Field(None, ge=0, description="sleep a random time between the two instead")
    max_download_rate: int | None = Field(None, gt=0, description="bytes per second")
    cookies_file: str | None = Field(None, description="path of a Netscape cookies file (never its contents)")
    cookies_connection: str | None = Field(None, description="Airflow connection id holding the cookies")
    watch: bool = Field(True, description="local_folder only: each download run ingests files added to the folder")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value if v.strip()]
        for lang in cleaned:
            if not re.fullmatch(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?", lang):
                raise ValueError(f"{lang!r} is not a language code such as 'en' or 'pt-br'")
        return cleaned

    @field_validator("cookies_file")
    @classmethod
    def _cookies_file(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\t" in value or "Netscape HTTP Cookie File" in value):
            raise ValueError("give the path of the cookies file, not its contents")
        return value

    @field_validator("cookies_connection")
    @classmethod
    def _cookies_connection(cls, value: str | None) -> str | None:
        if value is not None and not _CONNECTION_ID_RE.match(value):
            raise ValueError("an Airflow connection id (letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _one_cookie_reference(self) -> SourceSettings:
        if self.cookies_file and self.cookies_connection:
            raise ValueError("set cookies_file or cookies_connection, not both")
        if self.max_sleep_interval_s is not None and not 0 < self.sleep_interval_s <= self.max_sleep_interval_s:
            # yt-dlp ignores an upper bound without a lower one
            raise ValueError("max_sleep_interval_s needs a sleep_interval_s above 0 and not above it")
        return self

    @classmethod
    def load(cls, data: dict[str, Any] | None, where: str = "source settings") -> SourceSettings:
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise format_validation_error(where, exc) from None


# --- YouTube URLs -------------------------------------------------------------------------------------------------


def _youtube_parts(url: str):
    parsed = urlparse(url.strip())
    host = (parsed.hostname or "").lower()
    return parsed, host


def youtube_video_id(url: str) -> str | None:
    """The 11-character video id of a YouTube video URL (watch, youtu.be with ?si=, shorts, embed, live), else None."""
    parsed, host = _youtube_parts(url)
    candidate = None
    if host in ("youtu.be", "www.youtu.be"):
        candidate = parsed.path.strip("/").split("/")[0]
    elif host in _YOUTUBE_HOSTS:
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:1] == ["watch"]:
            candidate = (parse_qs(parsed.query).get("v") or [None])[0]
        elif len(parts) >= 2 and parts[0] in ("shorts", "embed", "live", "v", "e"):
            candidate = parts[1]
    return candidate if candidate and _VIDEO_ID_RE.match(candidate) else None


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def classify_youtube_url(url: str) -> tuple[str, str] | None:
    """(kind, normalised locator) for a YouTube URL, or None when the URL is not YouTube's.

    A video URL is a `page` source of its watch URL (a `list=` beside `v=` is ignored: add the playlist URL for the
    playlist); a channel becomes its videos tab (newest first, which keeps discovery incremental); a search
    becomes its query.
    """
    parsed, host = _youtube_parts(url)
    if host not in _YOUTUBE_HOSTS and host not in ("youtu.be", "www.youtu.be"):
        return None
    video_id = youtube_video_id(url)
    if video_id:
        return PAGE, watch_url(video_id)
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    query = parse_qs(parsed.query)
    if parts[:1] == ["playlist"] and query.get("list"):
        return YOUTUBE_PLAYLIST, f"https://www.youtube.com/playlist?list={query['list'][0]}"
    if parts[:1] == ["results"] and (query.get("search_query") or query.get("q")):
        return YOUTUBE_SEARCH, (query.get("search_query") or query["q"])[0].strip()
    if parts and parts[0].startswith("@"):
        base = f"https://www.youtube.com/{parts[0]}"
        tab = parts[1] if len(parts) > 1 and parts[1] in _CHANNEL_TABS else "videos"
        return YOUTUBE_CHANNEL, f"{base}/{tab}"
    if len(parts) >= 2 and parts[0] in ("channel", "c", "user"):
        tab = parts[2] if len(parts) > 2 and parts[2] in _CHANNEL_TABS else "videos"
        return YOUTUBE_CHANNEL, f"https://www.youtube.com/{parts[0]}/{parts[1]}/{tab}"
    raise TalkvidError(f"{url}: a YouTube URL that is not a video, channel, playlist or search")


def classify_locator(locator: str, kind: str | None = None) -> tuple[str, str]:
    """(kind, normalised locator) of what a user passed to `talkvid source add`."""
    text = locator.strip()
    if not text:
        raise TalkvidError("empty source locator")
    if kind is not None and kind not in KINDS:
        raise TalkvidError(f"unknown source kind {kind!r}; one of {', '.join(KINDS)}")
    search = _SEARCH_PREFIX_RE.match(text)
    if kind == YOUTUBE_SEARCH or search:
        if search:
            text = search.group("query").strip()
        elif re.match(r"https?://", text):
            found = classify_youtube_url(text)
            if not found or found[0] != YOUTUBE_SEARCH:
                raise TalkvidError(f"{locator}: not a YouTube search URL")
            text = found[1]
        return YOUTUBE_SEARCH, text
    if _URL_RE.match(text):
        found = classify_youtube_url(text)
        if found is not None:
            if kind not in (None, found[0]):
                raise TalkvidError(f"{locator} is a {found[0]} source, not {kind}")
            return found
        if kind not in (None, PAGE):
            raise TalkvidError(f"{locator}: a URL can only be a {PAGE} source (or a YouTube one)")
        return PAGE, urldefrag(text)[0]
    path = Path(text).expanduser().resolve()
    if kind == LOCAL_FOLDER or (kind is None and path.is_dir()):
        if not path.is_dir():
            raise TalkvidError(f"{display_path(locator)}: no such folder")
        return LOCAL_FOLDER, stored_path(path)
    if kind == URL_LIST or (kind is None and path.is_file()):
        shown = display_path(locator)
        if not path.is_file():
            raise TalkvidError(f"{shown}: no such file (a url_list source is a text file of URLs)")
        if path.suffix.lower() in MEDIA_SUFFIXES:
            raise TalkvidError(f"{shown} is a media file, not a text file of URLs: register it with `talkvid ingest {shown}`")
        lines = read_url_list(stored_path(path))
        if lines and not any(_URL_RE.match(line) for line in lines):
            raise TalkvidError(f"{shown}: no line is an http(s) URL; a url_list source is a text file of URLs, one per line")
        return URL_LIST, stored_path(path)
    raise TalkvidError(f"{display_path(locator)}: neither a URL, nor an existing folder or URL-list file; pass --kind")


def discovery_url(kind: str, locator: str, settings: SourceSettings) -> str:
    """What yt-dlp is asked to list for a remote source (url_list sources are read, not extracted).

    A search lists its first `search_results` results in YouTube's own order: YouTube dropped sorting search by
    upload date, and yt-dlp its `ytsearchdate` prefix with it, so a search is re-listed whole every run and only
    the results the catalog does not hold yet are added.
    """
    if kind == YOUTUBE_SEARCH:
        return f"ytsearch{settings.search_results}:{locator}"
    return locator


def read_url_list(locator: str) -> list[str]:
    """Lines of a url_list file (its stored path): one URL per line; blank lines and `#` comments ignored. A file that
    cannot be read or is not UTF-8 text (a video, an archive) raises TalkvidError saying why."""
    path = path_from_stored(locator)
    shown = display_path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
            if b"\0" in head:
                raise TalkvidError(f"{shown}: binary content, not a text file of URLs (media files go in with `talkvid ingest`)")
            text = (head + fh.read()).decode("utf-8-sig")
    except OSError as exc:
        raise TalkvidError(f"{shown}: cannot read the URL list: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TalkvidError(f"{shown}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); a url_list is a text file of URLs") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- catalog keys of discovered items ----------------------------------------------------------------------------


def platform_key(value: str) -> str:
    """A natural key that fits the catalog column: the value itself, or its digest when it is too long."""
    if len(value) <= MAX_PLATFORM_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Item:
    """One discovered video: its catalog key, the URL to download it from, and what the listing told us."""

    platform: str
    platform_id: str
    url: str
    title: str | None = None
    channel: str | None = None
    duration: float | None = None
    upload_date: str | None = None
    language: str | None = None


def item_for_url(url: str) -> Item:
    """The item of a bare URL (a line of a url_list): YouTube videos by id, anything else by its URL."""
    video_id = youtube_video_id(url)
    if video_id:
        return Item(PLATFORM_YOUTUBE, video_id, watch_url(video_id))
    clean = urldefrag(url.strip())[0]
    return Item(PLATFORM_WEB, platform_key(clean), clean)


def _entry_url(entry: dict[str, Any], parent_url: str | None) -> str | None:
    if entry.get("_type") == "url" and entry.get("url"):
        return entry["url"]
    page = entry.get("webpage_url")
    if page and page != parent_url:
        return page
    formats = entry.get("formats") or []
    if formats and formats[-1].get("url"):
        return formats[-1]["url"]  # an embedded <video>: its best source is a direct link
    return page or entry.get("url")


def item_from_entry(entry: dict[str, Any], parent_url: str | None = None) -> Item | None:
    """The item of one yt-dlp entry (flat playlist entry or single-video result); None if it has no usable URL."""
    url = _entry_url(entry, parent_url)
    if not url:
        return None
    extractor = str(entry.get("ie_key") or entry.get("extractor_key") or "").lower()
    if extractor.startswith("youtube"):
        video_id = entry.get("id") if _VIDEO_ID_RE.match(str(entry.get("id") or "")) else youtube_video_id(url)
        if not video_id:
            return None  # a nested channel tab or playlist, not a video
        base = Item(PLATFORM_YOUTUBE, video_id, watch_url(video_id))
    elif extractor and extractor not in GENERIC_EXTRACTORS and entry.get("id"):
        base = Item(extractor, platform_key(str(entry["id"])), url)
    else:
        base = item_for_url(url)
    duration = entry.get("duration")
    return Item(
        base.platform,
        base.platform_id,
        base.url,
        title=entry.get("title"),
        channel=entry.get("channel") or entry.get("uploader"),
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        upload_date=entry.get("upload_date"),
        language=entry.get("language"),
    )


# --- what a source accepts ---------------------------------------------------------------------------------------


def best_known_height(info: dict[str, Any]) -> tuple[int | None, bool]:
    """(the tallest video format's height, whether some video format has no known height)."""
    heights, unknown = [], False
    for fmt in info.get("formats") or [info]:
        if fmt.get("vcodec") == "none":
            continue
        if isinstance(fmt.get("height"), int):
            heights.append(fmt["height"])
        else:
            unknown = True
    return (max(heights) if heights else None), unknown


def language_matches(language: str | None, wanted: list[str]) -> bool:
    if not wanted or not language:
        return True  # unknown languages are kept: language id after download decides
    lang = language.lower()
    return any(lang == w or lang.startswith(w + "-") or w.startswith(lang + "-") for w in wanted)


def policy_reason(info: dict[str, Any], settings: SourceSettings) -> str | None:
    """Why a source does not want this item (from what is known before downloading), or None.

    Unknown values never reject: the generic extractor reports no height or duration; the file's probe decides.
    """
    duration = info.get("duration")
    if settings.max_duration_s and isinstance(duration, (int, float)) and duration > settings.max_duration_s:
        return f"duration {duration:.0f} s above the source's max_duration_s {settings.max_duration_s:.0f}"
    if not language_matches(info.get("language"), settings.languages):
        return f"language {info.get('language')!r} not among the source's languages {settings.languages}"
    best, unknown = best_known_height(info)
    if best is not None and not unknown and best < settings.min_height:
        return f"best available height {best} below the source's min_height {settings.min_height}"
    return None


# --- source rows --------------------------------------------------------------------------------------------------


def default_name(kind: str, locator: str) -> str:
    """A name that tells sources apart: `youtube:<video id>`, `youtube:@handle`, `youtube:playlist:<id>`,
    `youtube:search:<query>`, a page's host, path and query, a file's or folder's name."""
    if kind in (LOCAL_FOLDER, URL_LIST):
        name = display_path(path_from_stored(locator).name) or locator
    elif kind == YOUTUBE_SEARCH:
        name = f"youtube:search:{locator}"
    elif kind == YOUTUBE_PLAYLIST:
        name = f"youtube:playlist:{parse_qs(urlparse(locator).query).get('list', [''])[0]}"
    elif kind == YOUTUBE_CHANNEL:
        parts = [unquote(p) for p in urlparse(locator).path.split("/") if p]
        name = "youtube:" + "/".join(parts[:-1] if parts[-1:] == ["videos"] else parts)  # the videos tab is the default
    elif youtube_video_id(locator):
        name = f"youtube:{youtube_video_id(locator)}"
    else:
        parsed = urlparse(locator)
        name = (parsed.netloc + parsed.path).rstrip("/") + (f"?{parsed.query}" if parsed.query else "")
    return name[:MAX_NAME]


def add_source(
    session: Session,
    locator: str,
    kind: str | None = None,
    name: str | None = None,
    settings: SourceSettings | None = None,
) -> tuple[str, bool]:
    """Create the source of `locator` (kind guessed when not given), or update the existing one: the name and the
    settings that are given replace its own, those not given are kept. Returns (source id, created?)."""
    kind, locator = classify_locator(locator, kind)
    source_id = make_id("source", kind, locator)
    existing = session.get(Source, source_id)
    row = dict(
        id=source_id,
        kind=kind,
        locator=locator,
        name=name or (existing.name if existing else default_name(kind, locator)),
        settings=settings.model_dump() if settings is not None else (existing.settings if existing else SourceSettings().model_dump()),
    )
    upsert(session, Source, [row], ["kind", "locator"], update=["name", "settings"])
    return source_id, existing is None


def add_url_sources(ctx: Context, urls: list[str], settings: SourceSettings | None = None) -> list[str]:
    """A source for each URL (a `page`, or the YouTube kind it is); returns their ids in order."""
    with ctx.sessions() as session:
        ids = [add_source(session, url, settings=settings)[0] for url in urls]
        session.commit()
    return ids


def find_source(session: Session, ref: str) -> Source:
    """A source by id or by its (unique) name; TalkvidError saying why when there is none or the name is not unique."""
    source = session.get(Source, ref)
    if source is not None:
        return source
    named = session.scalars(select(Source).where(Source.name == ref)).all()
    if len(named) == 1:
        return named[0]
    if named:
        raise TalkvidError(f"{len(named)} sources are named {ref!r}: use the id ({', '.join(s.id for s in named)})")
    raise TalkvidError(f"no source with id or name {ref!r} (see `talkvid source list`)")


def remove_source(session: Session, source_id: str) -> None:
    """Delete a source with its videos and everything derived from them (the catalog cascades; media files stay)."""
    session.execute(delete(Source).where(Source.id == source_id))
