"""Crawl parameters (defaults follow TalkVid's downloader)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CrawlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_request_interval_s: float = Field(0.5, ge=0, description="global spacing between requests per egress")
    retries: int = Field(10, ge=0)
    fragment_retries: int = Field(10, ge=0)
