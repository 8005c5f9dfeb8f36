"""yt-dlp through its Python API: listing a source flat, downloading one video with TalkVid-grade options,
checking availability without downloading. Every HTTP request yt-dlp makes (pages, APIs, media, retries,
subtitles) passes the egress spacer first."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.postprocessor import PostProcessor
from yt_dlp.utils import YoutubeDLError

from talkvid_ops.catalog.status import ErrorClass
from talkvid_ops.config.crawl import CrawlConfig
from talkvid_ops.crawl.errors import Classified, classify_exception
from talkvid_ops.crawl.politeness import Spacer, backoff_delay
from talkvid_ops.crawl.sources import SourceSettings, policy_reason

log = logging.getLogger("talkvid.crawl.ytdlp")
MAX_URL_HOPS = 3  # a listing that answers "see this other URL" is followed this many times


class FetchError(Exception):
    """A yt-dlp failure, classified."""

    def __init__(self, classified: Classified):
        super().__init__(classified.message)
        self.classified = classified


class _Logger:
    """yt-dlp's messages into our logging (yt-dlp's errors are also raised and recorded in the catalog)."""

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info(msg)

    def error(self, msg: str) -> None:
        log.info(msg)


class PoliteYoutubeDL(yt_dlp.YoutubeDL):
    """YoutubeDL whose every HTTP request waits for the egress spacer: `urlopen` is the one door that extractors and
    the HTTP downloader (including its retries and fragments) go through."""

    def __init__(self, params: dict[str, Any], spacer: Spacer):
        self._spacer = spacer
        super().__init__(params)

    def urlopen(self, req):
        self._spacer.wait()
        try:
            return super().urlopen(req)
        finally:
            self._spacer.mark()


def base_options(config: CrawlConfig, cookiefile: str | None) -> dict[str, Any]:
    """Options every call shares: quiet, our logger, timeouts, cookies, retries with exponential back-off."""

    def sleep(n: int) -> float:
        return backoff_delay(n, config.retry_backoff_base_s, config.retry_backoff_max_s)

    options: dict[str, Any] = {
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": _Logger(),
        "socket_timeout": config.socket_timeout_s,
        "retries": config.retries,
        "fragment_retries": config.fragment_retries,
        "extractor_retries": config.extractor_retries,
        "file_access_retries": 3,
        "retry_sleep_functions": {"http": sleep, "fragment": sleep, "extractor": sleep, "file_access": sleep},
        "color": {"stdout": "never", "stderr": "never"},
    }
    if cookiefile:
        options["cookiefile"] = cookiefile
    return options


def subtitle_languages(settings: SourceSettings) -> list[str]:
    """Subtitle tracks to fetch: the wanted languages with their variants (en -> en, en-US, en-orig), English when
    none is set. Never "all": YouTube offers a machine translation into every language, and fetching them gets a
    session rate-limited."""
    return [f"{lang}.*" for lang in (settings.languages or ["en"])] + ["-live_chat"]


def download_options(config: CrawlConfig, settings: SourceSettings, cookiefile: str | None, work_dir: Path, stem: str) -> dict[str, Any]:
    """TalkVid-grade download options: best video at or above the minimum height plus best audio, merged to mp4;
    subtitles and auto-subtitles as VTT; info JSON and description beside the media; files named from our id."""
    height = settings.min_height
    options = base_options(config, cookiefile)
    options.update(
        {
            # `>=?` keeps formats whose height is unknown (the generic extractor reports none): the probe decides.
            "format": f"bv*[height>=?{height}]+ba/b[height>=?{height}]",
            "merge_output_format": "mp4",
            "outtmpl": {"default": f"{stem}.%(ext)s"},
            "paths": {"home": str(work_dir), "temp": str(work_dir)},
            "writesubtitles": True,
            "writeautomaticsub": True,
            "subtitleslangs": subtitle_languages(settings),
            "subtitlesformat": "vtt",
            "writeinfojson": True,
            "writedescription": True,
            "noplaylist": True,
            "continuedl": True,  # a retried attempt resumes the .part file left in the work dir
            "overwrites": False,
            "sleep_interval": settings.sleep_interval_s or None,
            "max_sleep_interval": settings.max_sleep_interval_s,
            "ratelimit": settings.max_download_rate,
        }
    )
    return {k: v for k, v in options.items() if v is not None}


class _ScrubInfoJson(PostProcessor):
    """Scrubs the info JSON as soon as yt-dlp has written it, before the media transfer starts: a crawler killed
    mid-download must not leave cookies on disk."""

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        path = info.get("infojson_filename")
        if path and Path(path).exists():
            scrub_info_json(Path(path))
        return [], info


@dataclass
class Fetched:
    """What a download produced: the info dict, the files, or the reason the source's policy skipped it."""

    info: dict[str, Any]
    media: Path | None = None
    subtitles: list[Path] = field(default_factory=list)  # the preferred track first
    rejected: str | None = None


