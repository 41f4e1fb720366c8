#!/usr/bin/env python3
"""Generate Spotify-2023-shaped staging CSVs (albums.csv, artists.csv, tracks.csv) at a scale.

    gen_spotify.py OUT_DIR --scale N [--seed S]

Scale N writes N times the rows of examples/spotify/data (20,000 album rows, 1,666 artists,
20,200 tracks at N=1); `--scale 1 --seed 2023` (the default seed) writes exactly that sample.
Same columns, CSV dialect and key relationships at every scale:

* albums.artist_id -> artists.id, albums.track_id -> tracks.id;
* one artist per 12 album rows, 1-20 tracks per album (singles to long albums);
* about 2% of album rows name an artist missing from artists.csv and about 1% of tracks.csv
  rows name a track that no album row has, so inner and outer joins differ;
* fields with commas, quotes and non-ASCII text, empty labels, Python-style genre lists,
  release dates with year, month or day precision.

Deterministic for a given --seed. Standard library only. Album rows are streamed to disk, so
memory stays at the artists and the (id, popularity, explicit) tuples of the tracks.
Adapted from tools/gen_spotify.py (`--tracks N`), with the same random draws in the same order.
"""
import argparse
import csv
import os
import random
import string
import time

SAMPLE_ALBUM_ROWS = 20_000  # rows of examples/spotify/data/albums.csv (the x1 scale)

B62 = string.digits + string.ascii_letters
GENRES = ["pop", "dance pop", "rap", "hip hop", "trap", "rock", "indie rock", "k-pop", "latin",
          "reggaeton", "edm", "house", "country", "r&b", "soul", "jazz", "classical", "metal",
          "punk", "lo-fi", "afrobeats", "desi pop", "j-pop", "sertanejo", "techno", "folk"]
WORDS = ["love", "night", "dance", "heart", "fire", "dream", "city", "blue", "gold", "rain",
         "summer", "lost", "wild", "star", "moon", "road", "home", "time", "girl", "boy",
         "corazón", "noche", "amor", "さくら", "사랑", "été", "Über", "sky", "electric", "echo"]
LABELS = ["Atlantic Records", "Columbia", "Republic Records", "Interscope", "XL Recordings",
          "Sony Music Latin", "HYBE", "Warner Records", "Island Records", "Def Jam", "Epic",
          "Independent", "Capitol Records", "Universal Music", ""]
YEARS = list(range(1960, 2024))
YEAR_WEIGHTS = [1 + (y - 1960) ** 2 for y in YEARS]
TOTALS = [1, 1, 1, 2, 4, 6, 8, 10, 12, 14, 16, 20]  # tracks per album

ALBUM_COLUMNS = ["track_name", "track_id", "track_number", "duration_ms", "album_type", "artists",
                 "total_tracks", "album_name", "release_date", "label", "album_popularity",
                 "album_id", "artist_id", "duration_sec"]
ARTIST_COLUMNS = ["id", "name", "artist_popularity", "artist_genres", "followers"]
TRACK_COLUMNS = ["id", "track_popularity", "explicit"]


class Gen:
    """The random draws of the sample generator, bound to one random.Random."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.choice = self.rng.choice
        self.random = self.rng.random
        self.randint = self.rng.randint

    def sid(self):
        """A 22-character base-62 id, like Spotify's."""
        choice = self.choice
        return "".join([choice(B62) for _ in range(22)])

    def title(self, lo=1, hi=4):
        """A few capitalised words; some with a comma, quotes or a featured artist."""
        choice = self.choice
        t = " ".join([choice(WORDS).capitalize() for _ in range(self.randint(lo, hi))])
        r = self.random()
        if r < 0.04:
            t += ", Pt. " + str(self.randint(2, 3))
        elif r < 0.06:
            t = '"' + t + '"'
        elif r < 0.08:
            t += " (feat. " + choice(WORDS).capitalize() + ")"
        return t

    def release_date(self):
        """A date at day precision, or (10%) at year or month precision."""
        y = self.rng.choices(YEARS, weights=YEAR_WEIGHTS)[0]
        p = self.random()
        if p < 0.08:
            return str(y)
        if p < 0.10:
            return f"{y}-{self.randint(1, 12):02d}"
        return f"{y}-{self.randint(1, 12):02d}-{self.randint(1, 28):02d}"


def generate(out, scale, seed=2023):
    """Write the three CSVs for `scale` times the sample's rows into `out`; return row counts."""
    g = Gen(seed)
    rng = g.rng
    os.makedirs(out, exist_ok=True)
    n_tracks = SAMPLE_ALBUM_ROWS * scale
    n_artists = max(10, n_tracks // 12)

    artists = []
    for _ in range(n_artists):
        genres = rng.sample(GENRES, g.choice([0, 1, 1, 2, 2, 3, 4]))
        followers = int(rng.paretovariate(1.1) * 500)
        artists.append((g.sid(), g.title(1, 3), min(100, int(rng.betavariate(2, 3) * 100)),
                        str(genres), followers))
    with open(os.path.join(out, "artists.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ARTIST_COLUMNS)
        w.writerows(artists)

    track_ids = []
    with open(os.path.join(out, "albums.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ALBUM_COLUMNS)
        rows = 0
        while rows < n_tracks:
            total = g.choice(TOTALS)
            artist = g.choice(artists)
            artist_id = artist[0] if g.random() > 0.02 else g.sid()  # ~2% dangling artist
            album_type = "single" if total <= 2 else g.choice(["album", "album", "compilation"])
            album_name = g.title()
            release = g.release_date()
            label = g.choice(LABELS)
            album_popularity = min(100, int(rng.betavariate(2, 4) * 100))
            album_id = g.sid()
            batch = []
            for n in range(1, total + 1):
                if rows >= n_tracks:
                    break
                tid = g.sid()
                if g.random() > 0.01:
                    dur = int(rng.gauss(205000, 45000))
                else:
                    dur = g.randint(30000, 900000)
                dur = max(15000, dur)
                name = g.title()
                batch.append((name, tid, n, dur, album_type, artist[1], total, album_name, release,
                              label, album_popularity, album_id, artist_id, round(dur / 1000, 3)))
                track_ids.append(tid)
                rows += 1
            w.writerows(batch)

    betavariate, random_ = rng.betavariate, g.random
    tracks = [(t, min(100, int(betavariate(2, 3) * 100)), "True" if random_() < 0.18 else "False")
              for t in track_ids]
    del track_ids
    for _ in range(max(1, n_tracks // 100)):  # ~1% tracks with no album row
        tracks.append((g.sid(), g.randint(0, 100), "False"))
    rng.shuffle(tracks)
    with open(os.path.join(out, "tracks.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TRACK_COLUMNS)
        w.writerows(tracks)
    return {"albums": n_tracks, "artists": n_artists, "tracks": len(tracks)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output folder (created if missing)")
    ap.add_argument("--scale", type=int, default=1, help="multiple of the sample's rows (default 1)")
    ap.add_argument("--seed", type=int, default=2023, help="random seed (default 2023, the sample's)")
    a = ap.parse_args()
    if a.scale < 1:
        ap.error("--scale must be a positive integer")
    start = time.perf_counter()
    counts = generate(a.out, a.scale, a.seed)
    size = sum(os.path.getsize(os.path.join(a.out, f"{n}.csv")) for n in counts)
    print(f"x{a.scale}: " + ", ".join(f"{n} {c:,} rows" for n, c in counts.items())
          + f"; {size / 1e6:,.1f} MB in {time.perf_counter() - start:.1f} s -> {a.out}")


if __name__ == "__main__":
    main()
