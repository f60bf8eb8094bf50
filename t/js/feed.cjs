// Reads an RSS feed from a file with podcast-partytime (the Podcast
// Index's parser) and prints what t/29-feed.t checks, as JSON.
//   node t/js/feed.cjs FEED.xml
'use strict';

process.env.PARTYTIME_LOG = process.env.PARTYTIME_LOG || 'silent';

const fs = require('fs');
const pt = require('podcast-partytime');

const xml = fs.readFileSync(process.argv[2], 'utf8');
const feed = pt.parseFeed(xml, { allowMissingGuid: false });

if (!feed) {
    console.log(JSON.stringify({ error: 'not parsed' }));
    process.exit(1);
}

console.log(JSON.stringify({
    title: feed.title,
    link: feed.link,
    description: feed.description,
    language: feed.language,
    author: feed.author,
    owner: feed.owner,
    image: feed.itunesImage || (feed.image && feed.image.url),
    categories: feed.categories,
    explicit: feed.explicit,
    guid: feed.guid,
    locked: feed.locked,
    items: (feed.items || []).map((i) => ({
        title: i.title,
        guid: i.guid,
        pubDate: i.pubDate,
        duration: i.duration,
        image: i.itunesImage || i.image,
        enclosure: i.enclosure,
        alternativeEnclosures: i.alternativeEnclosures,
        transcripts: i.podcastTranscripts,
        chapters: i.podcastChapters,
    })),
}));