def _subtitle_files(info: dict[str, Any], languages: list[str]) -> list[Path]:
    """Written subtitle files, preferred first: the wanted languages in order, uploaded tracks before automatic ones."""
    requested = info.get("requested_subtitles") or {}
    manual = set((info.get("subtitles") or {}).keys())
    order = languages or ["en"]

    def rank(lang: str) -> tuple[int, int, str]:
        position = next((i for i, w in enumerate(order) if lang == w or lang.startswith(w + "-")), len(order))
        return (position, 0 if lang in manual else 1, lang)

    files = []
    for lang in sorted(requested, key=rank):
        path = requested[lang].get("filepath")
        if path and Path(path).exists():
            files.append(Path(path))
    return files


def scrub_info_json(path: Path) -> None:
    """Remove cookies that yt-dlp copies into format entries of the info JSON (they are credentials)."""

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k.lower() != "cookies" and k.lower() != "cookie"}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(scrub(data), ensure_ascii=False), encoding="utf-8")


def fetch_video(url: str, options: dict[str, Any], settings: SourceSettings, spacer: Spacer) -> Fetched:
    """Download one video into the work dir named by `options`; raises FetchError (classified) on failure."""
    rejected: list[str] = []

    def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        reason = policy_reason(info, settings)
        if reason:
            rejected.append(reason)
        return reason

    try:
        with PoliteYoutubeDL({**options, "match_filter": match_filter}, spacer) as ydl:
            ydl.add_post_processor(_ScrubInfoJson(), when="before_dl")
            info = ydl.sanitize_info(ydl.extract_info(url, download=True))
    except (YoutubeDLError, OSError) as exc:
        raise FetchError(classify_exception(exc)) from exc
    if rejected:
        return Fetched(info=info, rejected=rejected[0])
    downloads = info.get("requested_downloads") or []
    media = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if media is None or not media.exists():
        raise FetchError(Classified(ErrorClass.TRANSIENT, "yt-dlp finished without writing a media file"))
    return Fetched(info=info, media=media, subtitles=_subtitle_files(info, settings.languages))


def _extract_following(ydl: yt_dlp.YoutubeDL, url: str, hop_types: tuple[str, ...]) -> dict[str, Any]:
    """Extract `url` without processing, following results that point elsewhere (of `hop_types`) a few times."""
    result = ydl.extract_info(url, download=False, process=False)
    for _ in range(MAX_URL_HOPS):
        if result.get("_type") not in hop_types:
            break
        result = ydl.extract_info(result["url"], download=False, process=False, ie_key=result.get("ie_key"))
    return result


def list_entries(url: str, options: dict[str, Any], spacer: Spacer) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Entries of a source listed flat (no video page is visited), lazily: (entry, the listing's own URL).

    A single video yields itself. Raises FetchError when the listing fails.
    """
    try:
        with PoliteYoutubeDL(options, spacer) as ydl:
            result = _extract_following(ydl, url, ("url",))
            if result.get("_type") in ("playlist", "multi_video"):
                for entry in result.get("entries") or []:
                    if entry:
                        yield entry, result.get("webpage_url") or url
            else:
                yield result, None
    except (YoutubeDLError, OSError) as exc:
        raise FetchError(classify_exception(exc)) from exc


def check_available(url: str, options: dict[str, Any], spacer: Spacer) -> None:
    """Ask the site about `url` without downloading media; raises FetchError (classified) when it fails."""
    try:
        with PoliteYoutubeDL({**options, "noplaylist": True}, spacer) as ydl:
            # through to the media: a page that is still there may embed a video that is not
            _extract_following(ydl, url, ("url", "url_transparent"))
    except (YoutubeDLError, OSError) as exc:
        raise FetchError(classify_exception(exc)) from exc
