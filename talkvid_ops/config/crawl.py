"""Crawl parameters shared by every source (defaults follow TalkVid's downloader; per-source settings live in
`talkvid_ops.crawl.sources.SourceSettings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CrawlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_request_interval_s: float = Field(0.5, ge=0, description="global spacing between HTTP requests per egress")
    egress_intervals_s: dict[str, float] = Field(default_factory=dict, description="per-egress spacing overriding min_request_interval_s (egress name -> s)")
    retries: int = Field(10, ge=0, description="yt-dlp retries of one HTTP transfer")
    fragment_retries: int = Field(10, ge=0)
    extractor_retries: int = Field(3, ge=0)
    retry_backoff_base_s: float = Field(1.0, ge=0, description="yt-dlp's sleep before retry n is base * 2**n")
    retry_backoff_max_s: float = Field(60.0, ge=0)
    socket_timeout_s: float = Field(30.0, gt=0)
    max_attempts: int = Field(5, ge=1, description="crawl runs that may try a video that keeps failing transiently")
    transient_retry_after_s: float = Field(900.0, ge=0, description="wait before the next run retries a transient failure (doubles per attempt)")
    pause_base_s: float = Field(3600.0, ge=0, description="first pause of a throttled source (doubles per level)")
    pause_max_s: float = Field(7 * 86400.0, ge=0)

    def interval_for(self, egress: str) -> float:
        return self.egress_intervals_s.get(egress, self.min_request_interval_s)
