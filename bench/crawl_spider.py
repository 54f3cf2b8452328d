"""The Scrapy side of bench/crawl.sh: the same site, the same scope, Scrapy's
defaults with politeness off, every page's body written to a file (no fsync;
rpcs-crawler fsyncs each page and its record)."""

import hashlib
import os
import sys

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor


class SiteSpider(scrapy.Spider):
    name = "site"

    def __init__(self, root, out, **kw):
        super().__init__(**kw)
        self.start_urls = [root]
        self.out = out
        self.links = LinkExtractor(allow=[r"^http://127\.0\.0\.[0-9]+:"])

    def parse(self, response):
        name = hashlib.sha1(response.url.encode()).hexdigest()
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(response.body)
        for link in self.links.extract_links(response):
            yield response.follow(link, self.parse)


if __name__ == "__main__":
    root, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    process = CrawlerProcess(
        settings={
            "LOG_LEVEL": "WARNING",
            "ROBOTSTXT_OBEY": True,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
        }
    )
    process.crawl(SiteSpider, root=root, out=out)
    process.start()
