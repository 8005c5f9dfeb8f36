"""Source kinds, YouTube URL handling, settings, items from recorded yt-dlp info dicts, policy, cookie references,
and the yt-dlp options a download gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from yt_dlp.extractor import gen_extractor_classes

from talkvid_ops.config.crawl import CrawlConfig
from talkvid_ops.crawl.cookies import RunCookieFolder, cookies_path
from talkvid_ops.crawl.sources import (
    LOCAL_FOLDER,
    PAGE,
    PLATFORM_WEB,
    PLATFORM_YOUTUBE,
    URL_LIST,
    YOUTUBE_CHANNEL,
    YOUTUBE_PLAYLIST,
    YOUTUBE_SEARCH,
    SourceSettings,
    classify_locator,
    default_name,
    discovery_url,
    item_for_url,
    item_from_entry,
    platform_key,
    policy_reason,
    read_url_list,
    youtube_video_id,
)
from talkvid_ops.crawl.ytdlp import _subtitle_files, download_options, scrub_info_json, subtitle_languages
from talkvid_ops.errors import ConfigError, TalkvidError

DATA = Path(__file__).parents[1] / "data" / "crawl"


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize(
    "url, video_id",
    [
        ("https://youtu.be/dQw4w9WgXcQ?si=Hh3kJ0aB9xY2zQ1w", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&t=42s", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/watch?feature=share&v=a-9_ZzY8kLm", "a-9_ZzY8kLm"),
        ("https://www.youtube.com/shorts/a-9_ZzY8kLm?feature=share", "a-9_ZzY8kLm"),
        ("https://www.youtube.com/embed/T7mWq2Rz0sE", "T7mWq2Rz0sE"),
        ("https://www.youtube.com/live/T7mWq2Rz0sE?si=abc", "T7mWq2Rz0sE"),
        ("https://www.youtube.com/watch?v=tooShort", None),
        ("https://www.youtube.com/@exampletalks", None),
        ("https://vimeo.com/123456789", None),
    ],
)
def test_youtube_video_ids(url, video_id):
    assert youtube_video_id(url) == video_id


@pytest.mark.parametrize(
    "locator, kind, normalised",
    [
        ("https://www.youtube.com/@exampletalks", YOUTUBE_CHANNEL, "https://www.youtube.com/@exampletalks/videos"),
        ("https://www.youtube.com/@exampletalks/streams", YOUTUBE_CHANNEL, "https://www.youtube.com/@exampletalks/streams"),
        ("https://www.youtube.com/@exampletalks/featured", YOUTUBE_CHANNEL, "https://www.youtube.com/@exampletalks/videos"),
        ("https://www.youtube.com/channel/UCq6aw03lNILzV96UvEAASfQ", YOUTUBE_CHANNEL, "https://www.youtube.com/channel/UCq6aw03lNILzV96UvEAASfQ/videos"),
        ("https://www.youtube.com/c/ExampleTalks/videos", YOUTUBE_CHANNEL, "https://www.youtube.com/c/ExampleTalks/videos"),
        (
            "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&si=x",
            YOUTUBE_PLAYLIST,
            "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG",
        ),
        ("https://www.youtube.com/results?search_query=talking+head+interview", YOUTUBE_SEARCH, "talking head interview"),
        ("ytsearch50:talking head interview", YOUTUBE_SEARCH, "talking head interview"),
        ("https://youtu.be/dQw4w9WgXcQ?si=abc", PAGE, "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        ("https://example.org/talks/index.html#top", PAGE, "https://example.org/talks/index.html"),
    ],
)
def test_locators_are_recognised_and_normalised(locator, kind, normalised):
    assert classify_locator(locator) == (kind, normalised)


def test_local_locators_and_bad_ones(tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text("# talks\nhttps://youtu.be/dQw4w9WgXcQ?si=x\n\n  https://example.org/a.mp4  \n")
    assert classify_locator(str(tmp_path)) == (LOCAL_FOLDER, str(tmp_path.resolve()))
    assert classify_locator(str(urls)) == (URL_LIST, str(urls.resolve()))
    assert read_url_list(str(urls)) == ["https://youtu.be/dQw4w9WgXcQ?si=x", "https://example.org/a.mp4"]
    with pytest.raises(TalkvidError, match="pass --kind"):
        classify_locator(str(tmp_path / "nothing"))
    with pytest.raises(TalkvidError, match="youtube_channel source, not youtube_playlist"):
        classify_locator("https://www.youtube.com/@exampletalks", kind=YOUTUBE_PLAYLIST)
    with pytest.raises(TalkvidError, match="not a video, channel, playlist or search"):
        classify_locator("https://www.youtube.com/feed/trending")


def test_a_media_file_or_a_file_without_urls_is_refused_as_a_url_list(tmp_path, pyfeat_media):
    video = tmp_path / "talk.mp4"
    video.write_bytes(pyfeat_media["single_face.mp4"].read_bytes())
    with pytest.raises(TalkvidError, match=r"talk.mp4 is a media file, not a text file of URLs: register it with `talkvid ingest"):
        classify_locator(str(video))
    with pytest.raises(TalkvidError, match="is a media file"):
        classify_locator(str(video), kind=URL_LIST)
    renamed = tmp_path / "talk.bin"  # a video under another name: its bytes give it away
    renamed.write_bytes(video.read_bytes())
    with pytest.raises(TalkvidError, match="talk.bin: binary content, not a text file of URLs"):
        classify_locator(str(renamed))
    latin1 = tmp_path / "liste.txt"
    latin1.write_bytes("https://example.org/caf\xe9.mp4\n".encode("latin-1"))
    with pytest.raises(TalkvidError, match=r"liste.txt: not UTF-8 text \(byte 0xe9 at offset 23\)"):
        classify_locator(str(latin1))
    config = tmp_path / "talkvid.yaml"
    config.write_text("crawl:\n  retries: 3\n")
    with pytest.raises(TalkvidError, match="no line is an http\\(s\\) URL"):
        classify_locator(str(config))
    later = tmp_path / "to-fill.txt"  # empty for now: the list is read again at every discovery
    later.write_text("# URLs go here\n")
    assert classify_locator(str(later)) == (URL_LIST, str(later.resolve()))
    windows = tmp_path / "windows.txt"
    windows.write_bytes("\ufeffhttps://example.org/a.mp4\r\n".encode("utf-8"))
    assert read_url_list(str(windows)) == ["https://example.org/a.mp4"]  # a byte-order mark is not part of the URL


def extractor_for(url: str) -> str:
    """The key of the extractor yt-dlp hands `url` to: the first that says it is suitable (Generic comes last)."""
    return next(ie.ie_key() for ie in gen_extractor_classes() if ie.suitable(url))


def test_a_search_is_listed_by_the_installed_yt_dlps_youtube_search_extractor():
    # yt-dlp dropped `ytsearchdate` (YouTube no longer sorts search by date): that prefix falls to the generic
    # extractor, which fails every run with "Unsupported url scheme"
    settings = SourceSettings(search_results=30)
    url = discovery_url(YOUTUBE_SEARCH, "talking head", settings)
    assert extractor_for(url) == "YoutubeSearch"
    search = next(ie for ie in gen_extractor_classes() if ie.ie_key() == "YoutubeSearch")
    assert search._match_valid_url(url).group("prefix", "query") == ("30", "talking head")  # search_results are listed
    assert extractor_for("ytsearchdate30:talking head") == "Generic"  # what the old URL got
    channel = discovery_url(YOUTUBE_CHANNEL, "https://www.youtube.com/@x/videos", settings)
    assert (channel, extractor_for(channel)) == ("https://www.youtube.com/@x/videos", "YoutubeTab")
    playlist = discovery_url(YOUTUBE_PLAYLIST, "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", settings)
    assert extractor_for(playlist) == "YoutubeTab"


@pytest.mark.parametrize(
    "locator, name",
    [
        ("https://youtu.be/dQw4w9WgXcQ?si=abc", "youtube:dQw4w9WgXcQ"),
        ("https://www.youtube.com/watch?v=a-9_ZzY8kLm", "youtube:a-9_ZzY8kLm"),
        ("https://www.youtube.com/@exampletalks", "youtube:@exampletalks"),
        ("https://www.youtube.com/@exampletalks/streams", "youtube:@exampletalks/streams"),
        ("https://www.youtube.com/channel/UCq6aw03lNILzV96UvEAASfQ", "youtube:channel/UCq6aw03lNILzV96UvEAASfQ"),
        ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "youtube:playlist:PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"),
        ("https://www.youtube.com/results?search_query=talking+head", "youtube:search:talking head"),
        ("https://example.org/watch?id=5#t=3", "example.org/watch?id=5"),
        ("https://example.org/talks/", "example.org/talks"),
    ],
)
def test_default_names_tell_sources_apart(locator, name):
    assert default_name(*classify_locator(locator)) == name


def test_default_names_fit_the_column():
    assert len(default_name(YOUTUBE_SEARCH, "talk " * 100)) == 255


def test_settings_defaults_and_errors_name_the_field():
    assert SourceSettings().min_height == 1080
    assert SourceSettings(languages=[" EN ", "pt-BR"]).languages == ["en", "pt-br"]
    with pytest.raises(ConfigError, match="min_height"):
        SourceSettings.load({"min_height": -1})
    with pytest.raises(ConfigError, match="languages"):
        SourceSettings.load({"languages": ["english!"]})
    with pytest.raises(ConfigError, match="max_hight"):
        SourceSettings.load({"max_hight": 1})
    with pytest.raises(ConfigError, match="not its contents"):
        SourceSettings.load({"cookies_file": "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret"})
    with pytest.raises(ConfigError, match="needs a sleep_interval_s above 0"):
        SourceSettings.load({"max_sleep_interval_s": 5})
    with pytest.raises(ConfigError, match="not both"):
        SourceSettings.load({"cookies_file": "/c.txt", "cookies_connection": "yt"})


def test_items_from_a_recorded_channel_listing():
    listing = recorded("youtube_channel_flat.json")
    items = [item_from_entry(e, listing["webpage_url"]) for e in listing["entries"]]
    videos = [i for i in items if i is not None]
    assert items[3] is None  # the nested playlist is not a video
    assert [(v.platform, v.platform_id) for v in videos] == [
        (PLATFORM_YOUTUBE, "Xq3bP0aE7cQ"),
        (PLATFORM_YOUTUBE, "a-9_ZzY8kLm"),
        (PLATFORM_YOUTUBE, "T7mWq2Rz0sE"),
        (PLATFORM_YOUTUBE, "Xq3bP0aE7cQ"),
    ]
    assert videos[1].url == "https://www.youtube.com/watch?v=a-9_ZzY8kLm"  # shorts normalised to a watch URL
    assert videos[2].duration == 14410.0 and videos[0].title == "How we light a studio interview"
    # a url_list line of the same video is the same catalog item as the listing's entry
    line = item_for_url("https://youtu.be/Xq3bP0aE7cQ?si=abc")
    assert (line.platform, line.platform_id, line.url) == (videos[0].platform, videos[0].platform_id, videos[0].url)


def test_generic_items_are_keyed_by_url_and_long_keys_fit_the_column():
    entry = {"id": "talks-1", "title": "Talks (1)", "extractor_key": "HTML5MediaEmbed", "formats": [{"url": "http://h/a.webm"}, {"url": "http://h/a.mp4"}]}
    item = item_from_entry(entry, "http://h/talks.html")
    assert (item.platform, item.platform_id, item.url) == (PLATFORM_WEB, "http://h/a.mp4", "http://h/a.mp4")
    page = item_from_entry({"_type": "url_transparent", "id": "talk", "extractor_key": "Generic", "webpage_url": "http://h/talk.html", "duration": 2}, None)
    assert (page.platform_id, page.duration) == ("http://h/talk.html", 2.0)
    long_url = "http://h/" + "a" * 400
    assert item_for_url(long_url).platform_id == platform_key(long_url) and len(platform_key(long_url)) <= 255
    assert item_for_url(long_url).url == long_url


def test_policy_on_a_recorded_video_info():
    info = recorded("youtube_video_info.json")
    assert policy_reason(info, SourceSettings()) is None
    assert policy_reason(info, SourceSettings(languages=["en"])) is None
    assert "language 'en'" in policy_reason(info, SourceSettings(languages=["de", "fr"]))
    assert "max_duration_s 600" in policy_reason(info, SourceSettings(max_duration_s=600))
    below = dict(info, formats=[f for f in info["formats"] if (f.get("height") or 0) < 1080])
    assert policy_reason(below, SourceSettings()) == "best available height 720 below the source's min_height 1080"
    assert policy_reason(below, SourceSettings(min_height=720)) is None


def test_policy_never_rejects_what_is_unknown():
    generic = {"id": "talk", "formats": [{"url": "http://h/a.mp4", "vcodec": None, "height": None}], "duration": None}
    assert policy_reason(generic, SourceSettings(min_height=2160, max_duration_s=1, languages=["de"])) is None


def test_download_options_are_talkvid_grade(tmp_path):
    config = CrawlConfig(retries=7, fragment_retries=9, retry_backoff_base_s=2, retry_backoff_max_s=20)
    settings = SourceSettings(min_height=1080, languages=["de"], sleep_interval_s=2, max_sleep_interval_s=5, max_download_rate=500_000)
    options = download_options(config, settings, "/secure/cookies.txt", tmp_path, "abc123")
    assert options["format"] == "bv*[height>=?1080]+ba/b[height>=?1080]"
    assert options["merge_output_format"] == "mp4"
    assert options["outtmpl"] == {"default": "abc123.%(ext)s"}  # named from our id, never the title
    assert options["paths"] == {"home": str(tmp_path), "temp": str(tmp_path)}
    assert options["writesubtitles"] and options["writeautomaticsub"] and options["subtitlesformat"] == "vtt"
    assert options["subtitleslangs"] == ["de.*", "-live_chat"]
    assert options["writeinfojson"] and options["writedescription"] and options["noplaylist"]
    assert (options["retries"], options["fragment_retries"]) == (7, 9)
    assert [options["retry_sleep_functions"]["http"](n) for n in range(5)] == [2, 4, 8, 16, 20]
    assert (options["sleep_interval"], options["max_sleep_interval"], options["ratelimit"]) == (2, 5, 500_000)
    assert options["cookiefile"] == "/secure/cookies.txt"
    assert subtitle_languages(SourceSettings()) == ["en.*", "-live_chat"]  # never "all": translated tracks get throttled


def test_preferred_subtitle_is_an_uploaded_track_in_the_first_wanted_language(tmp_path):
    info = recorded("youtube_video_info.json")
    requested = {}
    for lang in ("de", "en-orig", "en"):
        path = tmp_path / f"v.{lang}.vtt"
        path.write_text("WEBVTT\n")
        requested[lang] = {"ext": "vtt", "filepath": str(path)}
    files = _subtitle_files(dict(info, requested_subtitles=requested), ["en", "de"])
    assert [f.name for f in files] == ["v.en.vtt", "v.en-orig.vtt", "v.de.vtt"]


def test_cookies_are_a_reference_resolved_only_while_needed(tmp_path):
    cookie_text = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-value\n"
    jar = tmp_path / "cookies.txt"
    jar.write_text(cookie_text)
    with RunCookieFolder(tmp_path / "state" / "cookies", "run1") as folder:
        with cookies_path(SourceSettings(cookies_file=str(jar)), folder) as path:
            assert path == str(jar)
        with cookies_path(SourceSettings(), folder) as path:
            assert path is None
        env = {"AIRFLOW_CONN_YT_COOKIES": json.dumps({"conn_type": "generic", "extra": {"cookies": cookie_text}})}
        settings = SourceSettings(cookies_connection="yt_cookies")
        assert "secret-value" not in settings.model_dump_json()  # the catalog stores only the connection id
        with cookies_path(settings, folder, env) as path:
            written = Path(path)
            assert written.read_text() == cookie_text and oct(written.stat().st_mode & 0o777) == "0o600"
            assert written.parent == folder.path and oct(folder.path.stat().st_mode & 0o777) == "0o700"
        assert not written.exists()
        uri_env = {"AIRFLOW_CONN_YT_COOKIES": f"generic://?cookies_file={jar}"}
        with cookies_path(settings, folder, uri_env) as path:
            assert path == str(jar)
        with pytest.raises(TalkvidError, match="AIRFLOW_CONN_YT_COOKIES is not set"), cookies_path(settings, folder, {}):
            pass
        with pytest.raises(TalkvidError, match="does not exist"), cookies_path(SourceSettings(cookies_file=str(tmp_path / "gone.txt")), folder):
            pass
        kept = folder.path
    assert not kept.exists()  # the run's folder goes with the run


def test_scrub_info_json_removes_cookies_yt_dlp_copies_into_formats(tmp_path):
    path = tmp_path / "v.info.json"
    path.write_text(json.dumps({"id": "v", "cookies": "SID=secret", "formats": [{"url": "u", "cookies": "SID=secret; Domain=.youtube.com"}]}))
    scrub_info_json(path)
    assert "secret" not in path.read_text() and json.loads(path.read_text())["formats"] == [{"url": "u"}]
